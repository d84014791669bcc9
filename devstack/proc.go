package devstack

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// child is a supervised child process.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	err  error
	// log receives the child's output; logFrom is its size when the child
	// started, so startupOutput reads this run's lines only.
	log     *os.File
	logFrom int64
}

// startChild starts cmd in its own process group with a parent-death signal
// and returns once it is running; its output goes to logTo (see openLog).
// deathSig is what the kernel sends the child if we die without stopping
// it.
func startChild(name string, cmd *exec.Cmd, logTo *os.File, cred *syscall.Credential, deathSig syscall.Signal) (*child, error) {
	var from int64
	if st, err := logTo.Stat(); err == nil {
		from = st.Size()
	}
	cmd.Stdout = logTo
	cmd.Stderr = logTo
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:    true,
		Pdeathsig:  deathSig,
		Credential: cred,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{}), log: logTo, logFrom: from}
	go func() {
		err := cmd.Wait()
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		close(c.done)
	}()
	return c, nil
}

// exited reports whether the child has exited, and its error.
func (c *child) exited() (bool, error) {
	select {
	case <-c.done:
		c.mu.Lock()
		defer c.mu.Unlock()
		return true, c.err
	default:
		return false, nil
	}
}

// stop sends sig to the child's process group, waits up to grace, then kills
// the group. It is safe to call on an exited child.
func (c *child) stop(sig syscall.Signal, grace time.Duration) error {
	if done, _ := c.exited(); done {
		return nil
	}
	pgid := c.cmd.Process.Pid
	if err := syscall.Kill(-pgid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %s: %w", c.name, err)
	}
	select {
	case <-c.done:
		return nil
	case <-time.After(grace):
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		return fmt.Errorf("%s did not exit after SIGKILL", c.name)
	}
	return nil
}

// pid returns the child's process ID.
func (c *child) pid() int { return c.cmd.Process.Pid }

// openLog opens (appending) a log file for a child's output. With no path
// it is an unlinked temporary file: nobody reads it but startupOutput, which
// needs the lines of a child that failed to start (is its port taken?).
func openLog(path string) (*os.File, error) {
	if path != "" {
		return os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o644)
	}
	f, err := os.CreateTemp("", "theprotocol-child-*.log")
	if err != nil {
		return nil, err
	}
	_ = os.Remove(f.Name())
	return f, nil
}

// startupOutput returns the last bytes (at most 16 KiB) the child wrote
// since it started.
func (c *child) startupOutput() string {
	st, err := c.log.Stat()
	if err != nil {
		return ""
	}
	from := max(c.logFrom, st.Size()-16<<10)
	buf := make([]byte, st.Size()-from)
	n, _ := c.log.ReadAt(buf, from)
	return string(buf[:n])
}
