// Package loader holds source-of-truth adapters for nearcache.
//
// A loader reads one key from the system of record (a database, a service)
// and returns its value together with a version. The adapters here satisfy
// node's Loader interface,
//
//	Load(ctx context.Context, key string) (V, uint64, error)
//
// without importing node: every signature is written in standard-library
// types.
//
// # Versions
//
// The version is whatever the source uses to order writes to one key: a row
// version column, an LSN, an updated_at in nanoseconds. It must grow with
// every write of the key. Version 0 means "the source gives no version"; node
// then falls back to clock-based fencing.
//
// # Not found
//
// A key that does not exist in the source is reported with [ErrNotFound]
// (usually wrapped). Node recognises it without importing this package:
// any error in the chain with a method NotFound() bool that returns true
// means "not found" (see [IsNotFound]), so other loaders can define their own.
//
// # Adapters
//
//   - [Func] turns a function into a loader.
//   - [SQL] reads one row through database/sql with a driver of the user's
//     choice.
//
// Every loader should pass the conformance suite in
// github.com/nearcache/nearcache/loader/loadertest.
package loader
