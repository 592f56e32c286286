package loadertest

import (
	"context"
	"testing"
	"time"
)

// Fixture writes to the source of truth behind the loader under test.
//
// Its methods are called from the test goroutine only, never concurrently
// with each other, and a write must be visible to the loader's next Load
// once the method returns (read-your-writes on the source). Put takes
// ownership of nothing: it must copy value if it keeps it.
type Fixture interface {
	// Put creates or replaces key with value at version. The suite always
	// writes a higher version than the key had.
	Put(ctx context.Context, key string, value []byte, version uint64) error
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// Loader is the loader under test; loader.Func[[]byte] and
// *loader.SQL[[]byte] satisfy it.
//
// Load must be safe for concurrent use, report a missing key with an error
// for which loader.IsNotFound holds, and return a slice the caller owns.
type Loader interface {
	Load(ctx context.Context, key string) ([]byte, uint64, error)
}

// cancelTimeout bounds the wait for a Load under a cancelled context.
const cancelTimeout = 10 * time.Second

// Run runs every check of the suite against the loader that newLoader
// returns, each check in its own subtest with a fresh loader and fixture.
// newLoader may use t.Fatal and t.Cleanup; the source it returns must be
// empty.
func Run(t *testing.T, newLoader func(t *testing.T) (Loader, Fixture)) {
	t.Helper()
	for _, c := range checks() {
		t.Run(c.name, func(t *testing.T) {
			l, f := newLoader(t)
			c.run(t.Context(), t, env{l: l, f: f, timeout: cancelTimeout})
		})
	}
}
