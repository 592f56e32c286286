package server

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadKeyring(t *testing.T) {
	k32 := bytes.Repeat([]byte{0xab}, 32)
	k16 := bytes.Repeat([]byte{0x01}, 16)
	k24 := bytes.Repeat([]byte{0x02}, 24)
	hex32 := hex.EncodeToString(k32)
	tests := []struct {
		name    string
		content string
		want    [][]byte
		wantErr string
	}{
		{"hex", hex32 + "\n", [][]byte{k32}, ""},
		{"several with comments", "# rotation, 2026-12\n" + base64.StdEncoding.EncodeToString(k16) + "  # new, primary\n\n" +
			hex32 + "\n" + base64.StdEncoding.EncodeToString(k24) + "\n", [][]byte{k16, k32, k24}, ""},
		{"raw 32 bytes (old format)", string(k32), [][]byte{k32}, ""},
		{"base64 of 24 bytes, no newline", base64.StdEncoding.EncodeToString(k24), [][]byte{k24}, ""},
		{"empty", "# nothing\n\n", nil, "no key"},
		{"bad base64 length", base64.StdEncoding.EncodeToString([]byte("short")) + "\n", nil, "line 1: base64 of 5 bytes"},
		{"not a key", "hello world\n", nil, "line 1"},
		{"64 chars not hex", strings.Repeat("z", 63) + "!\n", nil, "neither hex nor base64"},
		{"duplicate", hex32 + "\n" + hex32 + "\n", nil, "line 2: the same key as line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "keys")
			if err := os.WriteFile(p, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := LoadKeyring(p)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), hex32) {
					t.Fatal("the error shows a key")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d keys, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if !bytes.Equal(got[i], tt.want[i]) {
					t.Fatalf("key %d differs", i)
				}
			}
		})
	}
	if _, err := LoadKeyring(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("a missing file loaded")
	}
}
