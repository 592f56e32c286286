package local

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestAfterClose(t *testing.T) {
	c := newTestCache(t, Config{})
	set(t, c, "k", "v", 1)
	c.Close()
	c.Close() // idempotent
	if _, ok := c.Get("k"); ok {
		t.Error("Get hit after Close")
	}
	if got := c.Set("k", Entry[string]{Version: 2}, 1, 0, nil); got != Closed {
		t.Errorf("Set after Close = %v, want Closed", got)
	}
	c.Delete("k")
	c.Purge()
	c.Wait()
	if !c.Raise("k", 5) || c.Floor("k") != 5 {
		t.Error("floors not kept after Close")
	}
	_ = c.Stats()
}

// Close racing every other method must not panic (ristretto panics on a Set
// or policy push racing its Close) and must leave no goroutine (TestMain).
// Run with -race.
func TestCloseRacesEverything(t *testing.T) {
	const runs, workers = 50, 4
	for run := range runs {
		c, err := New[string](Config{BufferItems: 1, MaxCost: 1 << 16}) // policy push on every Get; small sketch: cheap Purge
		if err != nil {
			t.Fatal(err)
		}
		for i := range 64 {
			c.Set(fmt.Sprint(i), Entry[string]{Version: 1}, 1, time.Hour, nil)
		}
		c.Wait()
		var wg sync.WaitGroup
		start := make(chan struct{})
		stop := make(chan struct{})
		op := func(f func(i int)) {
			wg.Go(func() {
				<-start
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					f(i)
				}
			})
		}
		for range workers {
			op(func(i int) { c.Get(fmt.Sprint(i % 64)) })
		}
		op(func(i int) { c.Set(fmt.Sprint(i%64), Entry[string]{Version: uint64(i)}, 1, time.Hour, nil) })
		op(func(i int) { c.Raise(fmt.Sprint(i%64), uint64(i)) })
		op(func(i int) { c.Delete(fmt.Sprint(i % 64)) })
		op(func(i int) {
			if i%16 == 0 {
				c.Purge()
			} else {
				c.Wait()
			}
		})
		close(start)
		time.Sleep(time.Duration(run%5) * 100 * time.Microsecond) // vary the interleaving, not a synchronisation
		c.Close()
		if _, ok := c.Get("1"); ok {
			t.Fatalf("run %d: Get hit after Close", run)
		}
		if got := c.Set("1", Entry[string]{Version: 1 << 40}, 1, 0, nil); got != Closed {
			t.Fatalf("run %d: Set after Close = %v", run, got)
		}
		close(stop)
		wg.Wait()
	}
}
