package gossip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Limits of the wire format. Publish rejects invalidations over them and the
// decoders reject messages over them.
const (
	MaxGroupLen = 255  // bytes in Invalidation.Group
	MaxKeyLen   = 1024 // bytes in Invalidation.Key
	MaxNameLen  = 64   // bytes in a node name (Config.Name)

	wireVersion    = 1
	maxMessageSize = 64 << 10 // any message, packet or stream
	maxEntries     = 16384    // invalidations in one message
	maxOrigins     = 4096     // origins in one state or vector
	maxRanges      = 1024     // seq ranges in one repair request
)

// packetBudget is the largest batch message (our bytes) that fits in one of
// memberlist's UDP packets, derived from memberlist v0.7.0's net.go,
// broadcast.go and security.go:
//
//	UDPBufferSize                     1400
//	- compoundHeaderOverhead             2  (type + count when piggybacked by gossip)
//	- compoundOverhead                   2  (our entry's length in the compound)
//	- userMsgOverhead                    1  (userMsg type byte)
//	- CRC header (protocol >= 5)         5  (hasCrcMsg + crc32; memberlist forgets it)
//	- encryptOverhead(v1)               29  (version 1 + nonce 12 + GCM tag 16)
//	- label overhead                    34  (2 + MaxClusterLen: Config.Cluster)
//	= 1327, minus a 25-byte margin      = 1302
//
// Encryption version 1 is used because memberlist's ProtocolVersion is >= 2.
// A batch holding one invalidation that alone exceeds the budget (a group and a
// key both near their limits) is sent over TCP instead (see encodeBatches).
const packetBudget = 1302

// Message types (byte 1 of every message).
const (
	msgBatch      byte = 1
	msgHeartbeat  byte = 2
	msgAck        byte = 3
	msgRepairReq  byte = 4
	msgRepairResp byte = 5
	msgState      byte = 6
	msgLeaving    byte = 7
)

// batch flags
const flagAck byte = 1 // receivers acknowledge the batch to its origin

// DecodeError reports a malformed message.
type DecodeError struct {
	Offset int    // byte offset where decoding failed
	Reason string // what was wrong
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("gossip: malformed message at byte %d: %s", e.Offset, e.Reason)
}

// originLog is a run of invalidations of one origin incarnation, sorted by
// strictly increasing Seq.
type originLog struct {
	Origin      string
	Incarnation uint64
	Entries     []Invalidation
}

type batchMsg struct {
	Flags byte
	Log   originLog
}

type heartbeatMsg struct {
	From        string
	Incarnation uint64
	LastSeq     uint64
	// To is the recipient's incarnation as the sender knows it, when the
	// sender counts the recipient as a live member (it waits for its acks and
	// sends it every batch); 0 otherwise. A restarted node trusts its cache
	// only once every live peer has named its new incarnation here.
	To uint64
	// Seq numbers the sender's heartbeats within its incarnation, from 1. A
	// receiver takes a heartbeat as news of its sender only when Seq is above
	// the last one it took of that incarnation: a captured heartbeat sent
	// again (encryption does not stop a replay) cannot keep a dead member
	// looking fresh.
	Seq uint64
}

// leavingMsg announces a graceful leave, just before memberlist's: memberlist
// v0.7.0 reports a left node to NotifyLeave with Node.State unset (the field
// it updates is nodeState.State, which shadows it), so receivers could not
// tell a leave from a failure without it.
type leavingMsg struct {
	From        string
	Incarnation uint64
}

func (m *leavingMsg) encode() []byte {
	b := appendHeader(make([]byte, 0, 16+len(m.From)), msgLeaving)
	b = appendName(b, m.From)
	return binary.AppendUvarint(b, m.Incarnation)
}

// ackMsg acknowledges the batch [First, Last] of the origin's incarnation.
type ackMsg struct {
	From        string
	Incarnation uint64
	First, Last uint64
}

type seqRange struct{ First, Last uint64 }

type repairReqMsg struct {
	From        string
	Origin      string
	Incarnation uint64
	Ranges      []seqRange
}

// repairRespMsg answers a repairReqMsg with the entries the responder has.
// Earliest is the lowest seq of that incarnation the responder may still hold
// (0: it holds none).
type repairRespMsg struct {
	From     string
	Earliest uint64
	Log      originLog
}

