package attack

import (
	"context"
	"encoding/binary"
	"math"
	"net"
	"testing"
	"time"

	"github.com/nearcache/nearcache/node"
)

// forgedHeartbeat is a gossip heartbeat "from" member from with incarnation
// inc, wrapped as memberlist would send it on a plaintext cluster labelled
// cluster: label header (244, length, label), userMsg (8), then our message.
// withSeq false gives the wire of issue 12 (no heartbeat Seq).
func forgedHeartbeat(cluster, from string, inc uint64, withSeq bool) []byte {
	b := []byte{244, byte(len(cluster))}
	b = append(b, cluster...)
	b = append(b, 8)                     // memberlist userMsg
	b = append(b, 1, 2, byte(len(from))) // wire version 1, heartbeat, name
	b = append(b, from...)
	b = binary.AppendUvarint(b, inc) // incarnation
	b = binary.AppendUvarint(b, 1)   // LastSeq
	b = binary.AppendUvarint(b, 0)   // To
	if withSeq {
		b = binary.AppendUvarint(b, 1<<40) // Seq
	}
	return b
}

// TestForgedHeartbeatCannotSilence is issue 12's first attack: one UDP
// heartbeat claiming that member n0 restarted with incarnation 2^64-1, sent
// to the others, made them drop every later invalidation of n0 for good
// while still acknowledging it, so n0's AckAll writes succeeded and stale
// values were served. Now the incarnation is refused as implausible (more
// than 10 minutes ahead of the receiver's clock), and a dropped batch is
// never acknowledged. Fails with either fix removed: with the plausibility
// check gone, AckAll writes fail (no ack for dropped batches); with both
// gone, the reads after them are stale.
func TestForgedHeartbeatCannotSilence(t *testing.T) {
	src := newSource()
	src.put("k", "v1", 1)
	ms := startCluster(t, 3, opts{src: src}) // no key: the attacker needs none
	ctx := t.Context()

	for _, m := range ms[1:] {
		for _, withSeq := range []bool{false, true} {
			for _, inc := range []uint64{math.MaxUint64, uint64(time.Now().Add(time.Hour).UnixNano())} {
				pkt := forgedHeartbeat("attack", "n0", inc, withSeq)
				c, err := net.Dial("udp", m.gossip)
				if err != nil {
					t.Fatal(err)
				}
				for range 3 { // UDP: a copy may be lost
					c.Write(pkt)
				}
				c.Close()
			}
		}
	}
	// Let push/pull spread whatever was taken (PushPullInterval is 300ms).
	deadline := time.Now().Add(1500 * time.Millisecond)
	for ver := uint64(2); time.Now().Before(deadline) || ver < 6; ver++ {
		for _, m := range ms {
			if _, err := m.g.Get(ctx, "k"); err != nil {
				t.Fatal(err)
			}
		}
		v := "v" + string(rune('0'+ver%10))
		src.put("k", v, ver)
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := ms[0].g.Invalidate(wctx, "k", ver, node.AckAll())
		cancel()
		if err != nil {
			t.Fatalf("write %d by the member the forgery targets: %v", ver, err)
		}
		for _, m := range ms {
			got, err := m.g.Get(ctx, "k")
			if err != nil || got != v {
				t.Fatalf("after AckAll write %d, %s serves %q (%v), want %q", ver, m.n.Name(), got, err, v)
			}
		}
	}
}
