#!/bin/sh
# fuzz-smoke.sh runs the mutator of every fuzz target in the module for a few
# seconds, so decoders keep rejecting garbage. It is `make fuzz-smoke`.
#
# Each package with fuzz targets is compiled once, with fuzzing
# instrumentation (go test -c -fuzz=.), and its binary then fuzzes each of
# its targets in turn; JOBS packages run at a time. That is what go test
# -fuzz does per target, without compiling and linking again for every
# target. Targets are found by their declarations (^func FuzzXxx() in the
# package's _test.go files), so no test binary is built just to list them.
# The corpus of interesting inputs is go test's own ($GOCACHE/fuzz), and a
# crasher is written to the package's testdata/fuzz as go test would; any
# failure fails the script.
#
#   FUZZTIME  fuzzing budget per target (default 20000x: executions, not
#             seconds). A duration budget trips a race in Go 1.26's fuzz
#             coordinator (go.dev/issue/75804, fixed in Go 1.27): when the
#             -fuzztime deadline fires while a starved worker is mid-call,
#             the target fails with a bare "context deadline exceeded" and
#             no crasher. CI hit it once on a loaded 2-core machine
#             (FuzzDecodeResponse). A count has no deadline to race.
#   JOBS      packages fuzzed at a time (default 2)
#   GO        the go command (default go)
set -eu
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-20000x}
JOBS=${JOBS:-2}

# fuzz_package PKG DIR TARGET... builds PKG's fuzzing test binary and fuzzes
# each TARGET with it; its output is printed in one piece when it is done.
fuzz_package() {
	pkg=$1 dir=$2
	shift 2
	bin=$WORK/$(echo "$pkg" | tr / _).test
	log=$bin.log
	status=0
	{
		echo "fuzz-smoke: $pkg: building"
		"$GO" test -c -fuzz=. -o "$bin" "$pkg" || status=1
		for f in "$@"; do
			[ "$status" -eq 0 ] || break
			echo "fuzz-smoke: $pkg $f"
			# From the package's directory, as go test runs it: seeds and
			# crashers live in testdata/fuzz.
			(cd "$dir" && "$bin" -test.run='^$' -test.fuzz="^$f\$" -test.fuzztime="$FUZZTIME" \
				-test.fuzzcachedir="$CACHE/$pkg") || status=1
		done
	} >"$log" 2>&1
	cat "$log"
	if [ "$status" -ne 0 ]; then
		echo "fuzz-smoke: FAIL $pkg" >&2
		exit 1
	fi
}

if [ "${1:-}" = "--package" ]; then
	shift
	fuzz_package "$@"
	exit
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
CACHE=$("$GO" env GOCACHE)/fuzz
export GO FUZZTIME WORK CACHE

# One line per package with fuzz targets: import path, directory, targets.
"$GO" list -f '{{.ImportPath}} {{.Dir}}{{range .TestGoFiles}} {{.}}{{end}}{{range .XTestGoFiles}} {{.}}{{end}}' ./... |
	while read -r pkg dir files; do
		[ -n "$files" ] || continue
		targets=$(cd "$dir" && sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $files)
		# One line each, without a trailing blank (xargs -L would join
		# the next line to it).
		[ -z "$targets" ] || echo "$pkg $dir" $targets
	done >"$WORK/targets"
echo "fuzz-smoke: $(wc -l <"$WORK/targets") packages, $(awk '{n += NF - 2} END {print n}' "$WORK/targets") targets, $FUZZTIME each, $JOBS packages at a time"
# xargs runs every package and exits non-zero when any failed.
xargs -P "$JOBS" -L 1 "$0" --package <"$WORK/targets" || {
	echo "fuzz-smoke: FAIL: see the failing package's output above" >&2
	exit 1
}
echo "fuzz-smoke: ok"