type vecEntry struct {
	Origin      string
	Incarnation uint64
	High        uint64
}

type stateMsg struct {
	From   string
	Vector []vecEntry
	Logs   []originLog
}

// ---- encoding ----

func appendHeader(b []byte, typ byte) []byte { return append(b, wireVersion, typ) }

func appendName(b []byte, s string) []byte {
	b = append(b, byte(len(s)))
	return append(b, s...)
}

// appendEntries appends count and entries; seq and sentAt are delta-coded.
func appendEntries(b []byte, es []Invalidation) []byte {
	b = binary.AppendUvarint(b, uint64(len(es)))
	var prevSeq uint64
	var prevAt int64
	for i := range es {
		b = appendEntry(b, &es[i], prevSeq, prevAt)
		prevSeq, prevAt = es[i].Seq, es[i].SentAt
	}
	return b
}

func appendEntry(b []byte, e *Invalidation, prevSeq uint64, prevAt int64) []byte {
	b = binary.AppendUvarint(b, e.Seq-prevSeq)
	b = binary.AppendVarint(b, e.SentAt-prevAt)
	b = append(b, byte(e.Kind), byte(len(e.Group)))
	b = append(b, e.Group...)
	b = binary.AppendUvarint(b, uint64(len(e.Key)))
	b = append(b, e.Key...)
	return binary.AppendUvarint(b, e.Version)
}

func appendLog(b []byte, l *originLog) []byte {
	b = appendName(b, l.Origin)
	b = binary.AppendUvarint(b, l.Incarnation)
	return appendEntries(b, l.Entries)
}

func (m *batchMsg) encode() []byte {
	b := appendHeader(make([]byte, 0, 64), msgBatch)
	b = append(b, m.Flags)
	return appendLog(b, &m.Log)
}

func (m *heartbeatMsg) encode() []byte {
	b := appendHeader(make([]byte, 0, 32+len(m.From)), msgHeartbeat)
	b = appendName(b, m.From)
	b = binary.AppendUvarint(b, m.Incarnation)
	b = binary.AppendUvarint(b, m.LastSeq)
	b = binary.AppendUvarint(b, m.To)
	return binary.AppendUvarint(b, m.Seq)
}

func (m *ackMsg) encode() []byte {
	b := appendHeader(make([]byte, 0, 40+len(m.From)), msgAck)
	b = appendName(b, m.From)
	b = binary.AppendUvarint(b, m.Incarnation)
	b = binary.AppendUvarint(b, m.First)
	return binary.AppendUvarint(b, m.Last)
}

func (m *repairReqMsg) encode() []byte {
	b := appendHeader(nil, msgRepairReq)
	b = appendName(b, m.From)
	b = appendName(b, m.Origin)
	b = binary.AppendUvarint(b, m.Incarnation)
	b = binary.AppendUvarint(b, uint64(len(m.Ranges)))
	for _, r := range m.Ranges {
		b = binary.AppendUvarint(b, r.First)
		b = binary.AppendUvarint(b, r.Last-r.First)
	}
	return b
}

func (m *repairRespMsg) encode() []byte {
	b := appendHeader(nil, msgRepairResp)
	b = appendName(b, m.From)
	b = binary.AppendUvarint(b, m.Earliest)
	return appendLog(b, &m.Log)
}

func (m *stateMsg) encode() []byte {
	b := appendHeader(nil, msgState)
	b = appendName(b, m.From)
	b = binary.AppendUvarint(b, uint64(len(m.Vector)))
	for _, v := range m.Vector {
		b = appendName(b, v.Origin)
		b = binary.AppendUvarint(b, v.Incarnation)
		b = binary.AppendUvarint(b, v.High)
	}
	b = binary.AppendUvarint(b, uint64(len(m.Logs)))
	for i := range m.Logs {
		b = appendLog(b, &m.Logs[i])
	}
	return b
}

// encodedBatch is one batch message ready to send.
type encodedBatch struct {
	data        []byte
	first, last uint64 // seq range it carries
	oversize    bool   // one invalidation larger than packetBudget: send over TCP
}

