package peer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
)

// FormatVersion is the wire format version written in every message.
const FormatVersion = 1

const (
	typeFill = 0x01 // the only request type
	flagMAC  = 0x80 // in the type/status byte: a MAC follows the body
	macSize  = 32   // HMAC-SHA256

	frameHeader = 4
	maxErrLen   = 1024 // Response.Err is cut to this many bytes on the wire
	// respOverhead bounds a response frame beyond its value: version, status,
	// three uvarints, the err string with its length, the MAC.
	respOverhead = 2 + 3*binary.MaxVarintLen64 + binary.MaxVarintLen64 + maxErrLen + macSize
)

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("peer: malformed message")

// Request asks the owner of Key in Group for its value.
type Request struct {
	Group, Key string
	From       string // sender's member name
	Floor      uint64 // requester's version floor for the key: the owner must not answer below it
	// Deadline is carried implicitly by ctx on the client; the server bounds
	// handling by its own timeout.
}

// Status is the outcome of a fill. The zero Status is invalid: a handler
// must set one.
type Status uint8

const (
	StatusOK         Status = iota + 1 // Version and Value are the key's
	StatusNotFound                     // the source has no such key (Version may carry its version)
	StatusError                        // the owner failed; Err says why
	StatusRefused                      // authentication, replay or membership check failed; Err says which
	StatusOverloaded                   // the owner sheds load; try later or load locally
	StatusBelowFloor                   // the owner has nothing at or above Request.Floor
	statusEnd
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusNotFound:
		return "not found"
	case StatusError:
		return "error"
	case StatusRefused:
		return "refused"
	case StatusOverloaded:
		return "overloaded"
	case StatusBelowFloor:
		return "below floor"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

func (s Status) valid() bool { return s >= StatusOK && s < statusEnd }

// Response is the owner's answer.
type Response struct {
	Status  Status
	Version uint64
	Value   []byte // owned by the caller after Fill returns
	Err     string // for Error/Refused: a short message
}

// Handler serves fills on the owner.
type Handler interface {
	// Fill answers req. ctx ends when the server closes or the request's time
	// budget (ServerConfig.Timeout) runs out; Fill must return soon after, as
	// Server.Close waits for it. req and its strings may be kept; the returned
	// Value is only read, until the response is written. Fill is called
	// concurrently from many connections and must be safe for that.
	Fill(ctx context.Context, req *Request) Response
}

// HandlerFunc adapts a function to [Handler].
type HandlerFunc func(ctx context.Context, req *Request) Response

// Fill calls f(ctx, req).
func (f HandlerFunc) Fill(ctx context.Context, req *Request) Response { return f(ctx, req) }

// reqMeta is what a decoded request carries besides the Request itself.
type reqMeta struct {
	id     uint64
	ts     int64
	signed []byte // the bytes the MAC covers (aliases the input)
	mac    []byte // nil when the request has no MAC (aliases the input)
}

// respMeta is what a decoded response carries besides the Response itself.
type respMeta struct {
	id     uint64
	signed []byte
	mac    []byte
}

// appendRequest appends the body of a request (without the frame header) to
// dst. With mac non-nil it appends the MAC and sets the flag.
func appendRequest(dst []byte, id uint64, ts int64, req *Request, mac hash.Hash) []byte {
	start := len(dst)
	t := byte(typeFill)
	if mac != nil {
		t |= flagMAC
	}
	dst = append(dst, FormatVersion, t)
	dst = binary.AppendUvarint(dst, id)
	dst = binary.BigEndian.AppendUint64(dst, uint64(ts))
	dst = appendString(dst, req.From)
	dst = appendString(dst, req.Group)
	dst = appendString(dst, req.Key)
	dst = binary.AppendUvarint(dst, req.Floor)
	if mac != nil {
		mac.Reset()
		mac.Write(dst[start:])
		dst = mac.Sum(dst)
	}
	return dst
}

// appendResponse appends the body of a response answering request id. With
// mac non-nil it appends a MAC over the body, reqTS and reqMAC.
func appendResponse(dst []byte, id uint64, resp *Response, mac hash.Hash, reqTS int64, reqMAC []byte) []byte {
	start := len(dst)
	s := byte(resp.Status)
	if mac != nil {
		s |= flagMAC
	}
	dst = append(dst, FormatVersion, s)
	dst = binary.AppendUvarint(dst, id)
	dst = binary.AppendUvarint(dst, resp.Version)
	dst = binary.AppendUvarint(dst, uint64(len(resp.Value)))
	dst = append(dst, resp.Value...)
	e := resp.Err
	if len(e) > maxErrLen {
		e = e[:maxErrLen]
	}
	dst = appendString(dst, e)
	if mac != nil {
		sumResponse(mac, dst[start:], reqTS, reqMAC)
		dst = mac.Sum(dst)
	}
	return dst
}

// sumResponse resets mac and writes what a response MAC covers: the signed
// response bytes, then the request's timestamp and MAC.
func sumResponse(mac hash.Hash, signed []byte, reqTS int64, reqMAC []byte) {
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(reqTS))
	mac.Reset()
	mac.Write(signed)
	mac.Write(ts[:])
	mac.Write(reqMAC)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// decodeRequest parses a request body. The MAC, if any, is not checked here.
func decodeRequest(b []byte) (Request, reqMeta, error) {
	var req Request
	var m reqMeta
	d := decoder{b: b}
	if v := d.byte(); v != FormatVersion {
		if d.err != nil {
			return req, m, d.err
		}
		return req, m, fmt.Errorf("%w: format version %d", ErrMalformed, v)
	}
	t := d.byte()
	if d.err == nil && t&^flagMAC != typeFill {
		return req, m, fmt.Errorf("%w: unknown request type %#x", ErrMalformed, t)
	}
	m.id = d.uvarint()
	m.ts = int64(d.uint64())
	req.From = d.string()
	req.Group = d.string()
	req.Key = d.string()
	req.Floor = d.uvarint()
	if d.err != nil {
		return Request{}, reqMeta{}, d.err
	}
	m.signed = b[:d.off]
	if t&flagMAC != 0 {
		m.mac = d.bytes(macSize)
	}
	if err := d.finish(); err != nil {
		return Request{}, reqMeta{}, err
	}
	return req, m, nil
}

// decodeResponse parses a response body; Value aliases b. A value longer than
// maxValue is rejected before anything is allocated. The MAC is not checked.
func decodeResponse(b []byte, maxValue int) (Response, respMeta, error) {
	var r Response
	var m respMeta
	d := decoder{b: b}
	if v := d.byte(); v != FormatVersion {
		if d.err != nil {
			return r, m, d.err
		}
		return r, m, fmt.Errorf("%w: format version %d", ErrMalformed, v)
	}
	s := d.byte()
	r.Status = Status(s &^ flagMAC)
	if d.err == nil && !r.Status.valid() {
		return Response{}, m, fmt.Errorf("%w: unknown status %d", ErrMalformed, r.Status)
	}
	m.id = d.uvarint()
	r.Version = d.uvarint()
	r.Value = d.lenBytes(maxValue, "value")
	r.Err = d.lenString(maxErrLen, "error string")
	if d.err != nil {
		return Response{}, respMeta{}, d.err
	}
	m.signed = b[:d.off]
	if s&flagMAC != 0 {
		m.mac = d.bytes(macSize)
	}
	if err := d.finish(); err != nil {
		return Response{}, respMeta{}, err
	}
	return r, m, nil
}

// decoder reads from b; after the first error every read returns zero and
// err keeps that first error.
type decoder struct {
	b   []byte
	off int
	err error
}

var errTruncated = fmt.Errorf("%w: truncated", ErrMalformed)

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *decoder) byte() byte {
	if d.err != nil || d.off >= len(d.b) {
		d.fail(errTruncated)
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}

func (d *decoder) uint64() uint64 {
	p := d.bytes(8)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint64(p)
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		if n == 0 {
			d.fail(errTruncated)
		} else {
			d.fail(fmt.Errorf("%w: varint overflows 64 bits", ErrMalformed))
		}
		return 0
	}
	d.off += n
	return v
}

