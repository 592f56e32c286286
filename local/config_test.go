package local

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // "" = valid
	}{
		{name: "zero", cfg: Config{}},
		{name: "negative jitter means none", cfg: Config{Jitter: -1}},
		{name: "jitter just below 1", cfg: Config{Jitter: 0.99}},
		{name: "MaxCost", cfg: Config{MaxCost: -1}, wantErr: "local: MaxCost must not be negative"},
		{name: "NumCounters", cfg: Config{NumCounters: -1}, wantErr: "local: NumCounters must not be negative"},
		{name: "BufferItems", cfg: Config{BufferItems: -1}, wantErr: "local: BufferItems must not be negative"},
		{name: "FloorRetention", cfg: Config{FloorRetention: -time.Second}, wantErr: "local: FloorRetention must not be negative"},
		{name: "MaxFloors", cfg: Config{MaxFloors: -1}, wantErr: "local: MaxFloors must not be negative"},
		{name: "jitter 1", cfg: Config{Jitter: 1}, wantErr: "local: Jitter must be less than 1"},
		{name: "jitter NaN", cfg: Config{Jitter: math.NaN()}, wantErr: "local: Jitter must be a finite number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New[string](tt.cfg)
			if c != nil {
				c.Close()
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("New(%+v) = %v, want nil", tt.cfg, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("New(%+v) = %v, want %q", tt.cfg, err, tt.wantErr)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	got := DefaultConfig()
	want := Config{
		MaxCost:        64 << 20,
		NumCounters:    10 * (64 << 20) / 256,
		BufferItems:    64,
		FloorRetention: 5 * time.Minute,
		MaxFloors:      1 << 20,
		Jitter:         0.1,
		SweepEvery:     30 * time.Second,
	}
	if got != want {
		t.Errorf("DefaultConfig() = %+v, want %+v", got, want)
	}
	if got := (Config{MaxCost: 1000, Jitter: -0.5}).withDefaults(); got.NumCounters != 10_000 || got.Jitter != 0 {
		t.Errorf("withDefaults() = %+v, want NumCounters 10000 and Jitter 0", got)
	}
}

func TestSetResultString(t *testing.T) {
	for r, want := range map[SetResult]string{
		Stored: "Stored", Stale: "Stale", Fenced: "Fenced", Superseded: "Superseded",
		Dropped: "Dropped", Closed: "Closed", SetResult(9): "SetResult(9)",
	} {
		if got := r.String(); got != want {
			t.Errorf("SetResult(%d).String() = %q, want %q", int(r), got, want)
		}
	}
}
