package loader

import "errors"

// ErrNotFound reports that the key does not exist in the source of truth.
//
// Loaders return it, usually wrapped, for a missing key. Check for it with
// [IsNotFound], which also accepts other packages' not-found errors, or with
// errors.Is(err, ErrNotFound) when the error is known to come from this
// package. Its dynamic type has a method NotFound() bool returning true,
// which is how node recognises it without importing this package.
var ErrNotFound error = notFoundError{}

// notFoundError is the type of [ErrNotFound]. It is a comparable empty
// struct, so every value equals ErrNotFound under errors.Is.
type notFoundError struct{}

func (notFoundError) Error() string  { return "loader: not found" }
func (notFoundError) NotFound() bool { return true }

// notFounder is the interface by which not-found errors are recognised
// across packages.
type notFounder interface{ NotFound() bool }

// IsNotFound reports whether err, or any error it wraps, has a method
// NotFound() bool that returns true. It holds for [ErrNotFound] and for
// not-found errors of any other package that follow the same convention.
func IsNotFound(err error) bool {
	var nf notFounder
	return errors.As(err, &nf) && nf.NotFound()
}