// encodeBatches splits entries (sorted by increasing, contiguous Seq) into
// batch messages of at most packetBudget bytes. An entry too large to fit
// even alone becomes its own oversize batch.
func encodeBatches(origin string, inc uint64, flags byte, es []Invalidation) []encodedBatch {
	var out []encodedBatch
	head := appendHeader(make([]byte, 0, 32), msgBatch)
	head = append(head, flags)
	head = appendName(head, origin)
	head = binary.AppendUvarint(head, inc)
	// The count is written after the entries are chosen.
	countLen := func(n int) int {
		l := 1
		for x := uint64(n); x >= 0x80; x >>= 7 {
			l++
		}
		return l
	}
	body := make([]byte, 0, packetBudget)
	tmp := make([]byte, 0, 64)
	start, n := 0, 0
	var prevSeq uint64
	var prevAt int64
	flush := func(end int) {
		b := make([]byte, 0, len(head)+countLen(n)+len(body))
		b = append(b, head...)
		b = binary.AppendUvarint(b, uint64(n))
		b = append(b, body...)
		out = append(out, encodedBatch{data: b, first: es[start].Seq, last: es[end-1].Seq, oversize: len(b) > packetBudget})
		body, n, prevSeq, prevAt = body[:0], 0, 0, 0
		start = end
	}
	for i := range es {
		tmp = appendEntry(tmp[:0], &es[i], prevSeq, prevAt)
		if n > 0 && (len(head)+countLen(n+1)+len(body)+len(tmp) > packetBudget || n == maxEntries) {
			flush(i)
			tmp = appendEntry(tmp[:0], &es[i], 0, 0)
		}
		body = append(body, tmp...)
		n++
		prevSeq, prevAt = es[i].Seq, es[i].SentAt
	}
	if n > 0 {
		flush(len(es))
	}
	return out
}

// ---- decoding ----

type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(reason string) {
	if r.err == nil {
		r.err = &DecodeError{Offset: r.off, Reason: reason}
	}
}

func (r *reader) u8() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.fail("truncated")
		return 0
	}
	v := r.b[r.off]
	r.off++
	return v
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if !r.advance(n) {
		return 0
	}
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b[r.off:])
	if !r.advance(n) {
		return 0
	}
	return v
}

// advance moves past a varint of n bytes as encoding/binary reports it:
// n == 0 means the input ended, n < 0 that the value overflows 64 bits.
func (r *reader) advance(n int) bool {
	switch {
	case n == 0:
		r.fail("truncated")
		return false
	case n < 0:
		r.fail("varint overflows 64 bits")
		return false
	}
	r.off += n
	return true
}

func (r *reader) bytesN(n uint64, max int, what string) string {
	if r.err != nil {
		return ""
	}
	if n > uint64(max) {
		r.fail(fmt.Sprintf("%s longer than %d bytes", what, max))
		return ""
	}
	if uint64(len(r.b)-r.off) < n {
		r.fail("truncated")
		return ""
	}
	s := string(r.b[r.off : r.off+int(n)])
	r.off += int(n)
	return s
}

func (r *reader) name(what string) string {
	n := r.u8()
	if r.err == nil && n == 0 {
		r.fail(what + " is empty")
		return ""
	}
	return r.bytesN(uint64(n), MaxNameLen, what)
}

func (r *reader) count(max int, what string) int {
	n := r.uvarint()
	if r.err == nil && n > uint64(max) {
		r.fail(fmt.Sprintf("more than %d %s", max, what))
		return 0
	}
	// Every element takes at least one byte: a cheap guard against huge
	// allocations from a short message.
	if r.err == nil && n > uint64(len(r.b)-r.off) {
		r.fail("truncated")
		return 0
	}
	return int(n)
}

func (r *reader) entries(origin string) []Invalidation {
	n := r.count(maxEntries, "invalidations")
	if r.err != nil || n == 0 {
		return nil
	}
	es := make([]Invalidation, 0, n)
	var seq uint64
	var at int64
	for i := 0; i < n && r.err == nil; i++ {
		d := r.uvarint()
		if r.err == nil && d == 0 {
			r.fail("sequence numbers not increasing")
		}
		if r.err == nil && seq > math.MaxUint64-d {
			r.fail("sequence number overflows")
		}
		seq += d
		at += r.varint()
		k := Kind(r.u8())
		if r.err == nil && (k < KindKey || k > KindProgress) {
			r.fail(fmt.Sprintf("unknown kind %d", k))
		}
		g := r.bytesN(uint64(r.u8()), MaxGroupLen, "group")
		key := r.bytesN(r.uvarint(), MaxKeyLen, "key")
		v := r.uvarint()
		es = append(es, Invalidation{Group: g, Kind: k, Key: key, Version: v, Origin: origin, Seq: seq, SentAt: at})
	}
	return es
}

