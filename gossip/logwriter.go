package gossip

import (
	"bytes"
	"context"
	"log/slog"
)

// logWriter forwards memberlist's log lines ("[WARN] memberlist: ...") to
// slog at the matching level.
type logWriter struct{ l *slog.Logger }

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
	if w.l.Enabled(context.Background(), level) {
		w.l.Log(context.Background(), level, string(msg))
	}
	return len(p), nil
}
