// Package logbuf is a log sink for tests that read what several goroutines
// logged (a node, a child process's output). It imports nothing of the
// project, so any package's tests can use it, devstack's included (testenv
// itself imports devstack).
package logbuf

import (
	"bytes"
	"sync"
)

// Buffer collects writes from several goroutines; the zero value is ready.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String is everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
