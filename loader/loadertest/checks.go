package loadertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nearcache/nearcache/loader"
)

// reporter is the part of testing.TB the checks use, so that the suite's
// own tests can run them against broken loaders and record the failures.
// Errorf must be safe for concurrent use.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

// env is what one check runs against.
type env struct {
	l       Loader
	f       Fixture
	timeout time.Duration // bound on a Load under a cancelled context
}

// check is one conformance property. A check reports with Errorf and
// returns early instead of calling Fatal, so a recorder can run it.
type check struct {
	name string
	run  func(ctx context.Context, r reporter, e env)
}

// checks returns the suite, in the order Run runs it.
func checks() []check {
	return []check{
		{"Found", checkFound},
		{"Missing", checkMissing},
		{"NewerVersion", checkNewerVersion},
		{"Deleted", checkDeleted},
		{"Cancelled", checkCancelled},
		{"Keys", checkKeys},
		{"Concurrent", checkConcurrent},
		{"NotAliased", checkNotAliased},
	}
}

func (e env) put(ctx context.Context, r reporter, key string, value []byte, version uint64) bool {
	r.Helper()
	if err := e.f.Put(ctx, key, value, version); err != nil {
		r.Errorf("Fixture.Put(%q): %v", short(key), err)
		return false
	}
	return true
}

// expect loads key and reports unless it returns value and version.
func (e env) expect(ctx context.Context, r reporter, key string, value []byte, version uint64) bool {
	r.Helper()
	got, ver, err := e.l.Load(ctx, key)
	switch {
	case err != nil:
		r.Errorf("Load(%q) error = %v, want value at version %d", short(key), err, version)
	case !bytes.Equal(got, value):
		r.Errorf("Load(%q) value = %q, want %q", short(key), short(string(got)), short(string(value)))
	case ver != version:
		r.Errorf("Load(%q) version = %d, want %d", short(key), ver, version)
	default:
		return true
	}
	return false
}

// expectNotFound loads key and reports unless the error is a not-found one.
func (e env) expectNotFound(ctx context.Context, r reporter, key string) {
	r.Helper()
	got, ver, err := e.l.Load(ctx, key)
	switch {
	case err == nil:
		r.Errorf("Load(%q) = %q, version %d, nil error; want a not-found error", short(key), short(string(got)), ver)
	case !loader.IsNotFound(err):
		r.Errorf("Load(%q) error = %v; want one for which loader.IsNotFound holds", short(key), err)
	}
}

func checkFound(ctx context.Context, r reporter, e env) {
	binary := make([]byte, 256)
	for i := range binary {
		binary[i] = byte(i)
	}
	tests := []struct {
		key     string
		value   []byte
		version uint64
	}{
		{"found/text", []byte("hello, world"), 1},
		{"found/empty", []byte{}, 2},
		{"found/binary", binary, 3},
		{"found/large", bytes.Repeat([]byte("0123456789abcdef"), 4096), 4},
		{"found/bigversion", []byte("v"), 1<<40 + 7},
	}
	for _, tt := range tests {
		if !e.put(ctx, r, tt.key, tt.value, tt.version) {
			return
		}
	}
	for _, tt := range tests {
		e.expect(ctx, r, tt.key, tt.value, tt.version)
	}
}

func checkMissing(ctx context.Context, r reporter, e env) {
	if !e.put(ctx, r, "missing/present", []byte("here"), 1) {
		return
	}
	e.expectNotFound(ctx, r, "missing/absent")
	e.expectNotFound(ctx, r, "missing/present/") // a longer key is another key
}

func checkNewerVersion(ctx context.Context, r reporter, e env) {
	const key = "newer/key"
	if !e.put(ctx, r, key, []byte("first value, the longer one"), 5) ||
		!e.expect(ctx, r, key, []byte("first value, the longer one"), 5) {
		return
	}
	if !e.put(ctx, r, key, []byte("second"), 6) {
		return
	}
	e.expect(ctx, r, key, []byte("second"), 6)
}

func checkDeleted(ctx context.Context, r reporter, e env) {
	const key, other = "deleted/key", "deleted/other"
	if !e.put(ctx, r, key, []byte("doomed"), 1) || !e.put(ctx, r, other, []byte("kept"), 2) ||
		!e.expect(ctx, r, key, []byte("doomed"), 1) {
		return
	}
	if err := e.f.Delete(ctx, key); err != nil {
		r.Errorf("Fixture.Delete(%q): %v", key, err)
		return
	}
	e.expectNotFound(ctx, r, key)
	e.expect(ctx, r, other, []byte("kept"), 2)
}

