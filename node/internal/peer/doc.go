// Package peer is the node-to-node fill RPC: a non-owner that misses a key
// asks the key's owner with [Client.Fill], and the owner answers from its
// [Handler] (its memory, or one coalesced load for the whole cluster).
//
// # Why a framed binary protocol
//
// The decision is a small framed binary protocol over persistent TCP
// connections, not net/http. One HTTP client round trip alone allocates about
// 40 objects (groupcache's HTTPPool fetch: 59 allocations, 72–95 µs on the
// reference machine); the goal here is fewer than 20 allocations per remote
// fill and a median latency at most 0.75x groupcache's. The listening port is
// advertised in memberlist metadata by package node, not here.
//
// # Wire format (FormatVersion 1)
//
// Every message is a frame: a 4-byte big-endian body length, then the body.
// Integers are unsigned varints unless stated; strings and byte slices are a
// uvarint length followed by the bytes.
//
//	request:  version(1) type(1) id ts(int64, 8 bytes big-endian, unix nanos)
//	          from group key floor [mac(32)]
//	response: version(1) status(1) id version value err [mac(32)]
//
// The high bit of the type (request) or status (response) byte says a MAC
// follows. With a secret key the request MAC is HMAC-SHA256 over every body
// byte before it; the response MAC is HMAC-SHA256 over every response body byte
// before it, then the request's timestamp and MAC, which binds a response to the
// request it answers. A keyed client rejects a response without a valid MAC; a
// keyed server refuses (StatusRefused) a request without a valid MAC, with a
// timestamp further than MaxSkew from its clock, or, when IsMember is set, from
// a name that is not a current member. The timestamp bounds replay to the skew
// window; fills are reads, so a replay inside the window costs at most one
// extra answer. Without a key nothing is authenticated: trusted networks only.
//
// Decoders reject an unknown version, type or status, truncated input,
// trailing bytes and lengths over the limits (checked before allocating), and
// never panic; each has a fuzz target.
//
// # Lifecycle
//
// [Listen] returns a serving [Server]; [Server.Close] stops accepting, closes
// every connection, cancels the contexts of handlers still running and waits
// for every goroutine it started. [NewClient] returns a [Client] that dials on
// demand and keeps up to MaxIdle idle connections per peer; [Client.Close]
// closes them and fails the fills in flight; [Client.CloseIdle] drops the idle
// connections to one peer (one that left the cluster), and
// [Client.CloseIdleExcept] those to every peer not in the current set. A
// pooled connection that turns out dead is retried once on a fresh one.
//
// ServerConfig.Listener and ClientConfig.Dial replace the TCP listener and
// dialer, so tests run fills over an in-memory network (package
// gossip/gossiptest) inside testing/synctest; deadlines, caps and timeouts
// behave the same on any net.Conn that honours SetDeadline.
//
// A server connection waits for its next request without limit, but once a
// frame has started, all of it must arrive within ServerConfig.Timeout.
//
// # Concurrency
//
// Server and Client are safe for concurrent use. A connection carries one
// request at a time; the client pools connections so concurrent fills to one
// peer use several connections.
package peer
