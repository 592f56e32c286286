package groupcachepeer

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// gcpeerDir holds the gcpeer binary, built at most once per test binary.
var (
	gcpeerDir   string
	buildGcpeer func() (string, error)
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gcpeer")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	gcpeerDir = dir
	buildGcpeer = sync.OnceValues(func() (string, error) { return Build(context.Background(), gcpeerDir) })
	code := m.Run()
	_ = os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// buildTB returns the gcpeer binary, building it on first use.
func buildTB(tb testing.TB) string {
	tb.Helper()
	bin, err := buildGcpeer()
	if err != nil {
		tb.Fatal(err)
	}
	return bin
}

// newTransport returns a private transport, its idle connections closed at
// cleanup so goleak sees no connection goroutines.
func newTransport(tb testing.TB) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tb.Cleanup(tr.CloseIdleConnections)
	return tr
}
