package gossip

import (
	"errors"
	"fmt"
	"slices"
)

// ErrNoKeyring is returned by SetKeyring on a cluster started without a key:
// memberlist decides at start whether packets are encrypted.
var ErrNoKeyring = errors.New("gossip: started without a key; encryption cannot be turned on at runtime")

// SetKeyring replaces the keys this node accepts; keys[0] becomes the
// primary, the one it encrypts with. Rotate a cluster's key in three rounds,
// each applied on every node before the next starts (as Serf does):
//
//  1. add: SetKeyring(old, new) — everyone still sends under old, and
//     accepts new;
//  2. promote: SetKeyring(new, old) — everyone sends under new, and a node
//     not promoted yet still reads it, and is still read;
//  3. remove: SetKeyring(new) — old is refused from now on.
//
// Skipping a round splits the cluster: a node that sends under a key some
// peer does not hold yet is not heard by it.
func (c *Cluster) SetKeyring(keys [][]byte) error {
	if len(keys) == 0 {
		return errors.New("gossip: SetKeyring needs at least one key")
	}
	if err := ValidateKeyring(keys); err != nil {
		return err
	}
	kr := c.keyring
	if kr == nil {
		return ErrNoKeyring
	}
	c.keyMu.Lock()
	defer c.keyMu.Unlock()
	for _, k := range keys {
		if !slices.ContainsFunc(kr.GetKeys(), func(h []byte) bool { return string(h) == string(k) }) {
			if err := kr.AddKey(slices.Clone(k)); err != nil {
				return fmt.Errorf("gossip: add key: %w", err)
			}
		}
	}
	if err := kr.UseKey(keys[0]); err != nil {
		return fmt.Errorf("gossip: use key: %w", err)
	}
	for _, h := range kr.GetKeys() {
		if !slices.ContainsFunc(keys, func(k []byte) bool { return string(h) == string(k) }) {
			if err := kr.RemoveKey(h); err != nil {
				return fmt.Errorf("gossip: remove key: %w", err)
			}
		}
	}
	return nil
}
