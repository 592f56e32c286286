#!/bin/sh
# bench-deps.sh installs what the benchmark harness (bench/) and its tests
# need beyond Go:
#   - redis-server, for the redis and redis-csc strategies;
#   - PostgreSQL (initdb, postgres), for the --source postgres:// tests, which
#     start a throwaway server (internal/pgtest).
# Each is installed with apt-get (--no-install-recommends) only when missing,
# so running it again does nothing. Needs root (or sudo) to install.
set -eu

have_redis() { command -v redis-server >/dev/null 2>&1; }

# PostgreSQL's server binaries are on PATH, or where Debian puts them
# (/usr/lib/postgresql/<version>/bin), which internal/pgtest also searches.
have_postgres() {
	if command -v initdb >/dev/null 2>&1 && command -v postgres >/dev/null 2>&1; then
		return 0
	fi
	for d in /usr/lib/postgresql/*/bin; do
		if [ -x "$d/initdb" ] && [ -x "$d/postgres" ]; then
			return 0
		fi
	done
	return 1
}

missing=""
have_redis || missing="$missing redis-server"
have_postgres || missing="$missing postgresql"

if [ -n "$missing" ]; then
	SUDO=""
	if [ "$(id -u)" -ne 0 ]; then
		if command -v sudo >/dev/null 2>&1; then
			SUDO="sudo"
		else
			echo "bench-deps: missing:$missing, and this is not root; install with your package manager" >&2
			exit 1
		fi
	fi
	if ! command -v apt-get >/dev/null 2>&1; then
		echo "bench-deps: missing:$missing, and apt-get is not available; install by hand" >&2
		exit 1
	fi
	echo "bench-deps: installing$missing with apt-get"
	$SUDO apt-get update -qq
	# The postgresql package also creates the "postgres" user that
	# internal/pgtest runs the server as under root.
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

echo "bench-deps: $(redis-server --version)"
if command -v postgres >/dev/null 2>&1; then
	echo "bench-deps: $(postgres --version)"
else
	for d in /usr/lib/postgresql/*/bin; do
		if [ -x "$d/postgres" ]; then
			echo "bench-deps: $("$d/postgres" --version)"
		fi
	done
fi
