package demo

import (
	"testing"

	"github.com/nearcache/nearcache/node"
)

func TestSource(t *testing.T) {
	src, err := openSource(t.Context(), t.TempDir(), "t.db", 5, 2, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer src.close()
	for want := uint64(2); want <= 4; want++ {
		v, err := src.write(t.Context(), keyName(4))
		if err != nil || v != want {
			t.Fatalf("write = %d, %v; want %d", v, err, want)
		}
	}
	tests := []struct {
		name, key    string
		wantVersion  uint64
		wantNotFound bool
	}{
		{name: "seeded", key: keyName(0), wantVersion: 1},
		{name: "written three times", key: keyName(4), wantVersion: 4},
		{name: "absent", key: keyName(5), wantNotFound: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			it, v, err := src.loader(1)(t.Context(), tt.key)
			if tt.wantNotFound {
				if !node.IsNotFound(err) {
					t.Errorf("load(%q) error = %v, want not found", tt.key, err)
				}
				return
			}
			if err != nil || v != tt.wantVersion || it.Version != v {
				t.Errorf("load(%q) = %+v, %d, %v; want version %d", tt.key, it, v, err, tt.wantVersion)
			}
		})
	}
	if src.loads[1].Load() != 3 || src.loads[0].Load() != 0 {
		t.Errorf("loads = [%d %d], want [0 3]", src.loads[0].Load(), src.loads[1].Load())
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{name: "zero is the defaults", cfg: Config{}},
		{name: "negative nodes", cfg: Config{Nodes: -1}, wantErr: true},
		{name: "too many nodes", cfg: Config{Nodes: 65}, wantErr: true},
		{name: "negative duration", cfg: Config{Duration: -1}, wantErr: true},
		{name: "write ratio above 1", cfg: Config{WriteRatio: 1.5}, wantErr: true},
		{name: "negative write ratio", cfg: Config{WriteRatio: -0.1}, wantErr: true},
		{name: "negative keys", cfg: Config{Keys: -1}, wantErr: true},
		{name: "negative latency means none", cfg: Config{Latency: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.validate(); (err != nil) != tt.wantErr {
				t.Errorf("validate() = %v, want error %v", err, tt.wantErr)
			}
		})
	}
	d := DefaultConfig()
	if d.Nodes != 3 || d.Keys != 1000 || d.Workers != 4 || d.WriteRatio != 0.05 || d.NaiveDuration != d.Duration/3 {
		t.Errorf("DefaultConfig() = %+v", d)
	}
}
