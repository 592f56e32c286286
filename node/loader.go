package node

import (
	"context"
	"errors"
)

// Loader reads one key from the source of truth. A group calls it on a miss,
// at most once per key at a time on this node (concurrent readers share it).
//
// Load returns the value and its version: a number from the source that grows
// with every committed change of the key (a row version column, an LSN, an
// updated_at in nanoseconds). Version 0 means the source has none; such groups
// must use [ClockVersions]. A key the source does not hold is reported with an
// error for which errors.As finds an interface{ NotFound() bool } answering
// true, such as loader.ErrNotFound. Load must honour ctx and be safe for
// concurrent use; the returned value is owned by the group afterwards.
//
// Package loader provides adapters (a func, database/sql) that satisfy this
// interface without importing node.
type Loader[V any] interface {
	Load(ctx context.Context, key string) (V, uint64, error)
}

// LoaderFunc adapts a function to [Loader].
type LoaderFunc[V any] func(ctx context.Context, key string) (V, uint64, error)

// Load calls f.
func (f LoaderFunc[V]) Load(ctx context.Context, key string) (V, uint64, error) {
	return f(ctx, key)
}

// VersionLoader is an optional interface of a [Loader]: a cheap read of the
// current version only (e.g. "SELECT version FROM t WHERE id = ?"). A
// [Verified] read uses it to check a cached value without loading it again;
// without it, a verified read loads the value.
type VersionLoader interface {
	LoadVersion(ctx context.Context, key string) (uint64, error)
}

// IsNotFound reports whether err says the key does not exist in the source:
// some error in its chain has a NotFound() bool method that returns true.
func IsNotFound(err error) bool {
	var nf interface{ NotFound() bool }
	return errors.As(err, &nf) && nf.NotFound()
}
