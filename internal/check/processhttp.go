//go:build linux

package check

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// groupCounters are the counters of the items group on one node that
// ownerOf and proveCached read.
type groupCounters struct {
	Hits          uint64 `json:"hits"`           // cached-mode reads served from the store
	Misses        uint64 `json:"misses"`         // cached-mode reads not served from the store (while trusted)
	FillsLocal    uint64 `json:"fills_local"`    // loader calls here
	FillsFallback uint64 `json:"fills_fallback"` // owner unreachable: loaded here
}

func (c *procCluster) counters(ctx context.Context, base string) (groupCounters, error) {
	var st struct {
		Groups []groupCounters `json:"groups"`
	}
	if err := c.getJSON(ctx, base+"/debug/cluster.json", &st); err != nil {
		return groupCounters{}, err
	}
	if len(st.Groups) != 1 {
		return groupCounters{}, fmt.Errorf("check: %s: %d groups, want 1", base, len(st.Groups))
	}
	return st.Groups[0], nil
}

func (c *procCluster) getJSON(ctx context.Context, url string, v any) error {
	if err := c.do(ctx, http.MethodGet, url, nil, 2*time.Second, v); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}

// isMember reports whether the node at base lists name among its live
// members; true when it cannot be asked.
func (c *procCluster) isMember(ctx context.Context, base, name string) bool {
	var st struct {
		Members []struct {
			Name string `json:"name"`
		} `json:"members"`
	}
	if err := c.getJSON(ctx, base+"/debug/cluster.json", &st); err != nil {
		return true
	}
	for _, m := range st.Members {
		if m.Name == name {
			return true
		}
	}
	return false
}

// ownerOf finds which node owns key by asking the binary: on a quiet
// cluster, the first read of a key nobody has cached makes its owner (and
// only it) call the loader, whichever node the read went to. The binary
// exposes no ring, and node/internal/ring is not importable from here.
func (c *procCluster) ownerOf(ctx context.Context, key string) (int, error) {
	before := make([]groupCounters, len(c.procs))
	for i, p := range c.procs {
		var err error
		if before[i], err = c.counters(ctx, p.view().base); err != nil {
			return -1, err
		}
	}
	if _, err := c.get(ctx, c.procs[0].view().base, key, 2*time.Second); err != nil {
		return -1, fmt.Errorf("check: probe read of %s: %w", key, err)
	}
	owner := -1
	for i, p := range c.procs {
		after, err := c.counters(ctx, p.view().base)
		if err != nil {
			return -1, err
		}
		if after.FillsFallback != before[i].FillsFallback {
			return -1, fmt.Errorf("check: %s fell back to a local load of %s: owner unknown", p.name, key)
		}
		if after.FillsLocal != before[i].FillsLocal {
			if owner >= 0 {
				return -1, fmt.Errorf("check: %s and %s both loaded %s: owner unknown", c.procs[owner].name, p.name, key)
			}
			owner = i
		}
	}
	if owner < 0 {
		return -1, fmt.Errorf("check: no node loaded %s", key)
	}
	return owner, nil
}

// getAnswer is the JSON of a successful GET.
type getAnswer struct {
	Version uint64 `json:"version"`
}

// putAnswer is the JSON of a successful PUT.
type putAnswer struct {
	Version           uint64   `json:"version"`
	NotAcknowledged   []string `json:"not_acknowledged"`
	InvalidationError string   `json:"invalidation_error"`
}

// get reads key from the node at base (plain cached mode).
func (c *procCluster) get(ctx context.Context, base, key string, timeout time.Duration) (uint64, error) {
	var a getAnswer
	err := c.do(ctx, http.MethodGet, base+"/v1/groups/items/keys/"+key, nil, timeout, &a)
	if err == nil && a.Version == 0 {
		err = errors.New("answer without a version")
	}
	return a.Version, err
}

