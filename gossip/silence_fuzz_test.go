package gossip

import (
	"encoding/binary"
	"math"
	"testing"
	"time"
)

// FuzzNoMemberSilenced drives message handling (not only decoding) with a
// sequence of well-formed messages an attacker without the key could send
// (heartbeats, batches, leaves, state vectors, naming real or made-up
// members, with any incarnation and seq), then checks that the real member
// "a" is not silenced: once it has outgrown whatever incarnation of its name
// the node took (as it does at its next push/pull), its heartbeat counts and
// its next batch is applied and acknowledged. Catches: an incarnation
// accepted so far ahead that the member can never outgrow it (issue 12's
// 2^64-1), an ack for a batch that was dropped.
//
//	go test -run '^$' -fuzz FuzzNoMemberSilenced -fuzztime 30s ./gossip/
func FuzzNoMemberSilenced(f *testing.F) {
	f.Add([]byte{0, 0, 5, 1})
	f.Add([]byte{1, 0, 5, 1, 2, 0, 6, 3, 3, 0, 4})
	f.Add([]byte{0, 0, 5, 0xff, 1, 0, 2, 7, 2, 0, 3, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		self := uint64(time.Now().UnixNano())
		realA := self - uint64(time.Second)
		c := silenceCluster("b", self, "a")
		c.peers["a"].inc = realA
		names := []string{"a", "b", "c", ""}
		r := fuzzReader{b: data}
		for i := 0; i < 64 && !r.done(); i++ {
			kind, from := r.byte()%5, names[int(r.byte())%len(names)]
			inc := fuzzInc(&r, realA)
			switch kind {
			case 0:
				c.handleMessage((&heartbeatMsg{From: from, Incarnation: inc, LastSeq: r.uvarint(), To: r.uvarint(), Seq: r.uvarint()}).encode())
			case 1:
				seq := r.uvarint()%1000 + 1
				c.handleMessage(batchFrom(from, inc, seq, r.byte()&1 == 0))
			case 2:
				c.handleMessage((&leavingMsg{From: from, Incarnation: inc}).encode())
			case 3:
				c.mergeState((&stateMsg{From: names[2], Vector: []vecEntry{{Origin: from, Incarnation: inc, High: r.uvarint() % 5000}}}).encode())
			case 4:
				c.handleMessage((&ackMsg{From: from, Incarnation: inc, First: 1, Last: 1}).encode())
			}
		}
		// The member outgrows the incarnation of its name the node took.
		inc := realA
		if cur := c.current["a"]; cur >= inc {
			if cur == math.MaxUint64 {
				t.Fatal("the node took incarnation 2^64-1 for a: it can never be outgrown")
			}
			inc = cur + 1
		}
		if !c.plausible(inc) {
			t.Fatalf("a cannot outgrow the incarnation the node took (%d): %d is implausible", c.current["a"], inc)
		}
		c.peers["a"].state = "alive"
		before := c.peers["a"].spoke
		c.handleMessage((&heartbeatMsg{From: "a", Incarnation: inc, To: c.inc, Seq: math.MaxUint64}).encode()) // c.inc: a forged vector may have made this node outgrow its own
		if !c.peers["a"].spoke.After(before) {
			t.Fatal("a's heartbeat at its new incarnation did not count")
		}
		acks := queuedAcks(c)
		c.handleMessage(batchFrom("a", inc, 1<<50, true))
		if queuedAcks(c) != acks+1 {
			t.Fatalf("a's batch at incarnation %d was not acknowledged (current %d)", inc, c.current["a"])
		}
		// A batch of an old incarnation nobody tracks is dropped, and so
		// must not be acknowledged.
		old := uint64(2)
		for c.streams[streamKey{"a", old}] != nil {
			old++
		}
		acks = queuedAcks(c)
		c.handleMessage(batchFrom("a", old, 1, true))
		if queuedAcks(c) != acks {
			t.Fatalf("a dropped batch (incarnation %d, current %d) was acknowledged", old, c.current["a"])
		}
	})
}

// fuzzInc picks an incarnation near the interesting boundaries.
func fuzzInc(r *fuzzReader, realA uint64) uint64 {
	now := uint64(time.Now().UnixNano())
	switch r.byte() % 8 {
	case 0:
		return realA
	case 1:
		return realA - 1
	case 2:
		return realA + 1
	case 3:
		return now + uint64(maxIncarnationAhead) - uint64(time.Millisecond)
	case 4:
		return now + uint64(maxIncarnationAhead) + uint64(time.Millisecond)
	case 5:
		return math.MaxUint64
	case 6:
		return 0
	}
	return r.uvarint()
}

type fuzzReader struct {
	b   []byte
	off int
}

func (r *fuzzReader) done() bool { return r.off >= len(r.b) }

func (r *fuzzReader) byte() byte {
	if r.done() {
		return 0
	}
	r.off++
	return r.b[r.off-1]
}

func (r *fuzzReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b[min(r.off, len(r.b)):])
	if n <= 0 {
		r.off++
		return uint64(r.byte())
	}
	r.off += n
	return v
}
