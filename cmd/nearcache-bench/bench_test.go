package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
)

// TestBenchSource checks the --source flag's validation in process: a DSN of
// another database, --latency beside PostgreSQL, and a PostgreSQL that does
// not answer (a clear error, exit 1, before any strategy starts).
func TestBenchSource(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close() // nothing listens there now
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{"not postgres", []string{"--source", "mysql://db/x"}, exitUsage, "--source must be a postgres://"},
		{"latency with postgres", []string{"--source", "postgres://db/x", "--latency", "5ms"}, exitUsage, "--latency applies only to the SQLite source"},
		{"unreachable", []string{"--source", "postgres://nc:pw@" + closed + "/x?connect_timeout=2", "--strategies", "none", "--workloads", "cold-start", "--no-progress"},
			exitFailure, "cannot connect to PostgreSQL at " + closed + "/x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.wantCode || !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Errorf("bench %v = exit %d, stderr %q; want %d and %q", tc.args, code, stderr.String(), tc.wantCode, tc.wantStderr)
			}
			if strings.Contains(stderr.String(), ":pw@") {
				t.Errorf("stderr shows the password: %q", stderr.String())
			}
		})
	}
}
