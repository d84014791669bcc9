// Package devstack runs the embedded development services: a private
// PostgreSQL cluster from the machine's PostgreSQL server binaries, the
// Temporal CLI dev server (with its Web UI), and franz-go's kfake broker on a
// real TCP port. `theprotocol dev` and the test harness both use it.
//
// Child processes get their own process group (so a terminal Ctrl-C reaches
// only us, and we stop them in order) and a parent-death signal (so they die
// with us even on SIGKILL): nothing outlives the dev command.
package devstack
