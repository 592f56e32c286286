// Package pgfeed is a [node.ChangeFeed] that reads PostgreSQL's logical
// replication (the pgoutput plugin, through github.com/jackc/pglogrepl):
// every committed INSERT, UPDATE, DELETE and TRUNCATE of a mapped table,
// whoever wrote it, is applied to the cluster with [node.Node.ApplyChanges],
// and the feed's progress through the log keeps LogFed groups trusted (G9).
//
// The replication slot is the lock: PostgreSQL lets one consumer stream it,
// so every node may run a Feed on the same slot and exactly one applies.
// A position is confirmed to PostgreSQL only after ApplyChanges returned
// (every live member acknowledged) for everything before it, so a holder
// killed at any point loses nothing: the next one resumes from the
// confirmed position and applies some changes again (at-least-once; version
// floors make repeats harmless).
//
// Progress: every ProgressInterval the holder notes the time T and writes a
// logical message (pg_logical_emit_message, transactional, flushed) into the
// WAL. Every transaction visible at T committed before the marker, and the
// stream delivers transactions in commit order, so when the marker arrives
// and everything before it has been applied, the log is applied up to the
// server's position at T: the feed then calls Progress(groups, T). Neither a
// keepalive's server WAL end (WAL of other tables, of transactions still to
// be decoded) nor the time a change was received is taken for progress.
//
// See docs/feed.md for the setup (wal_level, REPLICA IDENTITY, the mapping)
// and what was measured.
package pgfeed
