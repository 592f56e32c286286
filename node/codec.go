package node

import "encoding/json"

// Codec turns a group's values into bytes and back, for the wire (peer fills)
// and to estimate a value's size. Implementations must be safe for concurrent
// use; Decode must not keep b.
type Codec[V any] interface {
	Encode(v V) ([]byte, error)
	Decode(b []byte) (V, error)
}

// JSONCodec is the default [Codec]: encoding/json.
type JSONCodec[V any] struct{}

// Encode marshals v as JSON.
func (JSONCodec[V]) Encode(v V) ([]byte, error) { return json.Marshal(v) }

// Decode unmarshals JSON into a new V.
func (JSONCodec[V]) Decode(b []byte) (V, error) {
	var v V
	err := json.Unmarshal(b, &v)
	return v, err
}
