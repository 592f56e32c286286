package server

import (
	"strings"
	"testing"
	"time"
)

func TestProbes(t *testing.T) {
	tests := []struct {
		name        string
		requirePeer bool
		closeNode   bool
		wantReady   int
		wantReason  string
	}{
		{name: "standalone is ready", wantReady: 200},
		// A node given seeds must have a peer: a lone standalone node has none.
		{name: "seeds but no peer", requirePeer: true, wantReady: 503, wantReason: "not joined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.RequirePeer = tt.requirePeer })
			if code, b, _ := do(t, f.ts.URL, "GET", "/healthz", ""); code != 200 || !strings.Contains(string(b), `"ok"`) {
				t.Errorf("/healthz = %d %s, want 200 ok", code, b)
			}
			code, b, _ := do(t, f.ts.URL, "GET", "/readyz", "")
			r := decode[readiness](t, b)
			if code != tt.wantReady || r.Ready != (tt.wantReady == 200) || !strings.Contains(r.Reason, tt.wantReason) {
				t.Errorf("/readyz = %d %+v, want %d with reason ~%q", code, r, tt.wantReady, tt.wantReason)
			}
			if !r.Trusted || r.Members != 1 {
				t.Errorf("/readyz = %+v, want trusted with 1 member", r)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	f := newFixture(t, nil)
	do(t, f.ts.URL, "PUT", "/v1/groups/items/keys/k", `{"value":"x"}`)
	// A miss, then reads until one hits: the store applies sets
	// asynchronously (ristretto), so the first reads after a fill may miss.
	for i := 0; f.n.Stats().Groups[0].Hits == 0; i++ {
		if i == 100 {
			t.Fatal("no cache hit after 100 reads")
		}
		do(t, f.ts.URL, "GET", "/v1/groups/items/keys/k", "")
	}
	g := f.n.Stats().Groups[0]
	f.obs.ObservePropagation("items", 3*time.Millisecond)

	code, b, resp := do(t, f.ts.URL, "GET", "/debug/cluster.json", "")
	if code != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("/debug/cluster.json = %d %s", code, b)
	}
	s := decode[clusterStatus](t, b)
	if s.Node != "solo" || !s.Trusted || !s.Ready || s.MembersAlive != 1 {
		t.Errorf("status = %+v, want node solo, trusted, ready, 1 member", s)
	}
	if len(s.Members) != 1 || s.Members[0].Name != "solo" || s.Members[0].State != "alive" || !s.Members[0].Self {
		t.Errorf("members = %+v, want solo alive (self)", s.Members)
	}
	if len(s.Groups) != 2 || s.Groups[0].Name != "items" || s.Groups[1].Name != "ro" {
		t.Fatalf("groups = %+v, want items and ro", s.Groups)
	}
	items, ro := s.Groups[0], s.Groups[1]
	want := float64(g.Hits) / float64(g.Hits+g.Misses)
	if items.HitRatio == nil || *items.HitRatio != want || want <= 0 || want >= 1 {
		t.Errorf("items hit ratio = %v, want hits/(hits+misses) = %d/%d", items.HitRatio, g.Hits, g.Hits+g.Misses)
	}
	if items.Loads != g.Loads || items.Loads == 0 || items.InvalidationsSent != 1 || items.Hits != g.Hits || items.Misses != g.Misses {
		t.Errorf("items = %+v, want the node's figures %+v and 1 invalidation sent", items, g)
	}
	if ro.HitRatio != nil || ro.Propagation != nil {
		t.Errorf("ro = %+v, want no hit ratio and no propagation before any read", ro)
	}
	if p := items.Propagation; p == nil || p.Count != 1 || p.P50MS != 3 || p.MaxMS != 3 {
		t.Errorf("items propagation = %+v, want one 3ms sample", p)
	}

	// The page and its script are served, and the page loads the script.
	for _, tt := range []struct{ path, ctype, want string }{
		{"/debug/cluster", "text/html", `<script src="cluster.js">`},
		{"/debug/cluster.js", "text/javascript", `fetch("cluster.json?peers=1"`},
	} {
		code, b, resp := do(t, f.ts.URL, "GET", tt.path, "")
		if code != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), tt.ctype) || !strings.Contains(string(b), tt.want) {
			t.Errorf("%s = %d %q, body lacks %q", tt.path, code, resp.Header.Get("Content-Type"), tt.want)
		}
	}
}

func TestMetricsEndpoint(t *testing.T) {
	f := newFixture(t, nil)
	do(t, f.ts.URL, "GET", "/v1/groups/items/keys/missing", "")
	code, b, _ := do(t, f.ts.URL, "GET", "/metrics", "")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{
		`nearcache_gets_total{group="items",result="miss"} 1`,
		`nearcache_members 1`,
		`nearcache_load_duration_seconds_count{group="items"`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// Without a Gatherer there is no /metrics.
	f2 := newFixture(t, func(c *Config) { c.Gatherer = nil })
	if code, _, _ := do(t, f2.ts.URL, "GET", "/metrics", ""); code != 404 {
		t.Errorf("/metrics without a Gatherer = %d, want 404", code)
	}
}
