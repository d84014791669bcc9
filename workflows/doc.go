// Package workflows holds Temporal workflow functions: deterministic code
// that decides, using only workflow.* APIs (never time.Now, rand, goroutines
// or I/O). Activities (package activities) do the I/O; workflows reference
// them through a nil *activities.X receiver, which the SDK resolves by name.
//
// Input and result structs here are the workflow's public contract: change
// them only compatibly, and put behaviour changes of running workflows behind
// workflow.GetVersion.
package workflows
