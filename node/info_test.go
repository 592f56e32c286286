package node

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nearcache/nearcache/gossip/gossiptest"
)

// TestGetInfoSaysWhereTheValueCameFrom: the first read of a key on its
// owner is a load, on another node an owner fill; then both are hits with
// their age; versions are the source's. Owner names the same member
// everywhere.
func TestGetInfoSaysWhereTheValueCameFrom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		src.put("k", "v1")
		ver := src.put("k", "v2")
		nw := gossiptest.New(71)
		ms := fillCluster(t, nw, gossiptest.NewFillNetwork(nw), 3, src)
		o, r := fillOwner(t, ms, "k")
		for _, m := range ms {
			if got := m.g.Owner("k"); got != ms[o].n.Name() {
				t.Errorf("%s: Owner(k) = %q, want %q", m.n.Name(), got, ms[o].n.Name())
			}
		}
		want := []struct {
			m    int
			from Source
		}{{o, FromLoad}, {r, FromOwner}}
		for _, w := range want {
			info, err := ms[w.m].g.GetInfo(t.Context(), "k")
			if err != nil {
				t.Fatal(err)
			}
			if info.Source != w.from || info.Value != "2" || info.Version != ver || info.Age != 0 {
				t.Errorf("%s: first read %+v, want value 2 version %d from %v, age 0", ms[w.m].n.Name(), info, ver, w.from)
			}
		}
		time.Sleep(3 * time.Second)
		for _, i := range []int{o, r} {
			waitFor(t, time.Second, "the store showing the value", func() bool {
				info, err := ms[i].g.GetInfo(t.Context(), "k")
				return err == nil && info.Source == FromCache
			})
			info, _ := ms[i].g.GetInfo(t.Context(), "k")
			if info.Version != ver || info.Age < 3*time.Second {
				t.Errorf("%s: hit %+v, want version %d and an age of at least 3s", ms[i].n.Name(), info, ver)
			}
		}
		if info, err := ms[r].g.GetInfo(t.Context(), "k", Authoritative()); err != nil || info.Source == FromCache {
			t.Errorf("authoritative read: %+v, %v; want it loaded", info, err)
		}
		if _, err := ms[r].g.GetInfo(t.Context(), "missing"); !IsNotFound(err) {
			t.Errorf("GetInfo of a missing key: %v, want not found", err)
		}
	})
}

// TestNonOwnerCachesNotFound: a non-owner caches the owner's "not found"
// under NegativeTTL as the owner does: a second read asks nobody.
func TestNonOwnerCachesNotFound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		nw := gossiptest.New(79)
		ms := fillCluster(t, nw, gossiptest.NewFillNetwork(nw), 3, src)
		neg := make([]*Group[string], len(ms))
		for i, m := range ms {
			g, err := NewGroup(m.n, "neg", GroupConfig[string]{Loader: m.loader, NegativeTTL: time.Minute, SampleEvery: -1})
			if err != nil {
				t.Fatal(err)
			}
			neg[i] = g
		}
		owner := neg[0].Owner("missing")
		r := 0
		for i, m := range ms {
			if m.n.Name() != owner {
				r = i
				break
			}
		}
		if _, err := neg[r].Get(t.Context(), "missing"); !IsNotFound(err) {
			t.Fatalf("first read: %v, want not found", err)
		}
		neg[r].cache.Wait()
		before := neg[r].Stats().FillsOwner
		info, err := neg[r].GetInfo(t.Context(), "missing")
		if !IsNotFound(err) || info.Source != 0 {
			t.Fatalf("second read: %+v, %v; want a cached not found", info, err)
		}
		if st := neg[r].Stats(); st.FillsOwner != before || st.NegativeHits == 0 {
			t.Errorf("second read asked the owner (%d -> %d fills) or was no negative hit (%d)", before, st.FillsOwner, st.NegativeHits)
		}
	})
}

// ttlSource is a source whose loader gives "short:" keys a 1 s TTL.
type ttlSource struct{ *source }

func (s ttlSource) LoadTTL(ctx context.Context, key string) (string, uint64, time.Duration, error) {
	v, ver, err := s.Load(ctx, key)
	if strings.HasPrefix(key, "short:") {
		return v, ver, time.Second, err
	}
	return v, ver, 0, err
}

// TestPerKeyTTL: a TTLLoader's TTL replaces the group's for its value; 0
// keeps the group's.
func TestPerKeyTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := ttlSource{newSource()}
		src.put("short:a", "v1")
		src.put("long:a", "v1")
		n, err := Start(context.Background(), Config{Name: "solo", Standalone: true})
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close(context.Background())
		g, err := NewGroup(n, "rows", GroupConfig[string]{Loader: src, TTL: time.Hour, SampleEvery: -1, EarlyRefresh: -1})
		if err != nil {
			t.Fatal(err)
		}
		mustGet(t, g, "short:a")
		mustGet(t, g, "long:a")
		g.cache.Wait()
		time.Sleep(2 * time.Second)
		before := src.loads()
		mustGet(t, g, "long:a")
		if src.loads() != before {
			t.Error("a value with the group's 1 h TTL was reloaded after 2 s")
		}
		mustGet(t, g, "short:a")
		if src.loads() != before+1 {
			t.Error("a value with its own 1 s TTL was not reloaded after 2 s")
		}
	})
}
