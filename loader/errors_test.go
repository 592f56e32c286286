package loader_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/nearcache/nearcache/loader"
)

// foreignNotFound is another package's not-found error, as node sees it.
type foreignNotFound struct{ found bool }

func (foreignNotFound) Error() string    { return "foreign" }
func (e foreignNotFound) NotFound() bool { return !e.found }

func TestIsNotFound(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"ErrNotFound", loader.ErrNotFound, true},
		{"wrapped ErrNotFound", fmt.Errorf("load %q: %w", "k", loader.ErrNotFound), true},
		{"joined ErrNotFound", errors.Join(errors.New("x"), loader.ErrNotFound), true},
		{"other error", errors.New("loader: not found"), false}, // same text, no method
		{"foreign not-found", fmt.Errorf("w: %w", foreignNotFound{}), true},
		{"foreign NotFound false", foreignNotFound{found: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := loader.IsNotFound(tt.err); got != tt.want {
				t.Errorf("IsNotFound(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestErrNotFound(t *testing.T) {
	if got, want := loader.ErrNotFound.Error(), "loader: not found"; got != want {
		t.Errorf("ErrNotFound.Error() = %q, want %q", got, want)
	}
	// node's view: an interface, no import of loader.
	var nf interface{ NotFound() bool }
	if !errors.As(fmt.Errorf("x: %w", loader.ErrNotFound), &nf) || !nf.NotFound() {
		t.Error("errors.As(wrapped ErrNotFound, &interface{ NotFound() bool }) failed")
	}
	if !errors.Is(fmt.Errorf("x: %w", loader.ErrNotFound), loader.ErrNotFound) {
		t.Error("errors.Is(wrapped ErrNotFound, ErrNotFound) = false")
	}
}
