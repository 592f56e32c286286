package peer

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"
)

// BenchmarkFillLatency reports the median and p99 of one keyed fill of a
// 100-byte value against the real Server, next to BenchmarkHTTPBaseline.
func BenchmarkFillLatency(b *testing.B) {
	key := []byte("cluster key")
	addr := benchServer(b, "real", key, make([]byte, 100))
	c, err := NewClient(ClientConfig{Name: "bench", SecretKey: key})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := b.Context()
	req := Request{Group: "users", Key: "user:12345"}
	var lat []time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, err := c.Fill(ctx, addr, req); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	reportPercentiles(b, lat)
}

// BenchmarkHTTPBaseline is the same exchange over net/http with keep-alive:
// the design this package's framed protocol replaced, measured in the same run.
func BenchmarkHTTPBaseline(b *testing.B) {
	value := make([]byte, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(value) }))
	defer srv.Close()
	hc := srv.Client()
	defer hc.CloseIdleConnections()
	url := srv.URL + "/_fill/users/user:12345"
	ctx := b.Context()
	var lat []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		r, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			b.Fatal(err)
		}
		resp, err := hc.Do(r)
		if err != nil {
			b.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || len(body) != 100 {
			b.Fatal(len(body), err)
		}
		lat = append(lat, time.Since(t0))
	}
	reportPercentiles(b, lat)
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}