// bytes returns the next n bytes, aliasing the input.
func (d *decoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b)-d.off {
		d.fail(errTruncated)
		return nil
	}
	p := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return p
}

// lenBytes reads a uvarint length, at most limit, then that many bytes.
func (d *decoder) lenBytes(limit int, what string) []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(limit) || n > math.MaxInt32 {
		d.fail(fmt.Errorf("%w: %s of %d bytes exceeds the limit of %d", ErrMalformed, what, n, limit))
		return nil
	}
	return d.bytes(int(n))
}

func (d *decoder) lenString(limit int, what string) string {
	return string(d.lenBytes(limit, what))
}

// string reads a length-prefixed string bounded only by the input.
func (d *decoder) string() string {
	return d.lenString(len(d.b), "string")
}

func (d *decoder) finish() error {
	if d.err != nil {
		return d.err
	}
	if d.off != len(d.b) {
		return fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(d.b)-d.off)
	}
	return nil
}

// readFrame reads one frame into buf (grown as needed) and returns the body.
// A length of zero or above limit is an error and nothing is allocated for it.
func readFrame(r io.Reader, buf []byte, limit int) ([]byte, error) {
	var h [frameHeader]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return buf, err
	}
	n := binary.BigEndian.Uint32(h[:])
	if n == 0 || uint64(n) > uint64(limit) {
		return buf, fmt.Errorf("%w: frame of %d bytes (limit %d)", errFrameSize, n, limit)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return buf, err
	}
	return buf, nil
}

var errFrameSize = fmt.Errorf("%w: bad frame length", ErrMalformed)

// putFrameHeader writes the length of frame[frameHeader:] into frame[:frameHeader].
func putFrameHeader(frame []byte) {
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-frameHeader))
}
