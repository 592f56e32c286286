package local

import (
	"fmt"
	"testing"
)

// FuzzFloorModel runs a decoded sequence of Raise, Set, late (buffered) Set,
// Purge and Get against a naive model: a hit is never below the highest
// version Raised for the key, never from before the last Purge, and Set
// refuses exactly the versions below the floor.
func FuzzFloorModel(f *testing.F) {
	f.Add([]byte{2, 0, 1, 0, 0, 5, 3, 0, 0, 4, 0, 0})       // late Set, Raise, land, Get
	f.Add([]byte{1, 1, 3, 0, 1, 4, 1, 1, 3, 4, 1, 0})       // Set, Raise above, Set below, Get
	f.Add([]byte{2, 2, 7, 4, 0, 3, 3, 0, 0, 4, 2, 0})       // late Set, Purge, land, Get
	f.Add([]byte{1, 3, 9, 0, 3, 9, 1, 3, 9, 4, 3, 0, 4, 3}) // equal to floor
	f.Fuzz(func(t *testing.T, ops []byte) {
		c, err := New[string](Config{MaxCost: 1 << 16})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		type stored struct{ version, gen uint64 }
		floor := map[string]uint64{}
		valid := map[string]map[stored]bool{} // what may be served, per key
		mark := func(key string, s stored) {
			if valid[key] == nil {
				valid[key] = map[stored]bool{}
			}
			valid[key][s] = true
		}
		var gen uint64
		type pending struct {
			l   lateSet
			gen uint64
		}
		var late []pending
		for len(ops) >= 3 {
			op, key, v := ops[0]%5, fmt.Sprintf("k%d", ops[1]%4), uint64(ops[2]%16)
			ops = ops[3:]
			switch op {
			case 0:
				c.Raise(key, v)
				floor[key] = max(floor[key], v)
			case 1:
				r := c.Set(key, Entry[string]{Version: v}, 1, 0, nil)
				if (v < floor[key]) != (r == Stale) {
					t.Fatalf("Set(%s, %d) = %v with floor %d", key, v, r, floor[key])
				}
				if r == Stored {
					mark(key, stored{v, gen})
				}
				c.Wait()
			case 2:
				if v >= floor[key] { // a Set that passed its checks, not yet applied
					late = append(late, pending{prepareLate(c, key, v), gen})
				}
			case 3:
				if len(late) > 0 {
					p := late[0]
					late = late[1:]
					p.l.land()
					mark(p.l.e.key, stored{p.l.e.Version, p.gen})
				}
			case 4:
				if v%4 == 3 {
					c.Purge()
					gen++
					continue
				}
				e, ok := c.Get(key)
				if !ok {
					continue
				}
				if e.Version < floor[key] {
					t.Fatalf("Get(%s) = version %d below floor %d", key, e.Version, floor[key])
				}
				if !valid[key][stored{e.Version, gen}] {
					t.Fatalf("Get(%s) = version %d, not stored in generation %d", key, e.Version, gen)
				}
			}
		}
	})
}
