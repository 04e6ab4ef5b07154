# ec2guard — build, test and demo. `make demo` and `make test` do all setup on a fresh machine.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c

ROOT        := $(abspath .)
BIN         := $(ROOT)/bin
# Heavy test parts are cached outside the clone, keyed by version, and linked into bin/ and .cache/.
EC2GUARD_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/ec2guard
export EC2GUARD_CACHE

GO          ?= go
UNIT_PKGS   := ./pkg/... ./internal/... ./cmd/...

# Version of the binaries and images (--version, image labels and tags). The build date is the
# commit time, so the same commit builds the same binaries and image digests.
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT      ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BUILD_DATE  ?= $(shell TZ=UTC0 git log -1 --date=format-local:%Y-%m-%dT%H:%M:%SZ --format=%cd 2>/dev/null || echo unknown)
VERSION_PKG := github.com/ec2guard/ec2guard/internal/version
LDFLAGS     := -X $(VERSION_PKG).version=$(VERSION) -X $(VERSION_PKG).commit=$(COMMIT) -X $(VERSION_PKG).buildDate=$(BUILD_DATE)
# make release: REGISTRY=host[:port]/path VERSION=x.y.z; PLAIN_HTTP=1 for a plain-HTTP registry.
REGISTRY    ?=
PLAIN_HTTP  ?=

.PHONY: all build images release docker-push demo demo-cli test test-unit test-env test-integration lint fmt vet clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

# OCI images of webhook, discoverer and ec2guard (linux/amd64 + linux/arm64) under bin/images/,
# built without a container engine or a base image (hack/imagebuild; docs/install.md).
images:
	$(GO) run ./hack/imagebuild build --out $(BIN)/images --version "$(VERSION)" --commit "$(COMMIT)" --created "$(BUILD_DATE)"

# Pushes the images and the chart (pinned to their digests) to $(REGISTRY).
release:
	@if [ -z "$(REGISTRY)" ] || [ -z "$(filter command line environment,$(origin VERSION))" ]; then \
		echo "usage: make release REGISTRY=host[:port]/path VERSION=x.y.z [PLAIN_HTTP=1]" >&2; exit 2; fi
	@$(MAKE) --no-print-directory images VERSION="$(VERSION)"
	@hack/helm.sh >/dev/null
	$(GO) run ./hack/imagebuild release --images $(BIN)/images --registry "$(REGISTRY)" --version "$(VERSION)" \
		--chart charts/ec2guard --helm $(BIN)/helm $(if $(PLAIN_HTTP),--plain-http)

# With a container engine instead: the Dockerfile's three targets, both platforms, pushed.
DOCKER ?= docker
docker-push:
	@if [ -z "$(REGISTRY)" ]; then echo "usage: make docker-push REGISTRY=host[:port]/path [VERSION=x.y.z]" >&2; exit 2; fi
	for t in webhook discoverer ec2guard; do \
		$(DOCKER) buildx build --platform linux/amd64,linux/arm64 --target $$t \
			--build-arg VERSION="$(VERSION)" --build-arg COMMIT="$(COMMIT)" --build-arg BUILD_DATE="$(BUILD_DATE)" \
			-t "$(REGISTRY)/$$t:$(VERSION)" --push . ; \
	done

# The tutorial against the real product: local kube-apiserver + etcd, moto, the chart's webhook
# configurations, bin/webhook and bin/discoverer, real kubectl (hack/demo.sh, test/demo).
demo: build
	@hack/demo.sh

# The offline walk: `ec2guard check` over examples/.
demo-cli: build
	@hack/demo-cli.sh

lint: fmt vet

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.cache/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# Unit tests run with the race detector (the webhook, discoverer and caches are concurrent).
test-unit:
	$(GO) test -race -count=1 $(UNIT_PKGS)

# Prepares the real parts the integration tests use (cached; seconds after the first run).
test-env:
	@hack/test-env.sh

test-integration: test-env
	@source $(ROOT)/.cache/test-env.sh && $(GO) test -count=1 -timeout 25m ./test/...

test: lint test-unit test-integration

clean:
	rm -rf $(BIN) $(ROOT)/.cache

# Fleet-scale discovery benchmark (test/scale): the real discoverer against the real API server and
# an in-process EC2 API. FLEET=small (default, a few minutes) or FLEET=full (5,000 Upstreams, 1,000
# credential groups, 100,000 instances). PROFILE=<dir> saves a CPU profile of the discoverer per window.
FLEET ?= small
.PHONY: bench-discovery
bench-discovery: test-env
	@source $(ROOT)/.cache/test-env.sh && $(GO) test -count=1 -run '^$$' -bench BenchmarkFleet -benchtime 1x -timeout 60m ./test/scale/ -args -fleet=$(FLEET) $(if $(PROFILE),-profile=$(abspath $(PROFILE)))

# Admission latency benchmark (test/admissionbench): the real webhook registered with the real API
# server, warm and cold, against the same workload without the webhooks in the same run.
.PHONY: bench-admission
bench-admission: test-env
	@source $(ROOT)/.cache/test-env.sh && $(GO) test -count=1 -run '^$$' -bench BenchmarkAdmission -benchtime 1x -timeout 30m ./test/admissionbench/

# Every fuzz target of the repository, each for FUZZTIME (found with `go test -list '^Fuzz'` in
# every package whose tests declare one, so new targets in any package are included). `make test`
# runs them briefly from their corpora under testdata/fuzz; inputs that fail here are written there
# too: commit them.
FUZZTIME ?= 60s
.PHONY: fuzz
fuzz:
	@for entry in $$($(GO) list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.Dir}}={{.ImportPath}}{{end}}' ./...); do \
	  dir=$${entry%%=*}; pkg=$${entry#*=}; \
	  grep -qs '^func Fuzz' "$$dir"/*_test.go || continue; \
	  for target in $$($(GO) test -list '^Fuzz' "$$pkg" | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$target ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) "$$pkg" || exit 1; \
	  done; \
	done
