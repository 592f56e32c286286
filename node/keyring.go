package node

import (
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"

	"github.com/nearcache/nearcache/gossip"
)

// The cluster keys (Config.Keyring, or Config.SecretKey alone) are never
// used as they are: each purpose gets its own subkey, derived with
// HKDF-SHA256, so gossip (memberlist's AES-GCM) and the fill channel (package
// peer's AES-GCM sessions) never share a key, and a weakness in one use says
// nothing about the other.
const (
	infoGossip = "nearcache gossip v1"
	infoFill   = "nearcache fill v1"
)

// keyring returns the cluster keys in use, primary first.
func (c *Config) keyring() [][]byte {
	if len(c.Keyring) > 0 {
		return c.Keyring
	}
	if len(c.SecretKey) > 0 {
		return [][]byte{c.SecretKey}
	}
	return nil
}

// subkeys derives the purpose's subkey of every key, each as long as its key
// (AES-128/192/256 for gossip); nil for nil.
func subkeys(keys [][]byte, info string) [][]byte {
	if len(keys) == 0 {
		return nil
	}
	out := make([][]byte, len(keys))
	for i, k := range keys {
		sk, err := hkdf.Key(sha256.New, k, nil, info, len(k))
		if err != nil {
			panic("node: hkdf: " + err.Error()) // only for lengths over 255*32
		}
		out[i] = sk
	}
	return out
}

// validKeyring is gossip's check (the lengths, no key twice), in node's words.
func validKeyring(keys [][]byte) error {
	if err := gossip.ValidateKeyring(keys); err != nil {
		return fmt.Errorf("node: %s", strings.TrimPrefix(err.Error(), "gossip: "))
	}
	return nil
}

// SetKeyring replaces the cluster keys at runtime, for gossip and the fill
// channel alike; keys[0] becomes the primary (the one this node sends
// under), every key is accepted. A node started without a key cannot get one
// (nor a keyed one lose all): restart it.
//
// Rotate in three rounds, each applied on every node before the next starts:
//
//	SetKeyring(old, new)   // add: everyone accepts new, still sends old
//	SetKeyring(new, old)   // promote: everyone sends new, still accepts old
//	SetKeyring(new)        // remove: old refused from now on
//
// Skipping a round, or starting the next before every node finished the
// previous one, splits the cluster. The binary re-reads its key file on
// SIGHUP and calls this.
func (n *Node) SetKeyring(keys [][]byte) error {
	if len(keys) == 0 {
		return errors.New("node: SetKeyring needs at least one key")
	}
	if err := validKeyring(keys); err != nil {
		return err
	}
	if len(n.cfg.keyring()) == 0 {
		return errors.New("node: started without a key; encryption cannot be turned on at runtime")
	}
	if n.cluster != nil {
		if err := n.cluster.SetKeyring(subkeys(keys, infoGossip)); err != nil {
			return fmt.Errorf("node: %w", err)
		}
	}
	fill := subkeys(keys, infoFill)
	if n.peerSrv != nil {
		if err := n.peerSrv.SetKeyring(fill); err != nil {
			return fmt.Errorf("node: %w", err)
		}
	}
	if n.peerCl != nil {
		if err := n.peerCl.SetKeyring(fill); err != nil {
			return fmt.Errorf("node: %w", err)
		}
	}
	return nil
}
