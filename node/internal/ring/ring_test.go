package ring

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
)

func nodeNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "node-" + strconv.Itoa(i)
	}
	return out
}

func keys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "key-" + strconv.Itoa(i)
	}
	return out
}

func owners(r *Ring, ks []string) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = r.Owner(k)
	}
	return out
}

func TestEmpty(t *testing.T) {
	tests := []struct {
		name string
		r    *Ring
	}{
		{"nil ring", nil},
		{"no members", New(nil, 0)},
		{"only empty names", New([]string{"", ""}, 10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.Owner("k"); got != "" {
				t.Errorf("Owner = %q, want \"\"", got)
			}
			if got := tt.r.Len(); got != 0 {
				t.Errorf("Len = %d, want 0", got)
			}
			if got := tt.r.Members(); len(got) != 0 {
				t.Errorf("Members = %q, want none", got)
			}
		})
	}
}

func TestMembers(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"sorted", []string{"a", "b", "c"}, []string{"a", "b", "c"}},
		{"unsorted", []string{"c", "a", "b"}, []string{"a", "b", "c"}},
		{"duplicates and empty", []string{"b", "", "a", "b", "a"}, []string{"a", "b"}},
		{"one", []string{"solo"}, []string{"solo"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.in)
			r := New(in, 5)
			if got := r.Members(); !slices.Equal(got, tt.want) {
				t.Fatalf("Members = %q, want %q", got, tt.want)
			}
			if r.Len() != len(tt.want) {
				t.Fatalf("Len = %d, want %d", r.Len(), len(tt.want))
			}
			// The ring keeps neither the caller's slice nor hands out its own.
			in[0] = "mutated"
			got := r.Members()
			got[0] = "mutated"
			if again := r.Members(); !slices.Equal(again, tt.want) {
				t.Fatalf("Members after mutating inputs/outputs = %q, want %q", again, tt.want)
			}
		})
	}
}

// TestSingleMemberOwnsAll: with one member every key is its own.
func TestSingleMemberOwnsAll(t *testing.T) {
	r := New([]string{"only"}, 0)
	for _, k := range keys(1000) {
		if got := r.Owner(k); got != "only" {
			t.Fatalf("Owner(%q) = %q", k, got)
		}
	}
}

// TestGolden pins owners for fixed keys and members: they must agree across
// processes and releases, so a change of hash, replica keying or default
// replica count shows here.
func TestGolden(t *testing.T) {
	members := []string{"node-0", "node-1", "node-2", "node-3", "node-4"}
	tests := []struct {
		replicas int
		want     map[string]string
	}{
		{0, goldenDefault},
		{50, golden50},
	}
	for _, tt := range tests {
		t.Run("replicas="+strconv.Itoa(tt.replicas), func(t *testing.T) {
			r := New(members, tt.replicas)
			for k, want := range tt.want {
				if got := r.Owner(k); got != want {
					t.Errorf("Owner(%q) = %q, want %q", k, got, want)
				}
			}
		})
	}
	if got := Hash([]byte("nearcache")); got != goldenHash {
		t.Errorf("Hash(\"nearcache\") = %#x, want %#x", got, goldenHash)
	}
}

// TestOrderIndependent: owners do not depend on member input order.
func TestOrderIndependent(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	ks := keys(20000)
	for _, n := range []int{2, 3, 10, 30} {
		t.Run("members="+strconv.Itoa(n), func(t *testing.T) {
			members := randomMembers(rng, n)
			want := owners(New(members, 0), ks)
			for range 3 {
				shuffled := slices.Clone(members)
				rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
				if got := owners(New(shuffled, 0), ks); !slices.Equal(got, want) {
					t.Fatalf("owners differ for order %q vs %q", shuffled, members)
				}
			}
		})
	}
}

// TestEveryMemberOwnsSomething: no member is starved of keys.
func TestEveryMemberOwnsSomething(t *testing.T) {
	ks := keys(100000)
	for _, n := range []int{2, 3, 10, 30, 100} {
		t.Run("members="+strconv.Itoa(n), func(t *testing.T) {
			members := nodeNames(n)
			r := New(members, 0)
			count := map[string]int{}
			for _, k := range ks {
				count[r.Owner(k)]++
			}
			for _, m := range members {
				if count[m] == 0 {
					t.Errorf("member %q owns no key of %d", m, len(ks))
				}
			}
			if len(count) != n {
				t.Errorf("owners seen = %d, want %d (an owner outside the members?)", len(count), n)
			}
		})
	}
}

