package server

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"

	"github.com/nearcache/nearcache/feed/pgfeed"
	"github.com/nearcache/nearcache/node"
)

// feedName is the slot and publication of the table's feed.
func feedName(table string) string { return "nearcache_" + strings.ReplaceAll(table, ".", "_") }

// startFeed runs the table's change feed (every node is a candidate: the
// slot admits one consumer) until the returned stop is called.
func startFeed(ctx context.Context, cfg RunConfig, n *node.Node, log *slog.Logger) (stop func(), err error) {
	if !strings.HasPrefix(cfg.Source, "postgres://") && !strings.HasPrefix(cfg.Source, "postgresql://") {
		return nil, errors.New("server: the feed needs a postgres:// source")
	}
	fc := pgfeed.DefaultConfig(cfg.Source, feedName(cfg.Table), feedName(cfg.Table), cfg.Node.MaxStaleness)
	fc.Tables = []pgfeed.Mapping{{Table: cfg.Table, Group: GroupName, Key: "{id}",
		Version: pgfeed.VersionColumn, VersionColumn: "version"}}
	fc.Logger = log.With("component", "feed")
	f, err := pgfeed.New(fc)
	if err != nil {
		return nil, err
	}
	fctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := f.Run(fctx, n); err != nil && fctx.Err() == nil {
			log.Error("change feed stopped", "err", err)
		}
	})
	log.Info("change feed candidate", "slot", fc.Slot, "table", cfg.Table)
	return func() { cancel(); wg.Wait() }, nil
}
