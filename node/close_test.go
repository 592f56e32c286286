package node

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// TestCloseBoundedByContext: a loader that ignores nothing but takes long
// holds Close for at most ctx's deadline, not LoadTimeout; Close then cuts
// the load short, releases everything and says why it stopped early.
//
// Scheduling-dependent; green under load with:
//
//	go test -race -count=50 -run TestCloseBoundedByContext ./node/  # beside: yes >/dev/null & yes >/dev/null &
func TestCloseBoundedByContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		src.put("k", "v")
		n, err := Start(t.Context(), Config{Name: "solo", Standalone: true, LoadTimeout: time.Minute, FloorRetention: 10 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		g, err := NewGroup(n, "rows", GroupConfig[string]{Loader: src})
		if err != nil {
			t.Fatal(err)
		}
		entered := make(chan struct{})
		src.hold = func(ctx context.Context, key string) error {
			close(entered)
			<-ctx.Done() // until Close cancels it
			return ctx.Err()
		}
		go g.Get(context.Background(), "k")
		<-entered

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		err = n.Close(ctx)
		if took := time.Since(start); took != time.Second {
			t.Errorf("Close took %v with a 1s ctx and a 1m LoadTimeout, want 1s", took)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close = %v, want DeadlineExceeded", err)
		}
		if err2 := n.Close(context.Background()); err2 != err {
			t.Errorf("second Close = %v, want the first's %v", err2, err)
		}
		if _, err := g.Get(context.Background(), "k"); !errors.Is(err, ErrClosed) {
			t.Errorf("Get after Close = %v, want ErrClosed", err)
		}
	})
}

// TestCloseWithEndedContext: Close on a cancelled ctx still releases
// everything (goleak in TestMain checks the goroutines).
//
// Scheduling-dependent; green under load with:
//
//	go test -race -count=50 -run TestCloseWithEndedContext ./node/  # beside: yes >/dev/null & yes >/dev/null &
func TestCloseWithEndedContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, _ := standalone(t, newSource(), nil)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := n.Close(ctx); err != nil {
			t.Errorf("Close of an idle standalone node on an ended ctx = %v, want nil (nothing was cut short)", err)
		}
	})
}
