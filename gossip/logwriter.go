package gossip

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// logWriter forwards memberlist's log lines ("[WARN] memberlist: ...") to
// slog at the matching level. WARN and ERR lines are counted
// (Stats.MemberlistErrors) and each kind is logged at most once per
// rejectLogEvery, with how many were suppressed: memberlist logs one ERROR
// per refused packet, so a node with the wrong key (or a flood) used to
// cost five lines a second on every seed.
type logWriter struct {
	l      *slog.Logger
	errors atomic.Uint64

	mu   sync.Mutex
	last map[string]time.Time
	supp map[string]int
}

func (w *logWriter) Write(p []byte) (int, error) {
	msg := bytes.TrimSpace(p)
	level := slog.LevelInfo
	for _, lv := range []struct {
		prefix string
		level  slog.Level
	}{{"[DEBUG]", slog.LevelDebug}, {"[INFO]", slog.LevelInfo}, {"[WARN]", slog.LevelWarn}, {"[ERR]", slog.LevelError}} {
		if bytes.HasPrefix(msg, []byte(lv.prefix)) {
			level = lv.level
			msg = bytes.TrimSpace(msg[len(lv.prefix):])
			break
		}
	}
	if level < slog.LevelWarn {
		if w.l.Enabled(context.Background(), level) {
			w.l.Log(context.Background(), level, string(msg))
		}
		return len(p), nil
	}
	w.errors.Add(1)
	kind := logKind(string(msg))
	now := time.Now()
	w.mu.Lock()
	if w.last == nil {
		w.last, w.supp = map[string]time.Time{}, map[string]int{}
	}
	if t, ok := w.last[kind]; ok && now.Sub(t) < rejectLogEvery {
		w.supp[kind]++
		w.mu.Unlock()
		return len(p), nil
	}
	suppressed := w.supp[kind]
	w.last[kind], w.supp[kind] = now, 0
	if len(w.last) > 256 { // kinds are few; never let odd lines grow this
		clear(w.last)
		clear(w.supp)
	}
	w.mu.Unlock()
	if w.l.Enabled(context.Background(), level) {
		args := []any{}
		if suppressed > 0 {
			args = append(args, "suppressed_since_last", suppressed)
		}
		w.l.Log(context.Background(), level, string(msg), args...)
	}
	return len(p), nil
}

// logKind is the part of a memberlist line that names what happened, without
// the addresses and errors that vary: up to the first ':' after the
// "memberlist: " prefix, or the first 48 bytes.
func logKind(msg string) string {
	s := strings.TrimPrefix(msg, "memberlist: ")
	if i := strings.IndexAny(s, ":="); i > 0 {
		s = s[:i]
	}
	if len(s) > 48 {
		s = s[:48]
	}
	return s
}
