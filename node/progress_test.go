package node

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/nearcache/nearcache/gossip/gossiptest"
)

// TestLogFedGroupServesOnlyWhileTheFeedIsFresh is G9 on the node side: a
// LogFed group serves cached values only while a feed's progress no older
// than MaxStaleness was heard, on the node that reported it and on the
// others; a plain group beside it is unaffected. Catches: the hit path or the
// miss path ignoring LogFed, progress not crossing the cluster, progress from
// the future believed.
func TestLogFedGroupServesOnlyWhileTheFeedIsFresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		src.put("k", "v1")
		nw := gossiptest.New(41)
		ms := memCluster(t, nw, 2, src, nil)
		fed := make([]*Group[string], len(ms))
		for i, m := range ms {
			g, err := NewGroup(m.n, "fed", GroupConfig[string]{Loader: src, LogFed: true})
			if err != nil {
				t.Fatal(err)
			}
			fed[i] = g
		}
		loadsFor := func(g *Group[string], reads int) int {
			t.Helper()
			before := src.loads()
			for range reads {
				mustGet(t, g, "k")
			}
			return src.loads() - before
		}
		if n := loadsFor(fed[1], 3); n != 3 {
			t.Errorf("no feed progress yet: %d loads for 3 reads, want 3 (read through)", n)
		}
		if n := loadsFor(ms[1].g, 3); n != 1 {
			t.Errorf("a plain group beside it: %d loads for 3 reads, want 1", n)
		}
		if err := ms[0].n.Progress(t.Context(), []string{"fed"}, time.Now()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "n1 hearing the progress", func() bool { return fed[1].logAsOf.Load() != 0 })
		for i := range fed {
			if n := loadsFor(fed[i], 3); n > 1 {
				t.Errorf("n%d with fresh progress: %d loads for 3 reads, want at most 1", i, n)
			}
		}
		time.Sleep(ms[1].n.cfg.MaxStaleness + time.Millisecond)
		if n := loadsFor(fed[1], 2); n != 2 {
			t.Errorf("progress older than MaxStaleness: %d loads for 2 reads, want 2 (read through)", n)
		}
		if err := ms[0].n.Progress(t.Context(), []string{"fed"}, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if n := loadsFor(fed[0], 2); n != 2 {
			t.Errorf("progress from an hour ahead was believed: %d loads for 2 reads, want 2", n)
		}
		if err := ms[0].n.Progress(t.Context(), []string{"nope"}, time.Now()); err == nil {
			t.Error("Progress for an unknown group succeeded")
		}
	})
}
