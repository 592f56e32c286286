package pgfeed

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nearcache/nearcache/node"
)

// BenchmarkFeedThroughput: rows/s one consumer applies to a 3-node cluster
// (every batch acknowledged by every member), for transactions of 1,000
// rows written over plain SQL. b.N is the number of rows.
//
//	go test -run '^$' -bench FeedThroughput -benchtime 100000x ./feed/pgfeed/
func BenchmarkFeedThroughput(b *testing.B) {
	p := startPG(b)
	ms := cluster(b, p, 3)
	cfg := feedConfig(p)
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	r := runFeed(b, cfg, ms[0].n)
	eventually(b, 15*time.Second, "the feed holds the slot", func() bool { return r.f.Stats().Progresses > 0 })
	const perTx = 1000
	p.exec(b, "INSERT INTO users (id, name) SELECT g, 'x' FROM generate_series(1, $1) g", perTx)
	waitApplied(b, p, r.f)
	before := r.f.Stats().Changes
	b.ResetTimer()
	start := time.Now()
	for done := 0; done < b.N; done += perTx {
		p.exec(b, "UPDATE users SET name = $1 WHERE id <= $2", strconv.Itoa(done), min(perTx, b.N-done))
	}
	waitApplied(b, p, r.f)
	el := time.Since(start)
	b.StopTimer()
	applied := r.f.Stats().Changes - before
	b.ReportMetric(float64(applied)/el.Seconds(), "rows/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkCommitToApplied: the latency from a single-row commit (over
// plain SQL, synchronous_commit on) returning to the client to the feed's
// ApplyChanges returning for it, i.e. every node applied and
// acknowledged it: p50 and p99, at 3 and 10 nodes. Writes are one at a
// time.
//
//	go test -run '^$' -bench CommitToApplied -benchtime 2000x ./feed/pgfeed/
func BenchmarkCommitToApplied(b *testing.B) {
	for _, size := range []int{3, 10} {
		b.Run(fmt.Sprintf("nodes=%d", size), func(b *testing.B) { benchCommitToApplied(b, size) })
	}
}

func benchCommitToApplied(b *testing.B, size int) {
	p := startPG(b)
	ms := cluster(b, p, size)
	var mu sync.Mutex
	var want string
	applied := make(chan time.Time, 1)
	sink := &gateSink{ChangeSink: ms[0].n, onApplied: func(cs []node.Change) {
		at := time.Now()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range cs {
			if c.Key == want && want != "" {
				want = ""
				applied <- at
			}
		}
	}}
	cfg := feedConfig(p)
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	r := runFeed(b, cfg, sink)
	eventually(b, 15*time.Second, "the feed holds the slot", func() bool { return r.f.Stats().Progresses > 0 })
	conn, err := p.db.Conn(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "SET synchronous_commit = on"); err != nil {
		b.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "INSERT INTO users (id, name) SELECT g, 'x' FROM generate_series(1, 100) g"); err != nil {
		b.Fatal(err)
	}
	waitApplied(b, p, r.f)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		id := 1 + i%100
		mu.Lock()
		want = fmt.Sprintf("user:%d", id)
		mu.Unlock()
		if _, err := conn.ExecContext(context.Background(), "UPDATE users SET name = $2 WHERE id = $1", id, strconv.Itoa(i)); err != nil {
			b.Fatal(err)
		}
		committed := time.Now()
		select {
		case at := <-applied:
			lat = append(lat, max(0, at.Sub(committed)))
		case <-time.After(10 * time.Second):
			b.Fatalf("write %d not applied within 10s", i)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