// put writes key through the node at base.
func (c *procCluster) put(ctx context.Context, base, key, value string, timeout time.Duration) (putAnswer, error) {
	var a putAnswer
	body, _ := json.Marshal(map[string]string{"value": value})
	err := c.do(ctx, http.MethodPut, base+"/v1/groups/items/keys/"+key, body, timeout, &a)
	if err == nil && a.Version == 0 {
		err = errors.New("answer without a version")
	}
	return a, err
}

func (c *procCluster) do(ctx context.Context, method, url string, body []byte, timeout time.Duration, v any) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%d %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	return json.Unmarshal(b, v)
}

// nodeSnapshot is what ProcStopWakeAlone logs of the stopped node, from its
// /debug/cluster.json and /metrics: whether it trusts its cache, whom it
// counts in, and the counters that say what became of its cached entries.
type nodeSnapshot struct {
	Trusted      bool    `json:"trusted"`
	Ready        bool    `json:"ready"`
	MembersAlive int     `json:"members_alive"`
	LastHeard    float64 `json:"last_heard_seconds"`
	Members      []struct {
		Name  string `json:"name"`
		State string `json:"state"`
	} `json:"members"`
	Cluster struct {
		Received     uint64 `json:"received"`
		GapsDetected uint64 `json:"gaps_detected"`
		Repaired     uint64 `json:"repaired"`
		Unrepairable uint64 `json:"unrepairable"`
		PendingGaps  int    `json:"pending_gaps"`
		MessagesRecv uint64 `json:"messages_received"`
		Rejoins      uint64 `json:"rejoins"`
		Degraded     uint64 `json:"degraded_transitions"`
	} `json:"cluster"`
	Groups []struct {
		Hits          uint64 `json:"hits"`
		Misses        uint64 `json:"misses"`
		StaleRejected uint64 `json:"stale_rejected"`
		Degraded      uint64 `json:"degraded"`
		FillsLocal    uint64 `json:"fills_local"`
		FillsOwner    uint64 `json:"fills_owner"`
		FillsFallback uint64 `json:"fills_fallback"`
		InvReceived   uint64 `json:"invalidations_received"`
		InvApplied    uint64 `json:"invalidations_applied"`
		Purges        uint64 `json:"purges"`
	} `json:"groups"`
	Metrics map[string]float64 `json:"-"` // the /metrics samples named in snapshotMetrics
}

// snapshotMetrics are the /metrics families a nodeSnapshot keeps.
var snapshotMetrics = []string{"nearcache_gets_total", "nearcache_local_sets_total", "nearcache_local_keys_",
	"nearcache_fills_total", "nearcache_owner_errors_total", "nearcache_purges_total", "nearcache_trusted"}

// snapshot reads the node at base's status page and metrics.
func (c *procCluster) snapshot(ctx context.Context, base string) (nodeSnapshot, error) {
	var s nodeSnapshot
	if err := c.getJSON(ctx, base+"/debug/cluster.json", &s); err != nil {
		return s, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return s, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return s, fmt.Errorf("GET %s/metrics: %w", base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return s, err
	}
	s.Metrics = map[string]float64{}
	for line := range strings.Lines(string(b)) {
		name, val, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		for _, m := range snapshotMetrics {
			if strings.HasPrefix(name, m) {
				if f, err := strconv.ParseFloat(val, 64); err == nil {
					s.Metrics[name] = f
				}
			}
		}
	}
	return s, nil
}

// logAttrs renders s for a log line.
func (s nodeSnapshot) logAttrs() []any {
	var members []string
	for _, m := range s.Members {
		members = append(members, m.Name+":"+m.State)
	}
	attrs := []any{"trusted", s.Trusted, "ready", s.Ready, "members", strings.Join(members, ","),
		"last_heard_s", s.LastHeard, "cluster", fmt.Sprintf("%+v", s.Cluster)}
	if len(s.Groups) == 1 {
		attrs = append(attrs, "group", fmt.Sprintf("%+v", s.Groups[0]))
	}
	names := slices.Sorted(maps.Keys(s.Metrics))
	var ms []string
	for _, n := range names {
		ms = append(ms, fmt.Sprintf("%s=%g", n, s.Metrics[n]))
	}
	return append(attrs, "metrics", strings.Join(ms, " "))
}
