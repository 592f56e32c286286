package demo

import (
	"testing"
	"time"
)

func TestNaiveCacheExpiry(t *testing.T) {
	c := newNaiveCache(10 * time.Second)
	t0 := time.Now()
	c.put("k", Item{Body: "b", Version: 3}, t0)
	tests := []struct {
		name   string
		at     time.Duration
		wantOK bool
	}{
		{name: "fresh", at: 0, wantOK: true},
		{name: "just before the TTL", at: 10*time.Second - 1, wantOK: true},
		{name: "at the TTL", at: 10 * time.Second, wantOK: false},
		{name: "after the TTL", at: time.Minute, wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			it, ok := c.get("k", t0.Add(tt.at))
			if ok != tt.wantOK || (ok && it.Version != 3) {
				t.Errorf("get at +%v = %+v, %v; want ok=%v", tt.at, it, ok, tt.wantOK)
			}
		})
	}
	c.del("k")
	if _, ok := c.get("k", t0); ok {
		t.Error("get after del hit")
	}
}

// TestNaiveServesStale shows the failure the demo measures: a write through
// one instance leaves the others' copies in place until their TTL.
func TestNaiveServesStale(t *testing.T) {
	src, err := openSource(t.Context(), t.TempDir(), "t.db", 3, 2, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer src.close()
	nv := newNaive(src, 2, time.Hour)
	key := keyName(0)
	for i := range 2 {
		if it, err := nv.read(t.Context(), i, key); err != nil || it.Version != 1 {
			t.Fatalf("c%d first read = %+v, %v; want v1", i+1, it, err)
		}
	}
	v, err := nv.write(t.Context(), 0, key)
	if err != nil || v != 2 {
		t.Fatalf("write = %d, %v; want v2", v, err)
	}
	if it, _ := nv.read(t.Context(), 0, key); it.Version != 2 {
		t.Errorf("writer's instance read v%d, want v2 (it dropped its own copy)", it.Version)
	}
	if it, _ := nv.read(t.Context(), 1, key); it.Version != 1 {
		t.Errorf("other instance read v%d, want the stale v1", it.Version)
	}
	if r := nv.live(1); r.hits != 1 || r.lookups != 2 || r.loads != 1 {
		t.Errorf("c2 live = %+v, want 1 hit of 2 lookups, 1 load", r)
	}
}