func checkCancelled(ctx context.Context, r reporter, e env) {
	const key = "cancelled/key"
	if !e.put(ctx, r, key, []byte("v"), 1) {
		return
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	type result struct {
		val []byte
		ver uint64
		err error
	}
	done := make(chan result, 1) // buffered: a late Load must not block forever
	go func() {
		v, ver, err := e.l.Load(cctx, key)
		done <- result{v, ver, err}
	}()
	timer := time.NewTimer(e.timeout)
	defer timer.Stop()
	select {
	case res := <-done:
		if !errors.Is(res.err, context.Canceled) {
			r.Errorf("Load(cancelled ctx, %q) = %q, %d, %v; want an error matching context.Canceled",
				key, res.val, res.ver, res.err)
		}
	case <-timer.C:
		r.Errorf("Load(cancelled ctx, %q) did not return within %v", key, e.timeout)
	}
}

func checkKeys(ctx context.Context, r reporter, e env) {
	keys := []string{
		"ключ/鍵/🔑/é",                    // multi-byte UTF-8
		`it's`,                          // single quote
		`say "hi"`,                      // double quotes
		`'; DROP TABLE t; --`,           // SQL injection shape
		`back\slash%_*?`,                // escape and wildcard characters
		" spaced key ",                  // leading and trailing space
		"line\nbreak\ttab",              // control characters
		strings.Repeat("k", 1024),       // 1 KiB ASCII
		strings.Repeat("й", 512),        // 1 KiB of 2-byte runes
		strings.Repeat("k", 1023) + "x", // differs from the 1 KiB key only at the end
	}
	for i, k := range keys {
		if !e.put(ctx, r, k, []byte(fmt.Sprintf("value %d", i)), uint64(10+i)) {
			return
		}
	}
	for i, k := range keys {
		e.expect(ctx, r, k, []byte(fmt.Sprintf("value %d", i)), uint64(10+i))
	}
}

func checkConcurrent(ctx context.Context, r reporter, e env) {
	const (
		nKeys       = 8
		goroutines  = 32
		perRoutine  = 16
		maxReported = 5
	)
	key := func(i int) string { return fmt.Sprintf("concurrent/%d", i) }
	val := func(i int) []byte { return []byte(fmt.Sprintf("value of key %d", i)) }
	for i := range nKeys {
		if !e.put(ctx, r, key(i), val(i), uint64(100+i)) {
			return
		}
	}
	var (
		mu   sync.Mutex // guards errs
		errs []string
	)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for n := range perRoutine {
				i := (g + n) % nKeys
				got, ver, err := e.l.Load(ctx, key(i))
				if err == nil && bytes.Equal(got, val(i)) && ver == uint64(100+i) {
					continue
				}
				mu.Lock()
				errs = append(errs, fmt.Sprintf("Load(%q) = %q, %d, %v; want %q, %d, nil",
					key(i), got, ver, err, val(i), 100+i))
				mu.Unlock()
				return
			}
		})
	}
	wg.Wait()
	for i, msg := range errs {
		if i == maxReported {
			r.Errorf("... and %d more concurrent failures", len(errs)-maxReported)
			break
		}
		r.Errorf("concurrent %s", msg)
	}
}

func checkNotAliased(ctx context.Context, r reporter, e env) {
	const a, b = "aliased/a", "aliased/b"
	va, vb := []byte("value of a"), []byte("VALUE OF B")
	if !e.put(ctx, r, a, va, 1) || !e.put(ctx, r, b, vb, 2) {
		return
	}
	first, _, err := e.l.Load(ctx, a)
	if err != nil {
		r.Errorf("Load(%q): %v", a, err)
		return
	}
	for i := range first {
		first[i] ^= 0xff // the caller owns the slice and may scribble on it
	}
	mutated := bytes.Clone(first)
	if !e.expect(ctx, r, a, va, 1) { // the source or a cache behind it was aliased
		r.Errorf("changing a loaded slice changed what the next Load(%q) returns", a)
	}
	e.expect(ctx, r, b, vb, 2)
	if !bytes.Equal(first, mutated) {
		r.Errorf("a later Load overwrote a slice returned earlier: got %q, want %q", first, mutated)
	}
}

// short abbreviates long keys and values in failure messages.
func short(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return fmt.Sprintf("%s...(%d bytes)", s[:max], len(s))
}
