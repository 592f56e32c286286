package loadertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nearcache/nearcache/loader"
)

// memSource is a correct in-memory source of truth and loader.
type memSource struct {
	mu sync.Mutex // guards m
	m  map[string]memEntry
}

type memEntry struct {
	val []byte
	ver uint64
}

func newMemSource() *memSource { return &memSource{m: make(map[string]memEntry)} }

func (s *memSource) Put(_ context.Context, key string, value []byte, version uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = memEntry{bytes.Clone(value), version}
	return nil
}

func (s *memSource) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}

// raw returns the stored entry without copying.
func (s *memSource) raw(key string) (memEntry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	return e, ok
}

func (s *memSource) Load(ctx context.Context, key string) ([]byte, uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	e, ok := s.raw(key)
	if !ok {
		return nil, 0, fmt.Errorf("mem %q: %w", key, loader.ErrNotFound)
	}
	return bytes.Clone(e.val), e.ver, nil
}

func TestRunReferenceLoader(t *testing.T) {
	Run(t, func(t *testing.T) (Loader, Fixture) {
		s := newMemSource()
		return s, s
	})
}

// recorder is a reporter that records failures instead of failing the test.
type recorder struct {
	mu   sync.Mutex // guards msgs
	msgs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

// loadFunc adapts a function to Loader in these tests.
type loadFunc func(ctx context.Context, key string) ([]byte, uint64, error)

func (f loadFunc) Load(ctx context.Context, key string) ([]byte, uint64, error) { return f(ctx, key) }

// foreignNotFound is another package's not-found error.
type foreignNotFound struct{ key string }

func (e foreignNotFound) Error() string  { return "no such key " + e.key }
func (e foreignNotFound) NotFound() bool { return true }

// TestChecksCatchBrokenLoaders runs every check against loaders broken in
// one way each, and asserts the exact set of checks that fail: a check that
// stops catching its breakage, or starts failing a correct loader, shows up.
func TestChecksCatchBrokenLoaders(t *testing.T) {
	all := func() []string {
		var names []string
		for _, c := range checks() {
			names = append(names, c.name)
		}
		return names
	}()
	tests := []struct {
		name string
		// broken wraps a correct source; release is closed after each check.
		broken   func(s *memSource, release <-chan struct{}) Loader
		only     []string // run only these checks; nil = all
		wantFail []string
	}{
		{
			name:   "reference",
			broken: func(s *memSource, _ <-chan struct{}) Loader { return s },
		},
		{
			name: "foreign not-found error is accepted",
			broken: func(s *memSource, _ <-chan struct{}) Loader {
				return loadFunc(func(ctx context.Context, key string) ([]byte, uint64, error) {
					v, ver, err := s.Load(ctx, key)
					if errors.Is(err, loader.ErrNotFound) {
						return nil, 0, fmt.Errorf("wrapped: %w", foreignNotFound{key})
					}
					return v, ver, err
				})
			},
		},
		{
			name: "wrong version",
			broken: func(s *memSource, _ <-chan struct{}) Loader {
				return loadFunc(func(ctx context.Context, key string) ([]byte, uint64, error) {
					v, ver, err := s.Load(ctx, key)
					return v, ver + 1, err
				})
			},
			wantFail: []string{"Found", "NewerVersion", "Deleted", "Keys", "Concurrent", "NotAliased"},
		},
		{
			name: "nil error on missing key",
			broken: func(s *memSource, _ <-chan struct{}) Loader {
				return loadFunc(func(ctx context.Context, key string) ([]byte, uint64, error) {
					v, ver, err := s.Load(ctx, key)
					if loader.IsNotFound(err) {
						return nil, 0, nil
					}
					return v, ver, err
				})
			},
			wantFail: []string{"Missing", "Deleted"},
		},
		{
			name: "not-found error without NotFound method",
			broken: func(s *memSource, _ <-chan struct{}) Loader {
				return loadFunc(func(ctx context.Context, key string) ([]byte, uint64, error) {
					v, ver, err := s.Load(ctx, key)
					if loader.IsNotFound(err) {
						return nil, 0, errors.New("not found")
					}
					return v, ver, err
				})
			},
			wantFail: []string{"Missing", "Deleted"},
		},
		{
			name: "empty value reported missing",
			broken: func(s *memSource, _ <-chan struct{}) Loader {
				return loadFunc(func(ctx context.Context, key string) ([]byte, uint64, error) {
					v, ver, err := s.Load(ctx, key)
					if err == nil && len(v) == 0 {
						return nil, 0, loader.ErrNotFound
					}
					return v, ver, err
				})
			},
			wantFail: []string{"Found"},
		},
		{
			name: "large value truncated",
			broken: func(s *memSource, _ <-chan struct{}) Loader {
				return loadFunc(func(ctx context.Context, key string) ([]byte, uint64, error) {
					v, ver, err := s.Load(ctx, key)
					return v[:min(len(v), 32<<10)], ver, err
				})
			},
			wantFail: []string{"Found"},
		},
		{
			name: "ignores cancelled ctx",
			broken: func(s *memSource, _ <-chan struct{}) Loader {
				return loadFunc(func(_ context.Context, key string) ([]byte, uint64, error) {
					return s.Load(context.Background(), key)
				})
			},
			wantFail: []string{"Cancelled"},
		},
		{
			name: "hangs on cancelled ctx",
			broken: func(s *memSource, release <-chan struct{}) Loader {
				return loadFunc(func(ctx context.Context, key string) ([]byte, uint64, error) {
					if ctx.Err() != nil {
						<-release
					}
					return s.Load(ctx, key)
				})
			},
			wantFail: []string{"Cancelled"},
		},
		{
			name: "stale: keeps the first value it loaded",
			broken: func(s *memSource, _ <-chan struct{}) Loader {
				var mu sync.Mutex
				seen := map[string]memEntry{}
				return loadFunc(func(ctx context.Context, key string) ([]byte, uint64, error) {
					mu.Lock()
					defer mu.Unlock()
					if e, ok := seen[key]; ok {
						return bytes.Clone(e.val), e.ver, nil
					}
					v, ver, err := s.Load(ctx, key)
					if err == nil {
						seen[key] = memEntry{bytes.Clone(v), ver}
					}
					return v, ver, err
				})
			},
			wantFail: []string{"NewerVersion", "Deleted"},
		},
		{
			name: "returns the stored slice",
			broken: func(s *memSource, _ <-chan struct{}) Loader {
				return loadFunc(func(ctx context.Context, key string) ([]byte, uint64, error) {
					if e, ok := s.raw(key); ok {
						return e.val, e.ver, nil
					}
					return s.Load(ctx, key)
				})
			},
			only:     []string{"NotAliased"}, // elsewhere it would be a data race, not a failure
			wantFail: []string{"NotAliased"},
		},
		{
			name: "reuses one buffer",
			broken: func(s *memSource, _ <-chan struct{}) Loader {
				var buf []byte
				return loadFunc(func(ctx context.Context, key string) ([]byte, uint64, error) {
					v, ver, err := s.Load(ctx, key)
					buf = append(buf[:0], v...)
					return buf, ver, err
				})
			},
			only:     []string{"NotAliased"},
			wantFail: []string{"NotAliased"},
		},
		{
			name: "truncates keys to 255 bytes",
			broken: func(s *memSource, _ <-chan struct{}) Loader {
				return loadFunc(func(ctx context.Context, key string) ([]byte, uint64, error) {
					return s.Load(ctx, key[:min(len(key), 255)])
				})
			},
			wantFail: []string{"Keys"},
		},
		{
			name: "strips quotes from keys",
			broken: func(s *memSource, _ <-chan struct{}) Loader {
				return loadFunc(func(ctx context.Context, key string) ([]byte, uint64, error) {
					return s.Load(ctx, strings.NewReplacer(`'`, ``, `"`, ``).Replace(key))
				})
			},
			wantFail: []string{"Keys"},
		},
		{
			name: "wrong version under concurrent load",
			broken: func(s *memSource, _ <-chan struct{}) Loader {
				var inflight atomic.Int32
				return loadFunc(func(ctx context.Context, key string) ([]byte, uint64, error) {
					inflight.Add(1)
					defer inflight.Add(-1)
					time.Sleep(time.Millisecond) // fake time: every concurrent caller overlaps
					v, ver, err := s.Load(ctx, key)
					if inflight.Load() > 1 {
						ver--
					}
					return v, ver, err
				})
			},
			wantFail: []string{"Concurrent"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := tt.only
			if run == nil {
				run = all
			}
			var failed []string
			for _, c := range checks() {
				if !slices.Contains(run, c.name) {
					continue
				}
				var rec recorder
				synctest.Test(t, func(t *testing.T) {
					s := newMemSource()
					release := make(chan struct{})
					defer close(release)
					c.run(t.Context(), &rec, env{l: tt.broken(s, release), f: s, timeout: time.Minute})
				})
				if len(rec.msgs) > 0 {
					failed = append(failed, c.name)
					t.Logf("%s caught it: %s", c.name, rec.msgs[0])
				}
			}
			want := tt.wantFail
			if want == nil {
				want = []string{}
			}
			if failed == nil {
				failed = []string{}
			}
			if !slices.Equal(failed, want) {
				t.Errorf("failing checks = %q, want %q", failed, want)
			}
		})
	}
}
