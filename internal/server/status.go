package server

import (
	"embed"
	"net/http"
	"slices"
	"strings"
	"time"
)

//go:embed static/cluster.html static/cluster.js
var static embed.FS

// clusterStatus is /debug/cluster.json: what the status page shows.
type clusterStatus struct {
	Node             string          `json:"node"`
	Addr             string          `json:"addr"`
	Time             time.Time       `json:"time"`
	Trusted          bool            `json:"trusted"`
	Ready            bool            `json:"ready"`
	ReadyReason      string          `json:"ready_reason,omitempty"`
	MembersAlive     int             `json:"members_alive"`
	LastHeardSeconds float64         `json:"last_heard_seconds"`
	Members          []memberStatus  `json:"members"`
	Cluster          clusterCounters `json:"cluster"`
	Groups           []groupStatus   `json:"groups"`
}

type memberStatus struct {
	Name  string `json:"name"`
	Addr  string `json:"addr"` // gossip
	State string `json:"state"`
	Self  bool   `json:"self"`
	HTTP  string `json:"http,omitempty"` // its API, when it advertises one (EncodeMeta)
	// With ?peers=1: the member's own figures, or why they are missing.
	Peer      *peerView `json:"peer,omitempty"`
	PeerError string    `json:"peer_error,omitempty"`
}

type clusterCounters struct {
	Published           uint64 `json:"published"`
	Received            uint64 `json:"received"`
	Duplicates          uint64 `json:"duplicates"`
	GapsDetected        uint64 `json:"gaps_detected"`
	Repaired            uint64 `json:"repaired"`
	Unrepairable        uint64 `json:"unrepairable"`
	PendingGaps         int    `json:"pending_gaps"`
	MessagesSent        uint64 `json:"messages_sent"`
	MessagesReceived    uint64 `json:"messages_received"`
	DecodeErrors        uint64 `json:"decode_errors"`
	Rejoins             uint64 `json:"rejoins"`
	DegradedTransitions uint64 `json:"degraded_transitions"`
}

type groupStatus struct {
	Name string `json:"name"`
	// HitRatio is hits / (hits + misses); null before the first plain read.
	HitRatio              *float64     `json:"hit_ratio"`
	Hits                  uint64       `json:"hits"`
	Misses                uint64       `json:"misses"`
	StaleRejected         uint64       `json:"stale_rejected"`
	Bypass                uint64       `json:"bypass"`
	Degraded              uint64       `json:"degraded"`
	Loads                 uint64       `json:"loads"`
	LoadErrors            uint64       `json:"load_errors"`
	Coalesced             uint64       `json:"coalesced"`
	FillsLocal            uint64       `json:"fills_local"`    // loader calls here
	FillsOwner            uint64       `json:"fills_owner"`    // misses served by the key's owner
	FillsFallback         uint64       `json:"fills_fallback"` // owner unreachable: loaded here
	FillsServed           uint64       `json:"fills_served"`   // fills this node served as owner
	InvalidationsSent     uint64       `json:"invalidations_sent"`
	InvalidationsReceived uint64       `json:"invalidations_received"`
	InvalidationsApplied  uint64       `json:"invalidations_applied"`
	Purges                uint64       `json:"purges"`
	Propagation           *Propagation `json:"propagation"` // null before the first remote invalidation
	Sampler               samplerView  `json:"sampler"`
}

// samplerView is the consistency sampler's verdict over the last hour: the
// status page says "measured: N nines within the bound".
type samplerView struct {
	Nines       float64 `json:"nines"`        // node.SamplerStats.Nines
	HourChecks  uint64  `json:"hour_checks"`  // sampled hits checked in the last hour
	HourBeyond  uint64  `json:"hour_beyond"`  // of those, served beyond the bound
	BeyondTotal uint64  `json:"beyond_total"` // since start
	MaxBeyondMS float64 `json:"max_beyond_ms"`
}

