package ring

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/golang/groupcache/consistenthash"
)

// naiveRing is the deliberately simple reference: every virtual node as a
// (hash, member) pair in the order consistenthash.Map.Add adds them, stably
// sorted by hash and scanned linearly.
type naiveRing struct {
	points []naivePoint
}

type naivePoint struct {
	hash   uint32
	member string
}

func newNaive(members []string, replicas int) *naiveRing {
	ms := slices.Clone(members)
	slices.Sort(ms)
	ms = slices.Compact(ms)
	n := &naiveRing{}
	for _, m := range ms {
		if m == "" {
			continue
		}
		for i := 0; i < replicas; i++ {
			n.points = append(n.points, naivePoint{Hash([]byte(strconv.Itoa(i) + m)), m})
		}
	}
	slices.SortStableFunc(n.points, func(a, b naivePoint) int {
		switch {
		case a.hash < b.hash:
			return -1
		case a.hash > b.hash:
			return 1
		}
		return 0
	})
	return n
}

func (n *naiveRing) owner(key string) string {
	if len(n.points) == 0 {
		return ""
	}
	h := Hash([]byte(key))
	for i, p := range n.points {
		if p.hash >= h {
			// Colliding points: the one added last wins.
			for i+1 < len(n.points) && n.points[i+1].hash == p.hash {
				i++
			}
			return n.points[i].member
		}
	}
	// Past the last point: wrap to the first (and its collision winner).
	i := 0
	for i+1 < len(n.points) && n.points[i+1].hash == n.points[0].hash {
		i++
	}
	return n.points[i].member
}

// randomMembers returns n distinct member names in random order, drawn from
// a few naming styles, including prefixes of one another ("7" + "1node" and
// "71" + "node" collide by construction).
func randomMembers(rng *rand.Rand, n int) []string {
	styles := []func(int) string{
		func(i int) string { return "node-" + strconv.Itoa(i) },
		func(i int) string { return "127.0.0.1:" + strconv.Itoa(7000+i) },
		func(i int) string { return strconv.Itoa(i) + "node" },
		func(i int) string { return "api-" + strconv.Itoa(rng.IntN(1000)) + "-" + strconv.Itoa(i) },
	}
	seen := map[string]bool{}
	var out []string
	for len(out) < n {
		m := styles[rng.IntN(len(styles))](rng.IntN(100))
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	return out
}

func randomKey(rng *rand.Rand) string {
	b := make([]byte, 1+rng.IntN(40))
	for i := range b {
		b[i] = byte(rng.IntN(256))
	}
	return string(b)
}

// TestMatchesNaiveRing is the differential test: 50k random keys over random
// member sets and replica counts, the same owner as the linear scan.
func TestMatchesNaiveRing(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const sets, keysPerSet = 50, 1000 // 50k keys in all
	for s := range sets {
		members := randomMembers(rng, rng.IntN(12)) // 0..11, includes empty rings
		replicas := 1 + rng.IntN(60)
		r := New(members, replicas)
		n := newNaive(members, replicas)
		for range keysPerSet {
			k := randomKey(rng)
			if got, want := r.Owner(k), n.owner(k); got != want {
				t.Fatalf("set %d members=%q replicas=%d key=%q: Owner=%q, naive=%q", s, members, replicas, k, got, want)
			}
		}
	}
}

// TestMatchesConsistenthash shows the ring is groupcache's algorithm:
// consistenthash.Map with the same hash and the members added in sorted
// order gives the same owner for every key.
func TestMatchesConsistenthash(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for s := range 40 {
		members := randomMembers(rng, 1+rng.IntN(30))
		replicas := []int{1, 13, 50, 0}[s%4]
		r := New(members, replicas)
		if replicas == 0 {
			replicas = DefaultReplicas
		}
		m := consistenthash.New(replicas, Hash)
		m.Add(r.Members()...)
		for range 1000 {
			k := randomKey(rng)
			if got, want := r.Owner(k), m.Get(k); got != want {
				t.Fatalf("members=%q replicas=%d key=%q: Owner=%q, consistenthash=%q", members, replicas, k, got, want)
			}
		}
	}
}

// TestCollisionLastAddedWins pins the collision rule: replica 11 of "node"
// and replica 1 of "1node" are the same string, so the same hash; the member
// added later in sorted order ("node" > "1node") must own it, as in
// consistenthash.
func TestCollisionLastAddedWins(t *testing.T) {
	members := []string{"node", "1node"}
	r := New(members, 12)
	m := consistenthash.New(12, Hash)
	m.Add("1node", "node")
	// A key hashing exactly onto the shared point: the point's own string.
	const shared = "11node"
	if got, want := r.Owner(shared), m.Get(shared); got != want || got != "node" {
		t.Fatalf("Owner(%q) = %q, consistenthash %q, want %q", shared, got, want, "node")
	}
}

// FuzzOwnerMatchesNaive checks the differential property on fuzzed keys and
// member names.
func FuzzOwnerMatchesNaive(f *testing.F) {
	f.Add("key-1", "node-0", "node-1", "node-2", uint8(50))
	f.Add("11node", "node", "1node", "", uint8(12))
	f.Add("", "", "", "", uint8(0))
	f.Fuzz(func(t *testing.T, key, a, b, c string, replicas uint8) {
		members := []string{a, b, c}
		reps := int(replicas%64) + 1
		if got, want := New(members, reps).Owner(key), newNaive(members, reps).owner(key); got != want {
			t.Fatalf("members=%q replicas=%d key=%q: Owner=%q, naive=%q", members, reps, key, got, want)
		}
	})
}
