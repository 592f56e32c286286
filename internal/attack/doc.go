// Package attack is the attack suite of issue 12: each test replays, against
// real nodes on 127.0.0.1 (real UDP and TCP sockets), an attack a peer on the
// same network could mount without the cluster key, and asserts the
// defended outcome. It has no non-test code.
package attack
