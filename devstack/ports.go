package devstack

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
)

// A port chosen free can be taken before the service binds it: an outgoing
// connection on the loopback interface gets its local port from the same
// range FreePort draws from, and under heavy loopback traffic one did. So a
// service whose port this package chose (port 0 in the options) is started
// again on a newly chosen port when it fails because its port is in use, a
// bounded number of times. A port the caller set is never replaced: its
// being taken is reported (another dev stack running?).

// maxPortAttempts bounds the starts of one service on newly chosen ports.
const maxPortAttempts = 5

// errPortInUse marks a start that failed because a port was taken.
var errPortInUse = errors.New("address already in use")

// pickPort chooses a free port on host; tests replace it to hand out a
// port they hold.
var pickPort = FreePort

// FreePort returns a currently free TCP port on host.
func FreePort(host string) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// freePortExcept is pickPort, never one of taken.
func freePortExcept(host string, taken ...int) (int, error) {
	for range 100 {
		p, err := pickPort(host)
		if err != nil {
			return 0, err
		}
		if !slices.Contains(taken, p) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free port on %s besides %v", host, taken)
}

// portFree fails when something already listens on host:port, so a stale
// server from another run is reported instead of silently reused.
func portFree(host string, port int) error {
	if port == 0 {
		return nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("%s:%d is in use (another dev stack running?): %w", host, port, err)
	}
	return ln.Close()
}

// bindFailed reports whether a child's start-up output says it could not
// bind (Go: "bind: address already in use"; PostgreSQL: "could not bind
// IPv4 address …: Address already in use").
func bindFailed(output string) bool {
	return strings.Contains(strings.ToLower(output), "address already in use")
}

// retryOnTakenPort runs start (attempt counts from 1) until it succeeds,
// fails for another reason than a taken port, or maxPortAttempts starts
// failed; each retry is logged. start chooses its ports afresh each time.
// With chosen false (every port was set by the caller) there is nothing to
// choose again and the first error is returned.
func retryOnTakenPort(log *slog.Logger, service string, chosen bool, start func(attempt int) error) error {
	for attempt := 1; ; attempt++ {
		err := start(attempt)
		if err == nil || !chosen || !errors.Is(err, errPortInUse) {
			return err
		}
		if attempt == maxPortAttempts {
			return fmt.Errorf("%s: %d starts on freshly chosen ports all found a port taken: %w", service, attempt, err)
		}
		log.Warn("a port chosen free was taken before the service bound it; starting again on another",
			"service", service, "attempt", attempt, "err", err)
	}
}
