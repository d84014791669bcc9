// Package workflows holds Temporal workflow functions: deterministic code
// that decides, using only workflow.* APIs (never time.Now, rand, goroutines
// or I/O). Activities (package activities) do the I/O; workflows reference
// them through a nil *activities.X receiver, which the SDK resolves by name.
//
// Each business flow declares itself once as a Family (its workflows,
// activity structs, schedules, search attributes and committed histories)
// in its own file; Families is the list the worker runs and the replay
// test checks.
//
// Input and result structs here are the workflow's public contract: change
// them only compatibly, and put behaviour changes of running workflows behind
// workflow.GetVersion.
package workflows