// TestAddMovesOnlyToNewMember: adding member X moves keys only to X, about
// 1/(N+1) of them.
func TestAddMovesOnlyToNewMember(t *testing.T) {
	ks := keys(50000)
	for _, n := range []int{1, 3, 10, 30} {
		t.Run("members="+strconv.Itoa(n), func(t *testing.T) {
			members := nodeNames(n)
			before := owners(New(members, 0), ks)
			const added = "newcomer"
			after := owners(New(append(members, added), 0), ks)
			moved := 0
			for i := range ks {
				if before[i] == after[i] {
					continue
				}
				moved++
				if after[i] != added {
					t.Fatalf("key %q moved %q -> %q, not to the new member", ks[i], before[i], after[i])
				}
			}
			checkFraction(t, "moved", moved, len(ks), 1/float64(n+1))
		})
	}
}

// TestRemoveMovesOnlyRemovedKeys: removing member X moves exactly X's keys.
func TestRemoveMovesOnlyRemovedKeys(t *testing.T) {
	ks := keys(50000)
	for _, n := range []int{2, 3, 10, 30} {
		t.Run("members="+strconv.Itoa(n), func(t *testing.T) {
			members := nodeNames(n)
			before := owners(New(members, 0), ks)
			removed := members[n/2]
			rest := slices.Delete(slices.Clone(members), n/2, n/2+1)
			after := owners(New(rest, 0), ks)
			moved := 0
			for i := range ks {
				switch {
				case before[i] == removed:
					moved++
					if after[i] == removed {
						t.Fatalf("key %q still owned by removed member", ks[i])
					}
				case before[i] != after[i]:
					t.Fatalf("key %q moved %q -> %q though %q was removed", ks[i], before[i], after[i], removed)
				}
			}
			checkFraction(t, "moved", moved, len(ks), 1/float64(n))
		})
	}
}

// checkFraction fails unless got/total is within 35% of want (loose: it is
// a spread check, the exactness is in the move rules above).
func checkFraction(t *testing.T, what string, got, total int, want float64) {
	t.Helper()
	frac := float64(got) / float64(total)
	if frac < want*0.65 || frac > want*1.35 {
		t.Errorf("%s %d of %d keys (%.3f), want about %.3f", what, got, total, frac, want)
	}
}

// TestOwnerDoesNotAllocate: Owner sits on the hot read path.
func TestOwnerDoesNotAllocate(t *testing.T) {
	r := New(nodeNames(10), 0)
	ks := keys(64)
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		_ = r.Owner(ks[i%len(ks)])
		i++
	})
	if allocs != 0 {
		t.Fatalf("Owner allocates %.1f times per call, want 0", allocs)
	}
}

// TestKeyOnVirtualNode: a key hashing exactly onto a virtual node belongs to
// that node's member (the search is "first point >= hash", not ">").
func TestKeyOnVirtualNode(t *testing.T) {
	members := nodeNames(5)
	const replicas = 40
	r := New(members, replicas)
	for _, m := range members {
		for i := range replicas {
			// The virtual node's own string hashes onto it.
			if k := strconv.Itoa(i) + m; r.Owner(k) != m {
				t.Fatalf("Owner(%q) = %q, want %q", k, r.Owner(k), m)
			}
		}
	}
}

// TestConcurrentOwner: a Ring is shared by every reader of the node; under
// -race this fails if a lookup writes to the ring.
func TestConcurrentOwner(t *testing.T) {
	r := New(nodeNames(10), 0)
	ks := keys(1000)
	want := owners(r, ks)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range ks {
				j := (i + g*250) % len(ks)
				if got := r.Owner(ks[j]); got != want[j] {
					t.Errorf("Owner(%q) = %q, want %q", ks[j], got, want[j])
					return
				}
			}
		})
	}
	wg.Wait()
}
