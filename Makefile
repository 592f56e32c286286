# nearcache — `make test` is what CI runs (.ci/run).
GO ?= go

.PHONY: test vet race fuzz-smoke bench demo bench-deps browser-deps

test: bench-deps browser-deps vet race fuzz-smoke

# redis-server (bench/'s redis strategies) and PostgreSQL (the --source postgres://
# tests, internal/pgtest), with apt-get when missing.
bench-deps:
	./scripts/bench-deps.sh

# Chromium for the status page's browser test (cmd/nearcache), when missing
# (apt-get, as root or through sudo; NEARCACHE_SKIP_BROWSER=1 skips that test).
browser-deps:
	@test -x /usr/bin/chromium || { S=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  $$S apt-get update && $$S env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }

vet:
	$(GO) vet ./...

race:
	$(GO) test -race -count=1 -timeout 12m ./...

# A few seconds of every fuzz target, so decoders keep rejecting garbage.
fuzz-smoke:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 3s $$pkg || exit 1; \
	  done; \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./local/ ./node/

demo:
	$(GO) run ./cmd/nearcache demo
