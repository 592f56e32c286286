package check

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Kind is what an [Event] records.
type Kind uint8

const (
	// KindWrite is a source commit of Version followed by an Invalidate call
	// on Node: Commit is when the source committed it, Start and End bracket
	// the Invalidate call; Err is its error ("" = none).
	KindWrite Kind = iota + 1
	// KindRead is a Get on Node from Start to End that returned Version, or Err.
	KindRead
	// KindTrust is Node's trust flag (G5) changing to Trusted at Start.
	KindTrust
	// KindFault is a fault from Start to End; Nodes are the nodes it cut off
	// from the rest (none for faults that cut nobody off).
	KindFault
	// KindLoad is one loader call on Node for Key, returning Version at Start.
	KindLoad
	// KindConverge is the end of a fault's heal: at End every node was
	// trusted and read every key at the source's version, or Err says why not.
	KindConverge
	// KindPropagation is an invalidation applied on Node End after its origin
	// sent it.
	KindPropagation
)

var kindNames = [...]string{KindWrite: "write", KindRead: "read", KindTrust: "trust", KindFault: "fault",
	KindLoad: "load", KindConverge: "converge", KindPropagation: "propagation"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Event is one entry of a [History]. Times are nanoseconds since the
// recorder started, on the monotonic clock. Unused fields are zero.
type Event struct {
	Kind    Kind     `json:"k"`
	Node    string   `json:"n,omitempty"`
	Key     string   `json:"key,omitempty"`
	Version uint64   `json:"v,omitempty"`
	Commit  int64    `json:"c,omitempty"`
	Start   int64    `json:"s"`
	End     int64    `json:"e,omitempty"`
	AckAll  bool     `json:"ack,omitempty"`
	Trusted bool     `json:"t,omitempty"`
	Err     string   `json:"err,omitempty"`
	Fault   string   `json:"f,omitempty"`
	Nodes   []string `json:"ns,omitempty"`
}

// Params are the settings a history is checked against.
type Params struct {
	Seed         int64         `json:"seed"`
	MaxStaleness time.Duration `json:"max_staleness"`
	// Slack widens the G5 bound: a read is a violation only if its version was
	// superseded more than MaxStaleness+Slack before it started (the
	// watchdog's period and an invalidation in flight when a partition began).
	Slack time.Duration `json:"slack"`
	// LogFed says every read is of a log-fed group (GroupConfig.LogFed, fed
	// from the database's commit log): G9 is checked on every read, against
	// every successful write's End (when the statement that committed it
	// returned, as seen by a writer writing to the database directly).
	LogFed bool `json:"log_fed,omitempty"`
}

// History is a recorded run: its parameters and its events in recording order.
type History struct {
	Params Params  `json:"params"`
	Events []Event `json:"events"`
}

// Recorder collects a history. It is safe for concurrent use.
type Recorder struct {
	start time.Time

	// mu guards chunks and n. Events are kept in chunks of recChunk, so
	// that Add never copies what was recorded: an append growing one slice
	// of millions of events copied hundreds of MB under mu, and every
	// goroutine recording (the nodes' observers applying invalidations
	// among them) waited: a 110 ms stall of the whole workload in a 20 s
	// healthy run, 4 reads staler than PropagationBound for it.
	mu     sync.Mutex
	chunks [][]Event
	n      int
}

// recChunk is how many events one chunk of a Recorder holds.
const recChunk = 4096

// NewRecorder returns a recorder whose clock starts now.
func NewRecorder() *Recorder { return &Recorder{start: time.Now()} }

// Now returns the recorder's clock: nanoseconds since it started (monotonic).
func (r *Recorder) Now() int64 { return int64(time.Since(r.start)) }

// Add appends e.
func (r *Recorder) Add(e Event) {
	r.mu.Lock()
	if r.n%recChunk == 0 {
		r.chunks = append(r.chunks, make([]Event, 0, recChunk))
	}
	c := &r.chunks[len(r.chunks)-1]
	*c = append(*c, e)
	r.n++
	r.mu.Unlock()
}

// Read records a read of key on node from start to end that returned version or err.
func (r *Recorder) Read(node, key string, start, end int64, version uint64, err error) {
	e := Event{Kind: KindRead, Node: node, Key: key, Start: start, End: end, Version: version}
	if err != nil {
		e.Version, e.Err = 0, errString(err)
	}
	r.Add(e)
}

// Write records version of key committed at commit and invalidated on node
// by a call from start to end that returned err.
func (r *Recorder) Write(node, key string, version uint64, commit, start, end int64, ackAll bool, err error) {
	r.Add(Event{Kind: KindWrite, Node: node, Key: key, Version: version, Commit: commit, Start: start, End: end,
		AckAll: ackAll, Err: errString(err)})
}

// Len returns how many events were recorded.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// History returns a copy of what was recorded, with p.
func (r *Recorder) History(p Params) *History {
	r.mu.Lock()
	defer r.mu.Unlock()
	events := make([]Event, 0, r.n)
	for _, c := range r.chunks {
		events = append(events, c...)
	}
	return &History{Params: p, Events: events}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	if s := err.Error(); s != "" {
		return s
	}
	return "error"
}

// Save writes h to path: the params on the first line, then one event per
// line (JSON), so a long history streams.
func (h *History) Save(path string) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("check: save history: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("check: save history: %w", cerr)
		}
	}()
	w := bufio.NewWriter(f)
	if err := h.Encode(w); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("check: save history: %w", err)
	}
	return nil
}

// Encode writes h in Save's format to w.
func (h *History) Encode(w io.Writer) error {
	enc := json.NewEncoder(w)
	if err := enc.Encode(h.Params); err != nil {
		return fmt.Errorf("check: encode history: %w", err)
	}
	for i := range h.Events {
		if err := enc.Encode(&h.Events[i]); err != nil {
			return fmt.Errorf("check: encode history: %w", err)
		}
	}
	return nil
}

// LoadHistory reads a history written by [History.Save].
func LoadHistory(path string) (*History, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("check: load history: %w", err)
	}
	defer f.Close()
	return DecodeHistory(bufio.NewReader(f))
}

// maxEventLine bounds one encoded event.
const maxEventLine = 1 << 20

// DecodeHistory reads a history in Save's format from r.
func DecodeHistory(r io.Reader) (*History, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxEventLine)
	h := &History{}
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("check: decode history: %w", err)
		}
		return nil, errors.New("check: decode history: empty input")
	}
	if err := json.Unmarshal(sc.Bytes(), &h.Params); err != nil {
		return nil, fmt.Errorf("check: decode history params: %w", err)
	}
	for line := 2; sc.Scan(); line++ {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("check: decode history line %d: %w", line, err)
		}
		if e.Kind < KindWrite || e.Kind > KindPropagation {
			return nil, fmt.Errorf("check: decode history line %d: unknown kind %d", line, e.Kind)
		}
		h.Events = append(h.Events, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("check: decode history: %w", err)
	}
	return h, nil
}
