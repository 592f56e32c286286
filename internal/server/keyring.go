package server

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// LoadKeyring reads a cluster key file: one key per line, the first the
// primary (the one this node sends under), the others accepted too (a
// rotation in progress, see node.Node.SetKeyring). A key is 64 hex
// characters (32 bytes) or the standard base64 of 16, 24 or 32 bytes. Blank
// lines and lines starting with # are ignored; so is anything after a # on
// a key's line. For compatibility with the one-key files of before, a file
// of exactly 32 bytes with a byte outside printable ASCII is one raw key.
//
// Errors name the file and the line, never a key.
func LoadKeyring(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if len(b) == 32 && bytes.ContainsFunc(b, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
		return [][]byte{bytes.Clone(b)}, nil
	}
	return parseKeyring(path, b)
}

func parseKeyring(path string, b []byte) ([][]byte, error) {
	var keys [][]byte
	seen := map[string]int{}
	for i, line := range strings.Split(string(b), "\n") {
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, err := parseKey(line)
		if err != nil {
			return nil, fmt.Errorf("key file %s line %d: %w", path, i+1, err)
		}
		if prev, ok := seen[string(k)]; ok {
			return nil, fmt.Errorf("key file %s line %d: the same key as line %d", path, i+1, prev)
		}
		seen[string(k)] = i + 1
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("key file %s: no key (one per line: 64 hex characters, or base64 of 16, 24 or 32 bytes)", path)
	}
	return keys, nil
}

func parseKey(s string) ([]byte, error) {
	if len(s) == 64 {
		if k, err := hex.DecodeString(s); err == nil {
			return k, nil
		}
	}
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		if len(s) == 64 {
			return nil, errors.New("64 characters but neither hex nor base64")
		}
		return nil, fmt.Errorf("%d characters: neither 64 hex characters nor base64", len(s))
	}
	switch len(k) {
	case 16, 24, 32:
		return k, nil
	}
	return nil, fmt.Errorf("base64 of %d bytes; a key is 16, 24 or 32 bytes", len(k))
}
