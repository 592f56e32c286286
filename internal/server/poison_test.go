package server

import (
	"net/http"
	"strings"
	"testing"
)

// TestPoisonedVersionThroughTheAPI is issue 12's floor poisoning, tried as
// an attacker (or an application bug: a version in ns where the row holds a
// counter) would, through the HTTP API: a version beyond 2^63-1 is refused
// with 400; a legal version far above the row's makes that key's reads fail
// fast with 503 naming the floor and the source's version: the first read
// costs about a dozen loads (pauses doubling to 1 s within LoadTimeout; 53
// with the old 100 ms cap), the next nineteen none (the back-off,
// node/poison.go). Other keys are unaffected. Fails without the back-off
// (every read loads again, and waits) or with the old cap.
func TestPoisonedVersionThroughTheAPI(t *testing.T) {
	f := newFixture(t, nil)
	const k = "/v1/groups/items/keys/victim"
	for _, p := range []string{k, "/v1/groups/items/keys/bystander"} {
		if code, body, _ := do(t, f.ts.URL, "PUT", p, `{"value":"v1"}`); code != 200 {
			t.Fatalf("PUT %s = %d %s", p, code, body)
		}
	}
	if code, body, _ := do(t, f.ts.URL, "POST", k+"/invalidate?version=18446744073709551615", ""); code != http.StatusBadRequest {
		t.Fatalf("invalidate at 2^64-1 = %d %s, want 400", code, body)
	}
	if code, body, _ := do(t, f.ts.URL, "POST", k+"/invalidate?version=4611686018427387904", ""); code != 200 {
		t.Fatalf("invalidate at 2^62 = %d %s, want 200 (a legal version)", code, body)
	}
	for i := range 20 {
		l0 := f.n.Stats().Groups[0].Loads
		code, body, _ := do(t, f.ts.URL, "GET", k, "")
		loads := f.n.Stats().Groups[0].Loads - l0
		if i == 0 {
			t.Logf("the first read: %d loads", loads)
			if loads > 16 {
				t.Errorf("the first read of the poisoned key cost %d loads, want at most 16 (pauses doubling to 1 s within the 5 s LoadTimeout)", loads)
			}
		} else if loads > 0 {
			t.Errorf("read %d of the poisoned key cost %d loads during its back-off, want 0", i, loads)
		}
		if code != http.StatusServiceUnavailable {
			t.Fatalf("read %d of the poisoned key = %d %s, want 503", i, code, body)
		}
		if i == 0 && (!strings.Contains(string(body), "4611686018427387904") || !strings.Contains(string(body), "1")) {
			t.Errorf("the 503 does not name the floor and the source's version: %s", body)
		}
	}
	if code, body, _ := do(t, f.ts.URL, "GET", "/v1/groups/items/keys/bystander", ""); code != 200 {
		t.Errorf("another key = %d %s, want 200", code, body)
	}
}
