// Package gossiptest is a fault-injecting network for hashicorp/memberlist.
//
// A [Network] hands out [Transport] values that implement
// memberlist.NodeAwareTransport in two modes:
//
//   - In memory ([Network.Transport]): no socket is opened; packets travel over
//     buffered channels and streams over [net.Pipe]. This mode works inside a
//     testing/synctest bubble, so memberlist's timers run on the fake clock.
//   - As a decorator ([Network.Wrap]) of a real transport such as
//     memberlist.NewNetTransport bound to 127.0.0.1.
//
// The same rules apply in both modes: packets (WriteTo, WriteToAddress) may be
// dropped, duplicated or delayed (which reorders them), and a partition drops
// packets and refuses streams between addresses in different groups, and closes
// the streams already open across it, so memberlist's TCP fallback probe cannot
// pierce a partition.
//
// # Usage
//
//	net := gossiptest.New(1)
//	tr, err := net.Transport("127.0.0.1:7001")
//	cfg := memberlist.DefaultLocalConfig()
//	cfg.Name, cfg.Transport = "a", tr
//	...
//	net.SetDrop(0.2)
//	net.Isolate("127.0.0.1:7001")
//	net.Heal()
//
// # Promises
//
// Sending never blocks: a packet for a full receive queue (1024 packets) is
// dropped and counted. Delayed packets use time.AfterFunc; after
// [Transport.Shutdown] nothing more is delivered to that transport, its timers
// are stopped, its streams are closed and every goroutine it started has
// exited. Shutdown is idempotent.
//
// # Limits of Wrap
//
// For a wrapped transport, drop, duplicate and delay decisions are taken on the
// sending side, so they only apply to packets sent by a wrapped transport.
// Partitions are also checked when a packet is received (by its source address),
// so a wrapped node cannot hear an unwrapped node across a partition. Incoming
// streams cannot be attributed to a peer address (their source port is
// ephemeral), so only streams dialed by a wrapped transport are refused or
// closed by a partition: wrap every node of a cluster. Wrap forwards the inner
// transport's packets and streams with two goroutines, so an inner listener
// never blocks; Shutdown shuts inner down first, then stops them.
//
// # memberlist inside testing/synctest
//
// memberlist runs unchanged inside a bubble on in-memory transports. Its
// Shutdown does not wait for its goroutines: a probe in flight still waits up
// to ProbeInterval for its ack timer (and as long for a TCP fallback ping).
// Time stops once the bubble's function returns, so let fake time pass after
// the last Shutdown, for example with a cleanup registered before the nodes:
//
//	t.Cleanup(func() { time.Sleep(10 * time.Second); synctest.Wait() })
//
// or synctest reports "main bubble goroutine has exited but blocked
// goroutines remain".
//
// # Concurrency
//
// Every method of [Network] and [Transport] is safe for concurrent use, and rule
// changes take effect for the next packet or dial.
package gossiptest
