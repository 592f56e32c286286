package node_test

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nearcache/nearcache/loader"
	"github.com/nearcache/nearcache/node"
)

// accounts stands in for the database: each row has a balance and a version
// that grows with every committed write (a row version column).
type accounts struct {
	mu   sync.Mutex
	rows map[string]account
}

type account struct {
	Balance int64
	Version uint64
}

func (db *accounts) load(ctx context.Context, id string) (int64, uint64, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	a, ok := db.rows[id]
	if !ok {
		return 0, 0, loader.ErrNotFound
	}
	return a.Balance, a.Version, nil
}

// withdraw is the write: UPDATE ... SET balance = balance - amount, version = version + 1
// WHERE id = ? AND balance >= amount RETURNING version.
func (db *accounts) withdraw(id string, amount int64) (uint64, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	a := db.rows[id]
	if a.Balance < amount {
		return 0, errors.New("insufficient funds")
	}
	a.Balance -= amount
	a.Version++
	db.rows[id] = a
	return a.Version, nil
}

func newAccounts() *accounts {
	return &accounts{rows: map[string]account{"alice": {Balance: 100, Version: 1}}}
}

// Cache-aside: a plain Get serves the cached value, loading it once on a miss.
func ExampleGroup_Get() {
	ctx := context.Background()
	db := newAccounts()
	n, err := node.Start(ctx, node.Config{Name: "api-1", Standalone: true})
	if err != nil {
		panic(err)
	}
	defer n.Close(context.Background())
	balances, err := node.NewGroup(n, "balances", node.GroupConfig[int64]{Loader: loader.Func[int64](db.load)})
	if err != nil {
		panic(err)
	}

	b, err := balances.Get(ctx, "alice") // a miss: loaded from the database
	fmt.Println(b, err)
	_, err = balances.Get(ctx, "bob")
	fmt.Println(loader.IsNotFound(err))
	// Output:
	// 100 <nil>
	// true
}

// Write to the database first, then invalidate with the version it committed:
// this node drops its copy before Invalidate returns, the others right after.
func ExampleGroup_Invalidate() {
	ctx := context.Background()
	db := newAccounts()
	n, err := node.Start(ctx, node.Config{Name: "api-1", Standalone: true})
	if err != nil {
		panic(err)
	}
	defer n.Close(context.Background())
	balances, err := node.NewGroup(n, "balances", node.GroupConfig[int64]{Loader: loader.Func[int64](db.load)})
	if err != nil {
		panic(err)
	}
	before, _ := balances.Get(ctx, "alice")

	version, err := db.withdraw("alice", 30) // 1. the write commits
	if err != nil {
		panic(err)
	}
	if err := balances.Invalidate(ctx, "alice", version); err != nil { // 2. then invalidate
		panic(err)
	}

	after, _ := balances.Get(ctx, "alice") // never the old value (read-your-writes)
	fmt.Println(before, after)
	// Output: 100 70
}

// A decision that moves money is made on an authoritative read, never on a
// cached one: the cache is a hint and may be stale by the propagation bound.
func Example_authoritativeDecision() {
	ctx := context.Background()
	db := newAccounts()
	n, err := node.Start(ctx, node.Config{Name: "api-1", Standalone: true})
	if err != nil {
		panic(err)
	}
	defer n.Close(context.Background())
	balances, err := node.NewGroup(n, "balances", node.GroupConfig[int64]{Loader: loader.Func[int64](db.load)})
	if err != nil {
		panic(err)
	}
	balances.Get(ctx, "alice") // cached: 100

	// Another service instance withdrew 80; its invalidation has not arrived yet.
	db.withdraw("alice", 80)

	// A plain Get may still show 100 here: fine for a page, not for this.
	balance, err := balances.Get(ctx, "alice", node.Authoritative())
	if err != nil {
		panic(err)
	}
	if balance >= 50 {
		fmt.Println("withdraw 50")
	} else {
		fmt.Printf("refuse: the balance is %d\n", balance)
	}
	// Output: refuse: the balance is 20
}
