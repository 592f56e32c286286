package server

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
)

func TestPeerMeta(t *testing.T) {
	tests := []struct {
		name string
		meta []byte
		addr string
		want string
	}{
		{name: "ours", meta: EncodeMeta(8080), addr: "10.0.0.7:7946", want: "10.0.0.7:8080"},
		{name: "IPv6", meta: EncodeMeta(8080), addr: "[fd00::7]:7946", want: "[fd00::7]:8080"},
		{name: "none", meta: nil, addr: "10.0.0.7:7946", want: ""},
		{name: "foreign binary", meta: []byte{1, 0x80, 0xff}, addr: "10.0.0.7:7946", want: ""},
		{name: "other JSON", meta: []byte(`{"zone":"b"}`), addr: "10.0.0.7:7946", want: ""},
		{name: "port out of range", meta: []byte(`{"http_port":70000}`), addr: "10.0.0.7:7946", want: ""},
		{name: "bad gossip address", meta: EncodeMeta(8080), addr: "nowhere", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := httpAddr(tt.addr, tt.meta); got != tt.want {
				t.Errorf("httpAddr(%q, %q) = %q, want %q", tt.addr, tt.meta, got, tt.want)
			}
		})
	}
}

func FuzzDecodeMeta(f *testing.F) {
	f.Add(EncodeMeta(8080))
	f.Add([]byte(`{"http_port":-1}`))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		p := decodeMeta(b) // must never panic
		if p < 0 || p > 65535 {
			t.Fatalf("decodeMeta(%q) = %d, out of range", b, p)
		}
		if p > 0 && decodeMeta(EncodeMeta(p)) != p {
			t.Fatalf("round trip of port %d failed", p)
		}
	})
}

func TestFetchPeers(t *testing.T) {
	a := newFixture(t, nil)
	b := newFixture(t, nil)
	do(t, b.ts.URL, "GET", "/v1/groups/items/keys/missing", "") // b has loaded once
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	unreachable := closed.Addr().String()
	closed.Close()

	sa, err := New(Config{Node: a.n, Groups: []Group{{Cache: &fakeCache{}}}})
	if err != nil {
		t.Fatal(err)
	}
	self := sa.status()
	members := []memberStatus{
		{Name: "solo", State: "alive", Self: true},
		{Name: "b", State: "alive", HTTP: strings.TrimPrefix(b.ts.URL, "http://")},
		{Name: "gone", State: "dead", HTTP: unreachable},
		{Name: "mute", State: "alive"},
		{Name: "down", State: "suspect", HTTP: unreachable},
	}
	sa.fetchPeers(context.Background(), self, members)
	byName := map[string]memberStatus{}
	for _, m := range members {
		byName[m.Name] = m
	}
	if p := byName["solo"].Peer; p == nil || !p.Trusted {
		t.Errorf("self view = %+v, want this node's figures", p)
	}
	if p := byName["b"].Peer; p == nil || p.Loads != 1 || len(p.Groups) != 2 || p.Groups[0].Name != "items" {
		t.Errorf("b's view = %+v (err %q), want its items and ro groups with 1 load", p, byName["b"].PeerError)
	}
	for name, want := range map[string]string{"gone": "not a live member", "mute": "no HTTP address", "down": "connection refused"} {
		if m := byName[name]; m.Peer != nil || !strings.Contains(m.PeerError, want) {
			t.Errorf("%s: peer %+v, error %q, want an error with %q", name, m.Peer, m.PeerError, want)
		}
	}

	// Through HTTP: ?peers=1 adds the views, the default does not.
	for _, tt := range []struct {
		query    string
		wantPeer bool
	}{{"", false}, {"?peers=1", true}} {
		code, body, _ := do(t, a.ts.URL, http.MethodGet, "/debug/cluster.json"+tt.query, "")
		st := decode[clusterStatus](t, body)
		if code != 200 || len(st.Members) != 1 || (st.Members[0].Peer != nil) != tt.wantPeer {
			t.Errorf("cluster.json%s = %d %s, want peer view %v", tt.query, code, body, tt.wantPeer)
		}
	}
}
