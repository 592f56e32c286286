package gossip

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func sampleMessages() map[string]any {
	es := []Invalidation{
		{Group: "users", Kind: KindKey, Key: "42", Version: 7, Origin: "a", Seq: 1, SentAt: 1700000000000000000},
		{Group: "users", Kind: KindTag, Key: "team:1", Version: 0, Origin: "a", Seq: 2, SentAt: 1700000000000000000},
		{Group: "orders", Kind: KindGroup, Version: math.MaxUint64, Origin: "a", Seq: 9, SentAt: -5},
	}
	return map[string]any{
		"batch":       &batchMsg{Flags: flagAck, Log: originLog{Origin: "a", Incarnation: 123, Entries: es}},
		"empty batch": &batchMsg{Log: originLog{Origin: "a", Incarnation: 1}},
		"heartbeat":   &heartbeatMsg{From: "node-1", Incarnation: math.MaxUint64, LastSeq: 77},
		"leaving":     &leavingMsg{From: "node-1", Incarnation: 42},
		"ack":         &ackMsg{From: "b", Incarnation: 5, First: 3, Last: 9},
		"repair req":  &repairReqMsg{From: "b", Origin: "a", Incarnation: 123, Ranges: []seqRange{{1, 1}, {5, 90}}},
		"repair resp": &repairRespMsg{From: "c", Earliest: 2, Log: originLog{Origin: "a", Incarnation: 123, Entries: es[:2]}},
		"state": &stateMsg{From: "c",
			Vector: []vecEntry{{"a", 123, 9}, {"b", 5, 0}},
			Logs:   []originLog{{Origin: "a", Incarnation: 123, Entries: es}, {Origin: "b", Incarnation: 5}}},
	}
}

func TestWireRoundTrip(t *testing.T) {
	for name, m := range sampleMessages() {
		t.Run(name, func(t *testing.T) {
			b, err := encodeMessage(m)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeMessage(b)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			normalize(got)
			normalize(m)
			if !reflect.DeepEqual(got, m) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, m)
			}
		})
	}
}

// normalize makes nil and empty slices compare equal.
func normalize(m any) {
	fix := func(l *originLog) {
		if len(l.Entries) == 0 {
			l.Entries = nil
		}
	}
	switch m := m.(type) {
	case *batchMsg:
		fix(&m.Log)
	case *repairRespMsg:
		fix(&m.Log)
	case *repairReqMsg:
		if len(m.Ranges) == 0 {
			m.Ranges = nil
		}
	case *stateMsg:
		for i := range m.Logs {
			fix(&m.Logs[i])
		}
		if len(m.Vector) == 0 {
			m.Vector = nil
		}
		if len(m.Logs) == 0 {
			m.Logs = nil
		}
	}
}

