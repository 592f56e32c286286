# nearcache — `make test` is what CI runs (.ci/run).
GO ?= go

.PHONY: test vet race fuzz-smoke bench demo bench-deps browser-deps

test: bench-deps browser-deps vet race fuzz-smoke

# redis-server (bench/'s redis strategies) and PostgreSQL (the --source postgres://
# tests, internal/pgtest), with apt-get when missing.
bench-deps:
	./scripts/bench-deps.sh

# Chromium for the status page's browser test (cmd/nearcache), when missing
# (apt-get, as root or through sudo). Without it that test skips, unless
# CI=true (.ci/run sets it): then it fails, as every test missing a system
# package does (internal/needs).
browser-deps:
	@test -x /usr/bin/chromium || { S=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  $$S apt-get update && $$S env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }

vet:
	$(GO) vet ./...

race:
	$(GO) test -race -count=1 -timeout 12m ./...

# A few seconds of every fuzz target's mutator, so decoders keep rejecting
# garbage: one instrumented test binary per package, two packages at a time
# (FUZZTIME=20000x executions per target, JOBS=2; scripts/fuzz-smoke.sh).
fuzz-smoke:
	GO=$(GO) ./scripts/fuzz-smoke.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./local/ ./node/

demo:
	$(GO) run ./cmd/nearcache demo
