package groupcachepeer

import (
	"context"
	"testing"
)

// StartTB builds gcpeer (unless cfg.Binary is set) into tb.TempDir, starts
// the cluster and stops it in tb.Cleanup, whether the test passes or fails.
// A Stop that had to SIGKILL a peer or saw one fail is reported with
// tb.Errorf.
func StartTB(tb testing.TB, cfg Config) *Cluster {
	tb.Helper()
	ctx := context.Background()
	if cfg.Binary == "" {
		bin, err := Build(ctx, tb.TempDir())
		if err != nil {
			tb.Fatal(err)
		}
		cfg.Binary = bin
	}
	c, err := Start(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := c.Stop(); err != nil {
			tb.Errorf("stopping groupcache peers: %v", err)
		}
	})
	return c
}
