package devstack

import (
	"errors"
	"fmt"
	"io"
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
}

// startChild starts cmd in its own process group with a parent-death signal
// and returns once it is running. deathSig is what the kernel sends the
// child if we die without stopping it.
func startChild(name string, cmd *exec.Cmd, logTo io.Writer, cred *syscall.Credential, deathSig syscall.Signal) (*child, error) {
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
	c := &child{name: name, cmd: cmd, done: make(chan struct{})}
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

// openLog opens (appending) a log file for a child's output.
func openLog(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
}

// logWriter returns f, or io.Discard when f is nil.
func logWriter(f *os.File) io.Writer {
	if f == nil {
		return io.Discard
	}
	return f
}
