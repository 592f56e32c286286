package peer

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
)

// The keyed channel (issue 12). With a key, every connection starts with a
// handshake and then carries only AES-GCM frames:
//
//	client -> server  hello     [2][typeHello][key id 8][client nonce 16][target name][from]
//	server -> client  hello ack [2][typeHelloAck][status][server nonce 16][err]
//	either way        sealed    [2][typeSealed][seq 8][AES-GCM(body)]
//
// Both sides derive the connection's two keys (one per direction) with
// HKDF-SHA256 from the fill key, salted with both nonces, the target's member
// name and the direction in the info. A sealed frame's seq counts from 1 in
// each direction; it is the GCM nonce and, with the header, the additional
// data; a response carries the seq of the request it answers. So:
//
//   - values and keys never travel in clear;
//   - a frame replayed into the same connection has an old seq: refused
//     (RefusedReplay) and the connection closed;
//   - a captured connection replayed to any node (the same or another) meets
//     a fresh server nonce, so none of its frames opens: refused (RefusedAuth);
//   - a connection meant for node A and redirected to node B names A as its
//     target: B refuses the hello (RefusedTarget), and could not open its
//     frames anyway (the target is in the key derivation).
//
// The key id (8 bytes of an HMAC of the key) lets a server holding several
// keys (a rotation, see Server.SetKeyring) pick the client's.
const (
	sealedVersion = 2
	typeHello     = 0x10
	typeHelloAck  = 0x11
	typeSealed    = 0x12

	nonceSize    = 16
	keyIDSize    = 8
	sealedHeader = 2 + 8 // version, type, seq
	gcmTag       = 16
	maxHello     = 2 + keyIDSize + nonceSize + 2*(binary.MaxVarintLen64+255)
)

// keyset is an immutable set of fill keys; keys[0] is the primary (the one
// clients use). Swapped whole by SetKeyring.
type keyset struct {
	keys [][]byte
	ids  [][keyIDSize]byte
}

func newKeyset(keys [][]byte) (*keyset, error) {
	ks := &keyset{}
	for i, k := range keys {
		if len(k) == 0 {
			return nil, fmt.Errorf("peer: key %d is empty", i)
		}
		ks.keys = append(ks.keys, append([]byte(nil), k...))
		ks.ids = append(ks.ids, keyID(k))
	}
	return ks, nil
}

func keyID(k []byte) [keyIDSize]byte {
	m := hmac.New(sha256.New, k)
	m.Write([]byte("nearcache fill key id"))
	var id [keyIDSize]byte
	copy(id[:], m.Sum(nil))
	return id
}

// find returns the key whose id is id.
func (ks *keyset) find(id []byte) []byte {
	for i := range ks.ids {
		if hmac.Equal(ks.ids[i][:], id) {
			return ks.keys[i]
		}
	}
	return nil
}

func (ks *keyset) has(id [keyIDSize]byte) bool {
	for i := range ks.ids {
		if ks.ids[i] == id {
			return true
		}
	}
	return false
}

// keys is a keyset that can be swapped at runtime; nil inside = no key.
type keys struct{ p atomic.Pointer[keyset] }

func (k *keys) load() *keyset {
	ks := k.p.Load()
	if ks == nil || len(ks.keys) == 0 {
		return nil
	}
	return ks
}

// session is one connection's pair of AEADs and sequence counters.
type session struct {
	keyID        [keyIDSize]byte
	send, recv   cipher.AEAD
	sent, opened uint64 // last seq sealed, last seq opened
	nonce        [12]byte
}

// newSession derives the two directions' keys; client tells which one sends.
func newSession(key []byte, id [keyIDSize]byte, cNonce, sNonce []byte, target string, client bool) (*session, error) {
	salt := make([]byte, 0, 2*nonceSize)
	salt = append(append(salt, cNonce...), sNonce...)
	derive := func(dir string) (cipher.AEAD, error) {
		k, err := hkdf.Key(sha256.New, key, salt, "nearcache fill v2 "+dir+"\x00"+target, 32)
		if err != nil {
			return nil, err
		}
		b, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(b)
	}
	c2s, err := derive("c2s")
	if err != nil {
		return nil, err
	}
	s2c, err := derive("s2c")
	if err != nil {
		return nil, err
	}
	s := &session{keyID: id, send: s2c, recv: c2s}
	if client {
		s.send, s.recv = c2s, s2c
	}
	return s, nil
}

