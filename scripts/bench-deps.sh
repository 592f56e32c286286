#!/bin/sh
# bench-deps.sh installs what the benchmark harness (bench/) needs beyond Go:
# redis-server, for the redis and redis-csc strategies. It does nothing when
# redis-server is already on PATH. Needs root (or sudo) for apt-get.
set -eu

if command -v redis-server >/dev/null 2>&1; then
	echo "bench-deps: $(redis-server --version)"
	exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO="sudo"
	else
		echo "bench-deps: redis-server is missing and this is not root; install it with your package manager" >&2
		exit 1
	fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "bench-deps: redis-server is missing and apt-get is not available; install redis-server by hand" >&2
	exit 1
fi

echo "bench-deps: installing redis-server with apt-get"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends redis-server >/dev/null
echo "bench-deps: $(redis-server --version)"
