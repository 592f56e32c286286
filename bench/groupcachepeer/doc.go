// Package groupcachepeer runs golang/groupcache's HTTPPool as the baseline
// for nearcache's remote-fill benchmark.
//
// groupcache allows one HTTPPool per process (it panics on a second, and
// registers a process-wide peer picker), so each peer is a child process:
// the gcpeer program in cmd/gcpeer. [Build] compiles it, [Start] runs K of
// them on 127.0.0.1, each on a listening socket the parent opened and hands
// down (no free-port race), and waits for each to print "ready".
// [Cluster.Stop] stops them by pid: SIGTERM, then SIGKILL after a timeout.
// A child also exits when its stdin reaches EOF, so it dies with its parent
// even if the parent is killed. [StartTB] does all of this for a test or
// benchmark and stops the peers in t.Cleanup, pass or fail.
//
// [Fetcher] is the client side: it does exactly what groupcache's
// unexported httpGetter does for a peer fetch (GET
// {peer}/_groupcache/{group}/{key} over http.DefaultTransport, the body
// copied into a pooled buffer and protobuf-decoded into a
// groupcachepb.GetResponse), so a benchmark can measure a peer fetch without
// an HTTPPool of its own.
package groupcachepeer
