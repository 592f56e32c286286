package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// peerMeta is what a `nearcache node` advertises to the other members in
// its node metadata: where its HTTP API listens, so a status page can show
// every member's figures (how ownership and load are spread).
type peerMeta struct {
	HTTPPort int `json:"http_port"`
}

// EncodeMeta returns node metadata advertising the HTTP port; put it in
// node.Config.Meta. Peers reach the API at their gossip host and this port.
func EncodeMeta(httpPort int) []byte {
	b, _ := json.Marshal(peerMeta{HTTPPort: httpPort})
	return b
}

// decodeMeta returns the HTTP port a member advertises, 0 for none or for
// metadata that is not ours.
func decodeMeta(b []byte) int {
	var m peerMeta
	if len(b) == 0 || len(b) > 512 || json.Unmarshal(b, &m) != nil || m.HTTPPort <= 0 || m.HTTPPort > 65535 {
		return 0
	}
	return m.HTTPPort
}

// httpAddr is the HTTP address of a member at gossip address addr that
// advertised meta, or "".
func httpAddr(addr string, meta []byte) string {
	port := decodeMeta(meta)
	host, _, err := net.SplitHostPort(addr)
	if port == 0 || err != nil {
		return ""
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// peerView is a member's own figures, fetched from its /debug/cluster.json.
type peerView struct {
	Trusted     bool        `json:"trusted"`
	Ready       bool        `json:"ready"`
	Groups      []peerGroup `json:"groups"`
	FillsServed uint64      `json:"fills_served"` // all groups: the keys it owns, as others asked for them
	Loads       uint64      `json:"loads"`        // all groups
}

type peerGroup struct {
	Name        string   `json:"name"`
	HitRatio    *float64 `json:"hit_ratio"`
	Loads       uint64   `json:"loads"`
	FillsServed uint64   `json:"fills_served"`
}

// peerTimeout bounds one fetch of a peer's status.
const peerTimeout = time.Second

// maxStatusBody bounds a peer's status document.
const maxStatusBody = 1 << 20

// fetchPeers fills in each member's view: from this node's own status for
// self, from the member's API for the others (concurrently, bounded by
// peerTimeout); a member that cannot be asked gets PeerError.
func (s *Server) fetchPeers(ctx context.Context, self clusterStatus, members []memberStatus) {
	ctx, cancel := context.WithTimeout(ctx, peerTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for i := range members {
		m := &members[i]
		switch {
		case m.Self:
			v := viewOf(self)
			m.Peer = &v
		case m.HTTP == "":
			m.PeerError = "advertises no HTTP address"
		case m.State != "alive" && m.State != "suspect":
			m.PeerError = "not a live member"
		default:
			wg.Go(func() {
				v, err := s.fetchPeer(ctx, m.HTTP)
				if err != nil {
					m.PeerError = err.Error()
					return
				}
				m.Peer = &v
			})
		}
	}
	wg.Wait()
}

func (s *Server) fetchPeer(ctx context.Context, addr string) (peerView, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.peerScheme+"://"+addr+"/debug/cluster.json", nil)
	if err != nil {
		return peerView{}, err
	}
	if tok := s.tokens.Load().first; tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := s.peerClient.Do(req)
	if err != nil {
		return peerView{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return peerView{}, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	var st clusterStatus
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxStatusBody)).Decode(&st); err != nil {
		return peerView{}, fmt.Errorf("decode status: %w", err)
	}
	return viewOf(st), nil
}

func viewOf(st clusterStatus) peerView {
	v := peerView{Trusted: st.Trusted, Ready: st.Ready, Groups: []peerGroup{}}
	for _, g := range st.Groups {
		v.Groups = append(v.Groups, peerGroup{Name: g.Name, HitRatio: g.HitRatio, Loads: g.Loads, FillsServed: g.FillsServed})
		v.FillsServed += g.FillsServed
		v.Loads += g.Loads
	}
	return v
}
