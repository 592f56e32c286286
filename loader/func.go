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

// WithVersion returns a loader that loads with f and answers version checks
// with version: the cheap read of a key's current version (e.g. "SELECT
// version FROM users WHERE id = $1") that a Verified read and the
// consistency sampler use instead of loading the value again. version
// reports a missing key with [ErrNotFound], as f does.
func (f Func[V]) WithVersion(version func(ctx context.Context, key string) (uint64, error)) *VersionedFunc[V] {
	return &VersionedFunc[V]{load: f, version: version}
}

// VersionedFunc is a [Func] with a version check; see [Func.WithVersion].
type VersionedFunc[V any] struct {
	load    Func[V]
	version func(ctx context.Context, key string) (uint64, error)
}

// Load calls the load function, as [Func.Load] does.
func (f *VersionedFunc[V]) Load(ctx context.Context, key string) (V, uint64, error) {
	return f.load.Load(ctx, key)
}

// LoadVersion calls the version function; if ctx is already done it returns
// ctx.Err() without calling it.
func (f *VersionedFunc[V]) LoadVersion(ctx context.Context, key string) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return f.version(ctx, key)
}
