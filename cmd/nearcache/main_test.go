package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// binary builds the nearcache binary once into a temporary directory.
func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "nearcache")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("run: %v", err)
	return -1
}

func TestBinary(t *testing.T) {
	bin := binary(t)

	t.Run("demo", func(t *testing.T) {
		tmp := t.TempDir()
		cmd := exec.Command(bin, "demo", "--duration", "2s", "--naive-duration", "1s", "--quiet", "--json", "-")
		cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if code := exitCode(t, cmd.Run()); code != 0 {
			t.Fatalf("exit %d, want 0\nstderr:\n%s", code, stderr.String())
		}
		var res struct {
			Nearcache, Naive struct {
				Reads      uint64  `json:"reads"`
				StaleReads *uint64 `json:"stale_reads"`
				HitRatio   float64 `json:"hit_ratio"`
				DBLoads    uint64  `json:"db_loads"`
			}
			Config struct {
				Nodes    int    `json:"nodes"`
				Duration string `json:"duration"`
				Seed     uint64 `json:"seed"`
			}
		}
		if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
			t.Fatalf("stdout is not the JSON result: %v\n%s", err, stdout.String())
		}
		if res.Nearcache.Reads == 0 || res.Nearcache.StaleReads == nil || *res.Nearcache.StaleReads != 0 {
			t.Errorf("nearcache = %+v, want reads > 0 and stale_reads 0", res.Nearcache)
		}
		if res.Naive.Reads == 0 || res.Naive.StaleReads == nil {
			t.Errorf("naive = %+v, want reads > 0 and stale_reads present", res.Naive)
		}
		if res.Config.Nodes != 3 || res.Config.Duration != "2s" || res.Config.Seed != 1 {
			t.Errorf("config = %+v, want the defaults and the flags", res.Config)
		}
		// Human output went to stderr, not into the JSON; no live table.
		if !strings.Contains(stderr.String(), "verdict") || strings.Contains(stderr.String(), "t=1s") {
			t.Errorf("stderr should hold the verdict and no live table:\n%s", stderr.String())
		}
		// A line before each slow start-up step, on stderr.
		for _, want := range []string{"nearcache demo: seeding 1000 rows into SQLite", "nearcache demo: waiting until the 3 nodes"} {
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
			}
		}
		if left, _ := os.ReadDir(tmp); len(left) != 0 {
			t.Errorf("left in TMPDIR: %v", left)
		}
	})

	t.Run("interrupt", func(t *testing.T) {
		tmp := t.TempDir()
		cmd := exec.Command(bin, "demo", "--duration", "1m", "--nodes", "2")
		cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait for the live table, then Ctrl-C.
		buf := make([]byte, 4096)
		var seen strings.Builder
		for !strings.Contains(seen.String(), "t=1s") {
			n, err := stdout.Read(buf)
			seen.Write(buf[:n])
			if err != nil {
				t.Fatalf("stdout ended before the live table: %v\n%s\nstderr:\n%s", err, seen.String(), stderr.String())
			}
		}
		start := time.Now()
		if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, stdout) // to EOF: the process exits (Wait must come after)
		code := exitCode(t, cmd.Wait())
		if code != exitInterrupted {
			t.Errorf("exit %d after SIGINT, want %d\nstderr:\n%s", code, exitInterrupted, stderr.String())
		}
		if took := time.Since(start); took > 15*time.Second {
			t.Errorf("took %v to stop after SIGINT", took)
		}
		if left, _ := os.ReadDir(tmp); len(left) != 0 {
			t.Errorf("left in TMPDIR after SIGINT: %v", left)
		}
	})

	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
		wantStdout string
	}{
		{name: "no command", args: nil, wantCode: 2, wantStderr: "usage: nearcache"},
		{name: "unknown command", args: []string{"bogus"}, wantCode: 2, wantStderr: `unknown command "bogus"`},
		{name: "help", args: []string{"help"}, wantCode: 0, wantStdout: "demo"},
		{name: "help demo", args: []string{"help", "demo"}, wantCode: 0, wantStdout: "-write-ratio"},
		{name: "bad flag", args: []string{"demo", "--nodez", "3"}, wantCode: 2, wantStderr: "flag provided but not defined"},
		{name: "bad write ratio", args: []string{"demo", "--write-ratio", "2"}, wantCode: 2, wantStderr: "--write-ratio must be in (0, 1]"},
		{name: "stray argument", args: []string{"demo", "now"}, wantCode: 2, wantStderr: "unexpected arguments"},
		{name: "bench moved", args: []string{"bench", "--scale", "0.1"}, wantCode: 2, wantStderr: "go run ./cmd/nearcache-bench"},
		{name: "help bench", args: []string{"help", "bench"}, wantCode: 2, wantStderr: "go run ./cmd/nearcache-bench"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, tt.args...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if code := exitCode(t, cmd.Run()); code != tt.wantCode {
				t.Errorf("nearcache %v: exit %d, want %d", tt.args, code, tt.wantCode)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("nearcache %v: stderr %q lacks %q", tt.args, stderr.String(), tt.wantStderr)
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("nearcache %v: stdout %q lacks %q", tt.args, stdout.String(), tt.wantStdout)
			}
		})
	}
}