func (s *Server) status() clusterStatus {
	n := s.cfg.Node
	st := n.Stats()
	rd := s.ready()
	cs := clusterStatus{
		Node:             st.Name,
		Addr:             n.Addr(),
		Time:             time.Now().UTC(),
		Trusted:          st.Trusted,
		Ready:            rd.Ready,
		ReadyReason:      rd.Reason,
		MembersAlive:     st.Members,
		LastHeardSeconds: st.LastHeard.Seconds(),
		Cluster: clusterCounters{
			Published:           st.Cluster.Published,
			Received:            st.Cluster.Received,
			Duplicates:          st.Cluster.Duplicates,
			GapsDetected:        st.Cluster.GapsDetected,
			Repaired:            st.Cluster.Repaired,
			Unrepairable:        st.Cluster.Unrepairable,
			PendingGaps:         st.Cluster.PendingGaps,
			MessagesSent:        st.Cluster.MessagesSent,
			MessagesReceived:    st.Cluster.MessagesReceived,
			DecodeErrors:        st.Cluster.DecodeErrors,
			Rejoins:             st.Cluster.Rejoins,
			DegradedTransitions: st.Cluster.DegradedTransition,
		},
		Members: []memberStatus{},
		Groups:  []groupStatus{},
	}
	for _, m := range n.Members() {
		cs.Members = append(cs.Members, memberStatus{Name: m.Name, Addr: m.Addr, State: m.State,
			Self: m.Name == st.Name, HTTP: httpAddr(m.Addr, m.Meta)})
	}
	slices.SortFunc(cs.Members, func(a, b memberStatus) int { return strings.Compare(a.Name, b.Name) })
	for _, g := range st.Groups {
		gs := groupStatus{
			Name:                  g.Name,
			Hits:                  g.Hits,
			Misses:                g.Misses,
			StaleRejected:         g.StaleRejected,
			Bypass:                g.Bypass,
			Degraded:              g.Degraded,
			Loads:                 g.Loads,
			LoadErrors:            g.LoadErrors,
			Coalesced:             g.Coalesced,
			FillsLocal:            g.FillsLocal,
			FillsOwner:            g.FillsOwner,
			FillsFallback:         g.FillsFallback,
			FillsServed:           g.FillsServed,
			InvalidationsSent:     g.InvalidationsSent,
			InvalidationsReceived: g.InvalidationsReceived,
			InvalidationsApplied:  g.InvalidationsApplied,
			Purges:                g.Purges,
			Sampler: samplerView{Nines: g.Sampler.Nines(), HourChecks: g.Sampler.HourChecks, HourBeyond: g.Sampler.HourBeyond,
				BeyondTotal: g.Sampler.BeyondBound, MaxBeyondMS: float64(g.Sampler.MaxBeyond.Microseconds()) / 1000},
		}
		if total := g.Hits + g.Misses; total > 0 {
			r := float64(g.Hits) / float64(total)
			gs.HitRatio = &r
		}
		if s.cfg.Observer != nil {
			if p, ok := s.cfg.Observer.Propagation(g.Name); ok {
				gs.Propagation = &p
			}
		}
		cs.Groups = append(cs.Groups, gs)
	}
	return cs
}

// handleStatusJSON serves this node's status; with ?peers=1 each member
// also carries its own figures, asked from its API (the status page uses it
// to show how loads and ownership are spread).
func (s *Server) handleStatusJSON(w http.ResponseWriter, r *http.Request) {
	st := s.status()
	if r.URL.Query().Get("peers") == "1" {
		s.fetchPeers(r.Context(), st, st.Members)
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) handleStatusPage(w http.ResponseWriter, r *http.Request) {
	serveStatic(w, "static/cluster.html", "text/html; charset=utf-8")
}

func (s *Server) handleStatusJS(w http.ResponseWriter, r *http.Request) {
	serveStatic(w, "static/cluster.js", "text/javascript; charset=utf-8")
}

func serveStatic(w http.ResponseWriter, name, contentType string) {
	b, err := static.ReadFile(name)
	if err != nil { // cannot happen: embedded at build time
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
}
