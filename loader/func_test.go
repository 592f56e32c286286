package loader_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/nearcache/nearcache/loader"
	"github.com/nearcache/nearcache/loader/loadertest"
)

// mapSource is an in-memory source of truth guarded by a mutex.
type mapSource struct {
	mu sync.Mutex // guards m
	m  map[string]mapEntry
}

type mapEntry struct {
	val []byte
	ver uint64
}

func newMapSource() *mapSource { return &mapSource{m: make(map[string]mapEntry)} }

func (s *mapSource) Put(_ context.Context, key string, value []byte, version uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = mapEntry{bytes.Clone(value), version}
	return nil
}

func (s *mapSource) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}

// load is the function wrapped by loader.Func. It does not look at ctx:
// the Func adapter's own ctx check is what the Cancelled check exercises.
func (s *mapSource) load(_ context.Context, key string) ([]byte, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	if !ok {
		return nil, 0, loader.ErrNotFound
	}
	return bytes.Clone(e.val), e.ver, nil
}

func TestFuncConformance(t *testing.T) {
	loadertest.Run(t, func(t *testing.T) (loadertest.Loader, loadertest.Fixture) {
		s := newMapSource()
		return loader.Func[[]byte](s.load), s
	})
}

func TestFuncLoad(t *testing.T) {
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	errBoom := errors.New("boom")
	tests := []struct {
		name      string
		ctx       context.Context
		fn        loader.Func[string]
		wantVal   string
		wantVer   uint64
		wantErr   error
		wantCalls int
	}{
		{
			name:      "passes value, version and key through",
			ctx:       t.Context(),
			fn:        func(_ context.Context, key string) (string, uint64, error) { return "v:" + key, 7, nil },
			wantVal:   "v:k",
			wantVer:   7,
			wantCalls: 1,
		},
		{
			name:      "passes errors through",
			ctx:       t.Context(),
			fn:        func(context.Context, string) (string, uint64, error) { return "", 0, errBoom },
			wantErr:   errBoom,
			wantCalls: 1,
		},
		{
			name:      "cancelled ctx is not passed to the function",
			ctx:       cancelled,
			fn:        func(context.Context, string) (string, uint64, error) { return "v", 1, nil },
			wantErr:   context.Canceled,
			wantCalls: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			f := loader.Func[string](func(ctx context.Context, key string) (string, uint64, error) {
				calls++
				return tt.fn(ctx, key)
			})
			val, ver, err := f.Load(tt.ctx, "k")
			if val != tt.wantVal || ver != tt.wantVer || !errors.Is(err, tt.wantErr) {
				t.Errorf("Load(%q) = %q, %d, %v; want %q, %d, %v", "k", val, ver, err, tt.wantVal, tt.wantVer, tt.wantErr)
			}
			if calls != tt.wantCalls {
				t.Errorf("function called %d times, want %d", calls, tt.wantCalls)
			}
		})
	}
}

func BenchmarkFuncLoad(b *testing.B) {
	s := newMapSource()
	_ = s.Put(b.Context(), "k", []byte("value"), 1)
	l := loader.Func[[]byte](s.load)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := l.Load(ctx, "k"); err != nil {
			b.Fatal(err)
		}
	}
}
