# The test command does its own set-up: `make test` on a fresh clone runs
# gofmt, go vet and every test under the race detector.
GO ?= go
GOTESTFLAGS ?= -race -count=1 -timeout 20m

.PHONY: test fmt-check vet unit run build bench fuzz-smoke browser

test: fmt-check vet browser unit

# The console's browser tests (web/) drive Debian's chromium headless, never a
# downloaded browser: install it when it is missing (CI runs as root).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium for the console's browser tests"; \
		SUDO=; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
		$$SUDO apt-get update && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

unit:
	$(GO) test $(GOTESTFLAGS) ./...

run:
	$(GO) run ./cmd/gateway

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ ./cmd/...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
