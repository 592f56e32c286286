package peer

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"
)

// A batch asks one owner for several keys of one group in one round trip
// (GetMany's misses, issue 13): the client writes one request frame per
// chunk of keys (a chunk fits the server's MaxRequest), all at once, and the
// server answers each key with an ordinary response frame, in order, with
// consecutive ids. So a batch costs one round trip however many chunks it
// takes, a response is checked exactly as a single fill's is, and an owner
// whose Handler is a [BatchHandler] loads a chunk's misses in one query.

const typeFillMany = 0x02 // request type: a batch of keys

// MaxBatchKeys bounds the keys of one batch request frame (a decoder limit:
// a frame claiming more is malformed).
const MaxBatchKeys = 512

// BatchRequest asks the owner for the keys of Group, each with the
// requester's floor (Floors[i] is Keys[i]'s; the owner must not answer below
// it).
type BatchRequest struct {
	Group  string
	From   string // sender's member name (set by the Client)
	Keys   []string
	Floors []uint64
}

// BatchHandler is an optional interface of a [Handler]: it answers a batch
// at once (one source query for its misses). It returns one Response per
// key, in order; a handler that is not a BatchHandler has Fill called for
// each key in turn. The same rules as Fill apply.
type BatchHandler interface {
	FillMany(ctx context.Context, req *BatchRequest) []Response
}

// batchBodyOverhead bounds a batch frame's bytes beside its strings: format,
// type, id, timestamp, four lengths, the count.
const batchBodyOverhead = 2 + 3*binary.MaxVarintLen64 + 8 + 3*binary.MaxVarintLen64

// keyCost is what key i adds to a batch frame, at most.
func keyCost(key string) int { return 2*binary.MaxVarintLen64 + len(key) }

// chunks splits req's keys into runs that each fit a frame body of limit
// bytes and MaxBatchKeys keys; a key too long to share a frame goes alone
// (it is no longer than a single request's).
func chunks(req *BatchRequest, limit int) [][2]int {
	var out [][2]int
	base := batchBodyOverhead + len(req.From) + len(req.Group)
	start, size := 0, base
	for i, k := range req.Keys {
		c := keyCost(k)
		if i > start && (size+c > limit || i-start == MaxBatchKeys) {
			out = append(out, [2]int{start, i})
			start, size = i, base
		}
		size += c
	}
	return append(out, [2]int{start, len(req.Keys)})
}

// appendBatchRequest appends the body of a batch frame for keys[lo:hi].
func appendBatchRequest(dst []byte, id uint64, ts int64, req *BatchRequest, lo, hi int) []byte {
	dst = append(dst, FormatVersion, typeFillMany)
	dst = binary.AppendUvarint(dst, id)
	dst = binary.BigEndian.AppendUint64(dst, uint64(ts))
	dst = appendString(dst, req.From)
	dst = appendString(dst, req.Group)
	dst = binary.AppendUvarint(dst, uint64(hi-lo))
	for i := lo; i < hi; i++ {
		dst = appendString(dst, req.Keys[i])
		dst = binary.AppendUvarint(dst, req.Floors[i])
	}
	return dst
}

// decodeBatchRequest parses a batch frame's body.
func decodeBatchRequest(b []byte) (BatchRequest, reqMeta, error) {
	var req BatchRequest
	var m reqMeta
	d := decoder{b: b}
	if v := d.byte(); v != FormatVersion {
		if d.err != nil {
			return req, m, d.err
		}
		return req, m, fmt.Errorf("%w: format version %d", ErrMalformed, v)
	}
	if t := d.byte(); d.err == nil && t != typeFillMany {
		return req, m, fmt.Errorf("%w: not a batch request (type %#x)", ErrMalformed, t)
	}
	m.id = d.uvarint()
	m.ts = int64(d.uint64())
	req.From = d.string()
	req.Group = d.string()
	n := d.uvarint()
	if d.err == nil && (n == 0 || n > MaxBatchKeys) {
		return BatchRequest{}, reqMeta{}, fmt.Errorf("%w: batch of %d keys (want 1 to %d)", ErrMalformed, n, MaxBatchKeys)
	}
	if d.err == nil && n > uint64(len(b)-d.off)/2 {
		// Every key takes at least two bytes: no allocation for a lie.
		return BatchRequest{}, reqMeta{}, errTruncated
	}
	req.Keys = make([]string, 0, n)
	req.Floors = make([]uint64, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		req.Keys = append(req.Keys, d.string())
		req.Floors = append(req.Floors, d.uvarint())
	}
	if err := d.finish(); err != nil {
		return BatchRequest{}, reqMeta{}, err
	}
	m.signed = b
	return req, m, nil
}

