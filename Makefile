# The test command does its own set-up: `make test` on a fresh clone runs
# gofmt, go vet, staticcheck and every test under the race detector.
GO ?= go
GOTESTFLAGS ?= -race -count=1 -timeout 20m

.PHONY: test fmt-check vet lint unit run build bench fuzz-smoke browser redis

test: fmt-check vet lint browser redis unit

# The console's browser tests (web/) drive Debian's chromium headless, never a
# downloaded browser: install it when it is missing (CI runs as root).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium for the console's browser tests"; \
		SUDO=; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
		$$SUDO apt-get update && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }

# The tests of the Redis implementations start their own Debian redis-server
# (internal/redistest), never a fake: install it when it is missing, as above.
redis:
	@command -v redis-server >/dev/null 2>&1 || { \
		echo "installing Debian's redis-server for the tests of the Redis state"; \
		SUDO=; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
		$$SUDO apt-get update && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server; }

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# staticcheck is a tool dependency in go.mod (go get -tool), fetched through
# the module proxy like any module: no separate install step.
lint:
	$(GO) tool staticcheck ./...

unit:
	$(GO) test $(GOTESTFLAGS) ./...

run:
	$(GO) run ./cmd/gateway

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ ./cmd/...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# A short run of every fuzz target (FUZZTIME each), one at a time as go test
# requires; the corpus found goes to the build cache, not the tree.
FUZZTIME ?= 5s
fuzz-smoke:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "fuzz $$pkg $$f"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg >/dev/null; \
		done; \
	done
