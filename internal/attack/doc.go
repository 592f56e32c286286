// Package attack is the attack suite of issue 12: each test replays, against
// real nodes on 127.0.0.1 (real UDP and TCP sockets), an attack a peer on the
// same network could mount without the cluster key, and asserts the
// defended outcome. It has no non-test code.
//
// The tests run on real sockets and clocks, so they depend on scheduling;
// checked under CPU load (timeout 300 sh -c 'yes >/dev/null & yes >/dev/null & wait'
// in the background) with
//
//	go test -race -count=5 -run 'TestForgedHeartbeatCannotSilence|TestReplayedFillRefused|TestRollingKeyRotation|TestWrongKeyAndKeylessNodesRefused' ./internal/attack/
//	go test -race -count=2 -run 'TestGossipStreamFlood|TestIdleFillConnectionFlood' ./internal/attack/
//
// (fewer than 50 runs: the floods take 20-80 s each under -race).
package attack
