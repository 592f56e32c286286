# nearcache — `make test` is what CI runs (.ci/run).
GO ?= go

.PHONY: test vet race fuzz-smoke bench demo

test: vet race fuzz-smoke

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
