package gossip

import (
	"reflect"
	"testing"
)

// FuzzDecode: decoding never panics, and whatever decodes re-encodes to
// something that decodes to the same message.
func FuzzDecode(f *testing.F) {
	for _, m := range sampleMessages() {
		b, _ := encodeMessage(m)
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{wireVersion, msgState, 1, 'a', 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMessage(b)
		if err != nil {
			return
		}
		enc, err := encodeMessage(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := decodeMessage(enc)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		normalize(m)
		normalize(m2)
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip changed the message:\n%+v\n%+v", m, m2)
		}
	})
}
