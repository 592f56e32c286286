package loader

import (
	"strconv"
	"testing"
	"time"
)

func TestVersionDestScan(t *testing.T) {
	tests := []struct {
		name    string
		src     any
		want    uint64
		wantErr bool
	}{
		{"int64", int64(42), 42, false},
		{"int64 zero", int64(0), 0, false},
		{"int64 negative", int64(-1), 0, true},
		{"uint64 above int64", uint64(1 << 63), 1 << 63, false},
		{"float integral", float64(42), 42, false},
		{"float fraction", 4.5, 0, true},
		{"float negative", -2.0, 0, true},
		{"float too large to be exact", float64(1 << 60), 0, true},
		{"bytes", []byte("18446744073709551615"), 1<<64 - 1, false},
		{"string", "7", 7, false},
		{"string overflow", "18446744073709551616", 0, true},
		{"string signed", "+7", 0, true},
		{"string negative", "-7", 0, true},
		{"string empty", "", 0, true},
		{"time", time.Unix(1, 5), 1_000_000_005, false},
		{"time before 1970", time.Unix(-1, 0), 0, true},
		{"NULL", nil, 0, true},
		{"bool", true, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d versionDest
			err := d.Scan(tt.src)
			if (err != nil) != tt.wantErr || (err == nil && d.v != tt.want) {
				t.Errorf("Scan(%#v) = %d, %v; want %d, error %v", tt.src, d.v, err, tt.want, tt.wantErr)
			}
		})
	}
}

// FuzzVersionDestScan decodes arbitrary text and integers as a version
// column: it must never panic, must refuse negatives, and what it accepts
// must round-trip through the decimal form.
func FuzzVersionDestScan(f *testing.F) {
	f.Add("42", int64(42))
	f.Add("-1", int64(-1))
	f.Add("18446744073709551615", int64(1<<63-1))
	f.Add("0x10", int64(0))
	f.Add("", int64(-1<<63))
	f.Fuzz(func(t *testing.T, s string, n int64) {
		var d versionDest
		if err := d.Scan([]byte(s)); err == nil {
			var back versionDest
			if err := back.Scan(strconv.FormatUint(d.v, 10)); err != nil || back.v != d.v {
				t.Fatalf("Scan(%q) = %d, but its decimal form scans to %d, %v", s, d.v, back.v, err)
			}
		}
		var di versionDest
		err := di.Scan(n)
		if (err == nil) != (n >= 0) || (err == nil && di.v != uint64(n)) {
			t.Fatalf("Scan(int64 %d) = %d, %v", n, di.v, err)
		}
	})
}