// FillMany asks the owner at addr for every key of req in one round trip and
// returns one Response per key, in order, each as Fill would (an OK below
// its floor is reported as StatusBelowFloor). The error is a transport
// failure of the whole batch, as Fill's is.
func (c *Client) FillMany(ctx context.Context, addr string, req BatchRequest) ([]Response, error) {
	if len(req.Keys) == 0 || len(req.Floors) != len(req.Keys) {
		return nil, fmt.Errorf("peer: FillMany of %d keys with %d floors", len(req.Keys), len(req.Floors))
	}
	c.stats.batches.Add(1)
	req.From = c.cfg.Name
	out := make([]Response, len(req.Keys))
	err := c.do(ctx, addr, func(cc *clientConn) (errKind, error) { return c.exchangeMany(cc, &req, out) })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// exchangeMany writes req's frames at once and reads one response per key.
func (c *Client) exchangeMany(cc *clientConn, req *BatchRequest, out []Response) (errKind, error) {
	keyed, r, kind, err := c.session(cc)
	if err != nil || r != nil {
		if r != nil {
			for i := range out {
				out[i] = *r
			}
		}
		return kind, err
	}
	ts := time.Now().UnixNano()
	first := cc.nextID
	cc.out = cc.out[:0]
	for _, ch := range chunks(req, c.cfg.MaxRequest) {
		id := cc.nextID
		cc.nextID += uint64(ch[1] - ch[0])
		if keyed {
			cc.plain = appendBatchRequest(cc.plain[:0], id, ts, req, ch[0], ch[1])
			cc.sess.sent++
			cc.out = cc.sess.seal(cc.out, cc.sess.sent, cc.plain)
		} else {
			start := len(cc.out)
			cc.out = append(cc.out, 0, 0, 0, 0)
			cc.out = appendBatchRequest(cc.out, id, ts, req, ch[0], ch[1])
			putFrameHeader(cc.out[start:])
		}
	}
	if _, err := cc.nc.Write(cc.out); err != nil {
		return kindIO, err
	}
	for i := range out {
		r, kind, err := c.readResponse(cc, keyed, first+uint64(i), req.Floors[i])
		if err != nil {
			return kind, err
		}
		out[i] = r
	}
	c.trimBuffers(cc)
	return 0, nil
}

// serveBatch answers one batch frame; false means close the connection.
func (s *Server) serveBatch(sc *serverConn, body []byte) bool {
	req, m, err := decodeBatchRequest(body)
	if err != nil {
		s.stats.decodeErrors.Add(1)
		s.log.Debug("peer: malformed batch request", "remote", sc.nc.RemoteAddr(), "err", err)
		s.write(sc, 0, &Response{Status: StatusError, Err: "peer: malformed request"})
		return false
	}
	s.stats.requests.Add(uint64(len(req.Keys)))
	s.stats.batches.Add(1)
	resps := make([]Response, len(req.Keys))
	if reason := s.refuse(sc, &Request{From: req.From}, &m); reason != "" {
		s.log.Debug("peer: refused", "remote", sc.nc.RemoteAddr(), "from", req.From, "reason", reason)
		for i := range resps {
			resps[i] = Response{Status: StatusRefused, Err: reason}
		}
	} else {
		sc.st.working.Store(true)
		s.fillMany(&req, resps)
	}
	sc.out = sc.out[:0]
	for i := range resps {
		if resps[i].Status == StatusError {
			s.stats.errors.Add(1)
		}
		s.appendResponseFrame(sc, m.id+uint64(i), &resps[i])
	}
	return s.flush(sc)
}

// fillMany runs the handler on a batch under one request's time budget.
func (s *Server) fillMany(req *BatchRequest, resps []Response) {
	bh, ok := s.cfg.Handler.(BatchHandler)
	if !ok {
		for i, k := range req.Keys {
			resps[i] = s.fill(&Request{Group: req.Group, Key: k, From: req.From, Floor: req.Floors[i]})
		}
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeout)
	defer cancel()
	var got []Response
	func() {
		defer func() {
			if r := recover(); r != nil {
				s.log.Error("peer: batch handler panicked", "group", req.Group, "keys", len(req.Keys), "panic", r)
				got = nil
			}
		}()
		got = bh.FillMany(ctx, req)
	}()
	for i := range resps {
		if len(got) != len(resps) {
			resps[i] = Response{Status: StatusError, Err: "peer: batch handler failed"}
			continue
		}
		resps[i] = s.fit(req.Floors[i], got[i])
	}
}
