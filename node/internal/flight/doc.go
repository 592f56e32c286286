// Package flight coalesces concurrent work on one key: groupcache's
// singleflight, with what nearcache needs besides.
//
//   - The work runs in its own goroutine, never under a caller's context: the
//     caller that started it may leave without failing the others, and each
//     caller waits on its own context ([Call.Wait]).
//   - A finished call may linger: it stays in the table, answering new
//     callers, until its Linger function returns (the node's store applies
//     writes asynchronously, and a reader arriving meanwhile would otherwise
//     start the same load again). A caller decides, through its reuse
//     function, whether a finished call's result may serve it.
//   - The key is any comparable type, so callers keep apart classes of work
//     on the same cache key (a load that may ask another node and one that
//     must not) with a key class field instead of a second table.
//
// A [Group] is safe for concurrent use; its zero value is ready.
package flight
