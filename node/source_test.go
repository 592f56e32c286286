package node

import (
	"context"
	"errors"
	"sync"
)

// notFound is a not-found error of the kind loaders return.
type notFound struct{}

func (notFound) Error() string  { return "not found" }
func (notFound) NotFound() bool { return true }

// source is a hand-written fake source of truth: versioned rows, a call
// counter, and hooks to hold a load at a chosen point.
type source struct {
	mu    sync.Mutex
	rows  map[string]row
	calls int
	// hold, when set, is called inside Load after the row was read and before
	// it is returned: tests block there to race invalidations against a fill.
	hold func(ctx context.Context, key string) error
}

type row struct {
	val string
	ver uint64
}

func newSource() *source { return &source{rows: make(map[string]row)} }

// put writes key and returns its new version (like UPDATE ... RETURNING version).
func (s *source) put(key, val string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rows[key]
	r.val, r.ver = val, r.ver+1
	s.rows[key] = r
	return r.ver
}

func (s *source) Load(ctx context.Context, key string) (string, uint64, error) {
	s.mu.Lock()
	s.calls++
	r, ok := s.rows[key]
	hold := s.hold
	s.mu.Unlock()
	if hold != nil {
		if err := hold(ctx, key); err != nil {
			return "", 0, err
		}
	}
	if !ok {
		return "", 0, notFound{}
	}
	return r.val, r.ver, ctx.Err()
}

func (s *source) setHold(h func(ctx context.Context, key string) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold = h
}

func (s *source) LoadVersion(ctx context.Context, key string) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rows[key]
	if !ok {
		return 0, notFound{}
	}
	return r.ver, nil
}

func (s *source) loads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

var errHeld = errors.New("held load cancelled")

// gate blocks loads until released; started reports each held load.
type gate struct {
	release chan struct{}
	started chan string
}

func newGate() *gate { return &gate{release: make(chan struct{}), started: make(chan string, 1024)} }

func (g *gate) hold(ctx context.Context, key string) error {
	g.started <- key
	select {
	case <-g.release:
		return nil
	case <-ctx.Done():
		return errHeld
	}
}
