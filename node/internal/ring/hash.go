package ring

// FNV-1a 64-bit parameters.
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// Hash is the ring's hash function, with the signature of consistenthash.Hash
// (func([]byte) uint32): FNV-1a 64 over data, mixed by murmur3's fmix64 and
// truncated to 32 bits. It is deterministic across processes and platforms.
func Hash(data []byte) uint32 { return hash(data) }

// hash is [Hash] over a string or a byte slice, so [Ring.Owner] can hash a
// key without converting it (the conversion would allocate).
func hash[T ~string | ~[]byte](data T) uint32 {
	h := uint64(fnvOffset64)
	for i := 0; i < len(data); i++ {
		h ^= uint64(data[i])
		h *= fnvPrime64
	}
	// murmur3 fmix64: FNV-1a alone leaves short, similar inputs close together.
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return uint32(h)
}
