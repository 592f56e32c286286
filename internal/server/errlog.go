package server

import (
	"log"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// errorLog is the http.Server's ErrorLog: each line (a TLS handshake that
// failed, a malformed request, a panic) as a WARN, but at most burst lines
// per window, so a flood of bad connections cannot flood the log. The first
// line after a window that suppressed some says how many.
type errorLog struct {
	log    *slog.Logger
	burst  int
	window time.Duration
	now    func() time.Time

	mu         sync.Mutex
	start      time.Time // of the current window
	n          int       // lines logged in it
	suppressed int       // lines dropped since the last one logged
}

func newErrorLog(l *slog.Logger) *log.Logger {
	return log.New(&errorLog{log: l, burst: 10, window: 10 * time.Second, now: time.Now}, "", 0)
}

// Write implements io.Writer; log.Logger calls it once per line.
func (e *errorLog) Write(p []byte) (int, error) {
	e.mu.Lock()
	now := e.now()
	if now.Sub(e.start) >= e.window {
		e.start, e.n = now, 0
	}
	if e.n >= e.burst {
		e.suppressed++
		e.mu.Unlock()
		return len(p), nil
	}
	e.n++
	suppressed := e.suppressed
	e.suppressed = 0
	e.mu.Unlock()
	msg := strings.TrimSpace(string(p))
	if suppressed > 0 {
		e.log.Warn(msg, "suppressed_before", suppressed)
	} else {
		e.log.Warn(msg)
	}
	return len(p), nil
}
