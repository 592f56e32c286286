package ring

import (
	"encoding/binary"
	"hash/fnv"
	"testing"
)

// Golden owners for members node-0..node-4 (see TestGolden). Regenerate only
// on a deliberate, documented change of the ring's placement: every process
// of a cluster must agree on it, so a rolling upgrade across a change would
// split ownership.
var (
	goldenHash    uint32 = 0x5eb49b12 // Hash([]byte("nearcache"))
	goldenDefault        = map[string]string{
		"":           "node-1",
		"a":          "node-2",
		"user:1":     "node-2",
		"user:2":     "node-3",
		"user:42":    "node-4",
		"order/9001": "node-0",
		"key-0":      "node-1",
		"key-1":      "node-2",
		"key-2":      "node-0",
		"key-3":      "node-0",
		"\xff\x00":   "node-0",
	}
	golden50 = map[string]string{
		"":           "node-1",
		"a":          "node-2",
		"user:1":     "node-4",
		"user:2":     "node-3",
		"user:42":    "node-3",
		"order/9001": "node-4",
		"key-0":      "node-1",
		"key-1":      "node-0",
		"key-2":      "node-0",
		"key-3":      "node-1",
		"\xff\x00":   "node-4",
	}
)

// TestHashIsFNV1aFmix checks Hash against the standard library's FNV-1a 64
// plus murmur3's fmix64, written independently, and the string and byte
// forms against each other.
func TestHashIsFNV1aFmix(t *testing.T) {
	ref := func(b []byte) uint32 {
		f := fnv.New64a()
		f.Write(b)
		h := binary.BigEndian.Uint64(f.Sum(nil))
		h ^= h >> 33
		h *= 0xff51afd7ed558ccd
		h ^= h >> 33
		h *= 0xc4ceb9fe1a85ec53
		h ^= h >> 33
		return uint32(h)
	}
	for _, s := range []string{"", "a", "nearcache", "0node-1", "\xff\x00\x01", "a longer key with spaces / slashes"} {
		if got, want := Hash([]byte(s)), ref([]byte(s)); got != want {
			t.Errorf("Hash(%q) = %#x, want %#x", s, got, want)
		}
		if got, want := hash(s), Hash([]byte(s)); got != want {
			t.Errorf("hash(string %q) = %#x, Hash([]byte) = %#x", s, got, want)
		}
	}
}