func TestWireRejects(t *testing.T) {
	good := (&heartbeatMsg{From: "a", Incarnation: 1, LastSeq: 2}).encode()
	batch := (&batchMsg{Log: originLog{Origin: "a", Incarnation: 1, Entries: []Invalidation{{Group: "g", Kind: KindKey, Key: "k", Seq: 1}}}}).encode()
	withKind := func(k byte) []byte {
		b := append([]byte(nil), batch...)
		// entry: seqdelta(1) sentAt(1) kind
		b[len(b)-1-1-1-1-1-1] = k // version, key, keylen, group, grouplen, kind
		return b
	}
	longKey := (&batchMsg{Log: originLog{Origin: "a", Incarnation: 1, Entries: []Invalidation{{Group: "g", Kind: KindKey, Key: strings.Repeat("k", MaxKeyLen+1), Seq: 1}}}}).encode()
	tooMany := append((&batchMsg{Log: originLog{Origin: "a", Incarnation: 1}}).encode()[:6], 0xff, 0xff, 0xff, 0x01)
	cases := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "truncated"},
		{"version only", []byte{wireVersion}, "truncated"},
		{"unknown version", append([]byte{9}, good[1:]...), "unknown format version"},
		{"unknown type", []byte{wireVersion, 99}, "unknown message type"},
		{"truncated", good[:len(good)-1], "truncated"},
		{"trailing", append(append([]byte(nil), good...), 0), "trailing"},
		{"oversize", make([]byte, maxMessageSize+1), "exceeds"},
		{"unknown kind", withKind(9), "unknown kind"},
		{"kind zero", withKind(0), "unknown kind"},
		{"key too long", longKey, "key longer"},
		{"too many entries", tooMany, "more than"},
		{"empty name", []byte{wireVersion, msgHeartbeat, 0, 1, 1}, "empty"},
		{"name too long", append([]byte{wireVersion, msgHeartbeat, MaxNameLen + 1}, make([]byte, MaxNameLen+3)...), "longer"},
		{"seq not increasing", []byte{wireVersion, msgBatch, 0, 1, 'a', 1, 1, 0, 0, 1, 0, 0, 0}, "not increasing"},
		{"bad flags", []byte{wireVersion, msgBatch, 0x80, 1, 'a', 1, 0}, "flags"},
		{"ack reversed", (&ackMsg{From: "a", Incarnation: 1, First: 5, Last: 4}).encode(), "reversed"},
		{"varint overflow", []byte{wireVersion, msgHeartbeat, 1, 'a', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0}, "overflows"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := decodeMessage(tc.in)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("decode = %v, %v; want a *DecodeError", m, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// TestBatchBudget: for random inputs, including max-length groups and keys
// and max-length origin names, every batch fits packetBudget unless it holds
// a single invalidation too big for any packet; batches cover every entry in
// order and decode back to the input.
func TestBatchBudget(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	str := func(max int) string {
		switch r.IntN(4) {
		case 0:
			return strings.Repeat("x", max)
		case 1:
			return ""
		}
		return strings.Repeat("y", r.IntN(max+1))
	}
	oversize := 0
	for round := range 300 {
		origin := strings.Repeat("o", 1+r.IntN(MaxNameLen))
		n := 1 + r.IntN(200)
		seq := uint64(r.Uint32())
		es := make([]Invalidation, n)
		for i := range es {
			seq++
			es[i] = Invalidation{Group: str(MaxGroupLen), Kind: Kind(1 + r.IntN(3)), Key: str(MaxKeyLen),
				Version: r.Uint64() >> r.IntN(64), Origin: origin, Seq: seq, SentAt: r.Int64()}
		}
		var got []Invalidation
		for _, b := range encodeBatches(origin, r.Uint64(), flagAck, es) {
			m, err := decodeMessage(b.data)
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			bm := m.(*batchMsg)
			if len(b.data) > packetBudget {
				if !b.oversize || len(bm.Log.Entries) != 1 {
					t.Fatalf("round %d: batch of %d entries is %d bytes > %d", round, len(bm.Log.Entries), len(b.data), packetBudget)
				}
				oversize++
			} else if b.oversize {
				t.Fatalf("round %d: batch of %d bytes marked oversize", round, len(b.data))
			}
			if b.first != bm.Log.Entries[0].Seq || b.last != bm.Log.Entries[len(bm.Log.Entries)-1].Seq {
				t.Fatalf("round %d: range %d-%d does not match entries", round, b.first, b.last)
			}
			got = append(got, bm.Log.Entries...)
		}
		if !reflect.DeepEqual(got, es) {
			t.Fatalf("round %d: batches do not carry the input", round)
		}
	}
	if oversize == 0 {
		t.Fatal("no oversize invalidation generated: the test does not reach the limit")
	}
	// What always fits: a max-length key with a group of up to 128 bytes
	// and a max-length name.
	e := Invalidation{Group: strings.Repeat("g", 128), Kind: KindKey, Key: strings.Repeat("k", MaxKeyLen),
		Version: math.MaxUint64, Seq: math.MaxUint64, SentAt: math.MinInt64}
	b := encodeBatches(strings.Repeat("o", MaxNameLen), math.MaxUint64, flagAck, []Invalidation{e})
	if len(b) != 1 || b[0].oversize {
		t.Fatalf("max key + 128-byte group: %d bytes, want <= %d", len(b[0].data), packetBudget)
	}
}

func TestStreamTracking(t *testing.T) {
	s := newStream(10)
	steps := []struct {
		seq             uint64
		fresh, repaired bool
		gaps            uint64
		high, known     uint64
		missing         int
	}{
		{seq: 10, fresh: false, high: 10, known: 10},
		{seq: 11, fresh: true, high: 11, known: 11},
		{seq: 14, fresh: true, gaps: 2, high: 11, known: 14, missing: 2},
		{seq: 14, fresh: false, high: 11, known: 14, missing: 2},
		{seq: 13, fresh: true, repaired: true, high: 11, known: 14, missing: 1},
		{seq: 12, fresh: true, repaired: true, high: 14, known: 14},
	}
	for i, st := range steps {
		fresh, rep, gaps := s.receive(st.seq)
		if fresh != st.fresh || rep != st.repaired || gaps != st.gaps || s.high != st.high || s.known != st.known || s.missing() != st.missing {
			t.Fatalf("step %d (seq %d): fresh=%v repaired=%v gaps=%d high=%d known=%d missing=%d; want %+v",
				i, st.seq, fresh, rep, gaps, s.high, s.known, s.missing(), st)
		}
	}
	if g := s.note(20); g != 6 || s.missing() != 6 {
		t.Fatalf("note(20) = %d gaps, missing %d; want 6, 6", g, s.missing())
	}
	s.receive(17)
	if r := s.missingRanges(100); !reflect.DeepEqual(r, []seqRange{{15, 16}, {18, 20}}) {
		t.Fatalf("ranges = %v", r)
	}
	if n := s.skip(20); n != 5 || s.high != 20 || s.missing() != 0 {
		t.Fatalf("skip = %d, high %d, missing %d", n, s.high, s.missing())
	}
}

func TestRecentLogEvicts(t *testing.T) {
	l := newRecentLog(3)
	for seq := uint64(1); seq <= 5; seq++ {
		l.add(7, Invalidation{Origin: "a", Seq: seq, Key: "k"})
	}
	for seq := uint64(1); seq <= 5; seq++ {
		_, ok := l.get("a", 7, seq)
		if ok != (seq >= 3) {
			t.Errorf("seq %d present=%v", seq, ok)
		}
	}
	if l.evicted[streamKey{"a", 7}] != 2 {
		t.Errorf("evicted = %d, want 2", l.evicted[streamKey{"a", 7}])
	}
	logs := l.newest(1 << 10)
	if len(logs) != 1 || len(logs[0].Entries) != 3 || logs[0].Entries[0].Seq != 3 {
		t.Fatalf("newest = %+v", logs)
	}
}

// TestLocalStateFitsMessageLimit: a push/pull state with a full log and
// many origins stays under the decoder's limit, so peers accept it.
func TestLocalStateFitsMessageLimit(t *testing.T) {
	c := &Cluster{cfg: Config{Name: "self"}, inc: 1, log: newRecentLog(4096),
		streams: map[streamKey]*stream{}, current: map[string]uint64{}, peers: map[string]*peer{}}
	for i := range 2000 {
		name := strings.Repeat("p", 40) + strconv.Itoa(i)
		c.peers[name] = &peer{state: "dead"}
		c.current[name] = 7
		c.streams[streamKey{name, 7}] = newStream(5)
		c.log.add(7, Invalidation{Group: "g", Kind: KindKey, Key: strings.Repeat("k", 200), Origin: name, Seq: 6})
	}
	b := c.localState()
	m, err := decodeMessage(b)
	if err != nil {
		t.Fatalf("%d-byte state does not decode: %v", len(b), err)
	}
	st := m.(*stateMsg)
	if len(st.Vector) < 100 || len(st.Logs) == 0 {
		t.Fatalf("state carries %d vector entries and %d logs", len(st.Vector), len(st.Logs))
	}
}

// TestPruneForgetsDepartedOrigins: streams of origins gone from the member
// table for FailedMemberRetention are dropped; recent or gapped ones stay.
func TestPruneForgetsDepartedOrigins(t *testing.T) {
	now := time.Now()
	c := &Cluster{cfg: Config{Name: "self", FailedMemberRetention: time.Minute}, inc: 1,
		streams: map[streamKey]*stream{}, current: map[string]uint64{}, peers: map[string]*peer{}}
	add := func(name string, touched time.Time, gap bool) {
		s := newStream(3)
		s.touched = touched
		if gap {
			s.note(5)
		}
		c.streams[streamKey{name, 1}] = s
		c.current[name] = 1
	}
	c.peers["gone"] = &peer{state: "dead", since: now.Add(-2 * time.Minute)}
	add("gone", now.Add(-2*time.Minute), false)
	add("gapped", now.Add(-2*time.Minute), true)
	add("recent", now, false)
	c.peers["alive"] = &peer{state: "alive", since: now.Add(-time.Hour)}
	add("alive", now.Add(-time.Hour), false)
	c.pruneLocked(now)
	var left []string
	for k := range c.streams {
		left = append(left, k.origin)
	}
	slices.Sort(left)
	if !slices.Equal(left, []string{"alive", "gapped", "recent"}) || len(c.current) != 3 || c.peers["gone"] != nil {
		t.Fatalf("after prune: streams %v, current %v", left, c.current)
	}
}