// seal appends a sealed frame (with its length header) of plain to dst,
// numbered seq.
func (s *session) seal(dst []byte, seq uint64, plain []byte) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, sealedVersion, typeSealed)
	dst = binary.BigEndian.AppendUint64(dst, seq)
	binary.BigEndian.PutUint64(s.nonce[4:], seq)
	ad := dst[start+frameHeader:]
	dst = s.send.Seal(dst, s.nonce[:], plain, ad)
	putFrameHeader(dst[start:])
	return dst
}

var (
	errReplay = errors.New("peer: replayed or reordered frame")
	errOpen   = errors.New("peer: frame does not authenticate")
)

// open checks a sealed frame body and decrypts it into dst; want is the seq
// the frame must carry.
func (s *session) open(dst, body []byte, want uint64) ([]byte, error) {
	if len(body) < sealedHeader+gcmTag || body[0] != sealedVersion || body[1] != typeSealed {
		return nil, fmt.Errorf("%w: not a sealed frame", ErrMalformed)
	}
	seq := binary.BigEndian.Uint64(body[2:sealedHeader])
	if seq < want {
		return nil, errReplay
	}
	if seq != want {
		return nil, fmt.Errorf("%w: frame %d, want %d", ErrMalformed, seq, want)
	}
	binary.BigEndian.PutUint64(s.nonce[4:], seq)
	out, err := s.recv.Open(dst, s.nonce[:], body[sealedHeader:], body[:sealedHeader])
	if err != nil {
		return nil, errOpen
	}
	return out, nil
}

func newNonce() []byte {
	b := make([]byte, nonceSize)
	rand.Read(b) // never fails (crypto/rand since Go 1.24)
	return b
}

func appendHello(dst []byte, id [keyIDSize]byte, cNonce []byte, target, from string) []byte {
	dst = append(dst, sealedVersion, typeHello)
	dst = append(dst, id[:]...)
	dst = append(dst, cNonce...)
	dst = appendString(dst, target)
	return appendString(dst, from)
}

type hello struct {
	id           []byte
	nonce        []byte
	target, from string
}

func decodeHello(b []byte) (hello, error) {
	var h hello
	d := decoder{b: b}
	if v, t := d.byte(), d.byte(); d.err == nil && (v != sealedVersion || t != typeHello) {
		return h, fmt.Errorf("%w: expected a hello (version %d type %#x)", ErrMalformed, v, t)
	}
	h.id = d.bytes(keyIDSize)
	h.nonce = d.bytes(nonceSize)
	h.target = d.lenString(255, "target name")
	h.from = d.lenString(255, "sender name")
	return h, d.finish()
}

func appendHelloAck(dst []byte, st Status, sNonce []byte, reason string) []byte {
	dst = append(dst, sealedVersion, typeHelloAck, byte(st))
	dst = append(dst, sNonce...)
	return appendString(dst, reason)
}

func decodeHelloAck(b []byte) (st Status, sNonce []byte, reason string, err error) {
	d := decoder{b: b}
	if v, t := d.byte(), d.byte(); d.err == nil && (v != sealedVersion || t != typeHelloAck) {
		return 0, nil, "", fmt.Errorf("%w: expected a hello ack (version %d type %#x)", ErrMalformed, v, t)
	}
	st = Status(d.byte())
	sNonce = d.bytes(nonceSize)
	reason = d.lenString(maxErrLen, "reason")
	if err := d.finish(); err != nil {
		return 0, nil, "", err
	}
	if st != StatusOK && st != StatusRefused {
		return 0, nil, "", fmt.Errorf("%w: hello ack status %d", ErrMalformed, st)
	}
	return st, sNonce, reason, nil
}
