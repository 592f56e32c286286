// Package pgtest starts throwaway PostgreSQL servers for tests.
//
// [Start] (or [StartWith] and [StartServer], e.g. with wal_level=logical; a
// [Server] can be stopped and started again) runs initdb and postgres from
// the local installation (on PATH, or the newest under
// /usr/lib/postgresql/*/bin, where Debian puts them) on a free 127.0.0.1
// port with fsync off, and returns a pgx DSN for the database "postgres" as
// the trusted superuser "nc". The server and its data directory are removed
// in the test's cleanup. Without PostgreSQL installed the test is skipped;
// scripts/bench-deps.sh (make bench-deps) installs it.
//
// PostgreSQL refuses to run as root, so under root the server runs as the
// "postgres" user that the Debian package creates.
package pgtest
