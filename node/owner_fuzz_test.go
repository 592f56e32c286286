package node

import (
	"bytes"
	"testing"
)

// FuzzDecodeMeta: the member metadata decoder (what any member, or anyone
// on a plaintext network, advertises) never panics, yields a port peers
// can dial or 0, keeps the user's part intact (a suffix of the input), and
// inverts encodeMeta. Catches: a port over 65535 or a negative one taken from
// a crafted varint, metadata lost or cut.
//
//	go test -run '^$' -fuzz FuzzDecodeMeta -fuzztime 30s ./node/
func FuzzDecodeMeta(f *testing.F) {
	f.Add(encodeMeta(7946, []byte("zone=a")))
	f.Add(encodeMeta(0, nil))
	f.Add(encodeMeta(65535, bytes.Repeat([]byte{0xff}, 500)))
	f.Add([]byte{metaVersion, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02})
	f.Add([]byte{metaVersion, 0xff, 0xff, 0x04})
	f.Add([]byte{2, 1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		port, user := decodeMeta(b)
		if port < 0 || port > 65535 {
			t.Fatalf("port %d from %x", port, b)
		}
		if !bytes.HasSuffix(b, user) {
			t.Fatalf("user part %x is not the end of %x", user, b)
		}
		if port == 0 && len(b) > 0 && b[0] != metaVersion && !bytes.Equal(user, b) {
			t.Fatalf("foreign metadata %x, yet the user part is only %x", b, user)
		}
		if port > 0 {
			p2, u2 := decodeMeta(encodeMeta(port, user))
			if p2 != port || !bytes.Equal(u2, user) {
				t.Fatalf("encodeMeta(%d, %x) decodes to (%d, %x)", port, user, p2, u2)
			}
		}
		for _, p := range []int{1, 80, port, 65535} {
			if p == 0 {
				continue
			}
			p2, u2 := decodeMeta(encodeMeta(p, b))
			if p2 != p || !bytes.Equal(u2, b) {
				t.Fatalf("encodeMeta(%d, %x) decodes to (%d, %x)", p, b, p2, u2)
			}
		}
	})
}
