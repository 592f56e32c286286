package pgtest

import (
	"strings"
	"sync"
)

// lockedBuffer collects postgres's output: exec copies stdout and stderr
// from two goroutines, and Start may read it while they write.
type lockedBuffer struct {
	// mu guards b.
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
