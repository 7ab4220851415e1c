# wghooks: the two commands a newcomer needs are `make demo` and `make test`.
GO ?= go
BIN := bin

.PHONY: all build demo demo-fleet test deps vet cross fmt-check fuzz fuzz-smoke bench outdated clean

all: build

build:
	$(GO) build -o $(BIN)/wireguard-go ./cmd/wireguard-go
	$(GO) build -o $(BIN)/wghooks ./cmd/wghooks

# The main job on embedded defaults: no root, no setup.
demo:
	$(GO) run ./cmd/wghooks-demo

# A fleet of gateways on one PostgreSQL store; starts a PostgreSQL server
# of its own (needs Debian's postgresql: `make deps`).
demo-fleet:
	$(GO) run ./cmd/wghooks-demo-fleet

# Everything CI checks: formatting, vet, the cross-platform builds, and
# all tests with the race detector (network-namespace tests skip, saying
# why, without root).
test: deps fmt-check vet cross fuzz-smoke
	$(GO) test -race -count=1 -timeout 30m ./...

deps:
	@./scripts/install-deps.sh

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# Build and vet (test files included) for linux, darwin, freebsd, openbsd
# and windows, amd64 and arm64; part of `make test`.
cross:
	@GO=$(GO) ./scripts/cross.sh

# Each fuzz target for FUZZTIME (default 30s); `make test` already runs
# their seed corpora and any saved crashers.
fuzz:
	./scripts/fuzz.sh

# A short run of each fuzz target (3000 executions each: a count, not a
# duration, which Go 1.26's fuzz coordinator can fail at its deadline),
# part of `make test`.
fuzz-smoke:
	FUZZTIME=3000x ./scripts/fuzz.sh

bench: build
	./scripts/bench.sh

# Direct modules with a newer version on the proxy (changes nothing).
outdated:
	@GO=$(GO) ./scripts/outdated.sh

clean:
	rm -rf $(BIN)
