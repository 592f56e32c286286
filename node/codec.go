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

// defaultCodec is JSON, except for []byte and string values, which go on the
// wire as they are.
func defaultCodec[V any]() Codec[V] {
	var zero V
	switch any(zero).(type) {
	case []byte:
		return any(bytesCodec{}).(Codec[V])
	case string:
		return any(stringCodec{}).(Codec[V])
	}
	return JSONCodec[V]{}
}

type bytesCodec struct{}

func (bytesCodec) Encode(v []byte) ([]byte, error) { return v, nil }
func (bytesCodec) Decode(b []byte) ([]byte, error) { return b, nil }

type stringCodec struct{}

func (stringCodec) Encode(v string) ([]byte, error) { return []byte(v), nil }
func (stringCodec) Decode(b []byte) (string, error) { return string(b), nil }