func (r *reader) log() originLog {
	var l originLog
	l.Origin = r.name("origin")
	l.Incarnation = r.uvarint()
	l.Entries = r.entries(l.Origin)
	return l
}

// decodeMessage decodes any message. It returns one of *batchMsg,
// *heartbeatMsg, *ackMsg, *repairReqMsg, *repairRespMsg, *stateMsg, or an
// error (a *DecodeError); it never panics.
func decodeMessage(b []byte) (any, error) {
	if len(b) > maxMessageSize {
		return nil, &DecodeError{Offset: maxMessageSize, Reason: fmt.Sprintf("message of %d bytes exceeds %d", len(b), maxMessageSize)}
	}
	r := &reader{b: b}
	if v := r.u8(); r.err == nil && v != wireVersion {
		r.off--
		r.fail(fmt.Sprintf("unknown format version %d", v))
	}
	typ := r.u8()
	if r.err != nil {
		return nil, r.err
	}
	var msg any
	switch typ {
	case msgBatch:
		m := &batchMsg{Flags: r.u8()}
		if r.err == nil && m.Flags&^flagAck != 0 {
			r.fail("unknown flags")
		}
		m.Log = r.log()
		msg = m
	case msgHeartbeat:
		msg = &heartbeatMsg{From: r.name("from"), Incarnation: r.uvarint(), LastSeq: r.uvarint(), To: r.uvarint(), Seq: r.uvarint()}
	case msgLeaving:
		msg = &leavingMsg{From: r.name("from"), Incarnation: r.uvarint()}
	case msgAck:
		m := &ackMsg{From: r.name("from"), Incarnation: r.uvarint(), First: r.uvarint(), Last: r.uvarint()}
		if r.err == nil && m.Last < m.First {
			r.fail("ack range reversed")
		}
		msg = m
	case msgRepairReq:
		m := &repairReqMsg{From: r.name("from"), Origin: r.name("origin"), Incarnation: r.uvarint()}
		n := r.count(maxRanges, "ranges")
		for i := 0; i < n && r.err == nil; i++ {
			f := r.uvarint()
			d := r.uvarint()
			if r.err == nil && f > math.MaxUint64-d {
				r.fail("range overflows")
			}
			m.Ranges = append(m.Ranges, seqRange{f, f + d})
		}
		msg = m
	case msgRepairResp:
		msg = &repairRespMsg{From: r.name("from"), Earliest: r.uvarint(), Log: r.log()}
	case msgState:
		m := &stateMsg{From: r.name("from")}
		n := r.count(maxOrigins, "vector entries")
		for i := 0; i < n && r.err == nil; i++ {
			m.Vector = append(m.Vector, vecEntry{Origin: r.name("origin"), Incarnation: r.uvarint(), High: r.uvarint()})
		}
		n = r.count(maxOrigins, "logs")
		for i := 0; i < n && r.err == nil; i++ {
			m.Logs = append(m.Logs, r.log())
		}
		msg = m
	default:
		r.off--
		r.fail(fmt.Sprintf("unknown message type %d", typ))
	}
	if r.err == nil && r.off != len(b) {
		r.fail(fmt.Sprintf("%d trailing bytes", len(b)-r.off))
	}
	if r.err != nil {
		return nil, r.err
	}
	return msg, nil
}

// encodeMessage encodes any message decodeMessage returns.
func encodeMessage(m any) ([]byte, error) {
	switch m := m.(type) {
	case *batchMsg:
		return m.encode(), nil
	case *heartbeatMsg:
		return m.encode(), nil
	case *leavingMsg:
		return m.encode(), nil
	case *ackMsg:
		return m.encode(), nil
	case *repairReqMsg:
		return m.encode(), nil
	case *repairRespMsg:
		return m.encode(), nil
	case *stateMsg:
		return m.encode(), nil
	}
	return nil, errors.New("gossip: unknown message")
}
