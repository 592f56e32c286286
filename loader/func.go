package loader

import "context"

// Func adapts an ordinary function to a loader, like http.HandlerFunc.
//
// The function returns the value, its version (0 when the source has none)
// and an error; a missing key should be reported with [ErrNotFound],
// wrapped or not. The function must be safe for concurrent use, and it owns
// nothing it returns: the caller may keep and modify the value.
type Func[V any] func(ctx context.Context, key string) (V, uint64, error)

// Load calls f(ctx, key). If ctx is already done it returns ctx.Err()
// without calling f.
func (f Func[V]) Load(ctx context.Context, key string) (V, uint64, error) {
	if err := ctx.Err(); err != nil {
		var zero V
		return zero, 0, err
	}
	return f(ctx, key)
}
