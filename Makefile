# The project's entry points. `make test` is what CI runs (.ci/run) and what a
# newcomer runs: it installs the test bed first (hack/testbed.sh), then runs every
# test, the root-only integration tests included.

SHELL := /bin/bash
# A fresh Debian machine of this workplace has Go at /usr/local/go without it on PATH.
export PATH := $(PATH):/usr/local/go/bin

MODULE  := github.com/polynet-cni/polynet
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)
COMMIT  ?= $(shell git rev-parse --verify -q HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X $(MODULE)/internal/buildinfo.Version=$(VERSION) -X $(MODULE)/internal/buildinfo.Commit=$(COMMIT)
BINARIES := multus multus-shim multus-daemon passthru install_multus thin_entrypoint multus-cert-approver

GO_TEST_FLAGS ?= -count=1 -timeout 60m
# How long `make fuzz` fuzzes each target: a duration, or a count of inputs such as 500x.
FUZZTIME ?= 20s

.PHONY: all build image testbed test lint fmt fuzz cover bench demo clean

all: build

## build: static binaries into bin/
build:
	@mkdir -p bin
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o bin/ $(addprefix ./cmd/,$(BINARIES))

## image: the image of both modes, bin/image/polynet-<version>.tar, for ctr import, docker load, podman load; reproducible
image: build
	go run ./tools/mkimage -bin bin -out bin/image -version '$(VERSION)' -revision '$(COMMIT)' \
		-epoch $$(git log -1 --format=%ct 2>/dev/null || echo 0)

## demo: a real node (kubelet, containerd) in namespaces of its own, us installed with the thick manifest, two pods with two extra networks; KEEP=1 leaves it running
demo:
	@KEEP=$(KEEP) hack/demo.sh

## testbed: install the test bed (Debian packages, reference CNI plugins, etcd, kube-apiserver)
testbed:
	hack/testbed.sh test

## test: every test, including the integration tests that need root
test: testbed
	go test $(GO_TEST_FLAGS) ./...
	hack/no-binaries.sh

## lint: gofmt, go vet and staticcheck
lint:
	hack/testbed.sh lint
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	go vet ./...
	$$(. hack/versions.env; echo $${POLYNET_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/polynet}/staticcheck-$$STATICCHECK_VERSION/staticcheck) ./...

## fmt: gofmt -w over the Go files git tracks, and the new ones it does not ignore; prints the files it changed
fmt:
	@git ls-files -z --cached --others --exclude-standard -- '*.go' | \
		while IFS= read -r -d '' f; do if [ -f "$$f" ]; then printf '%s\0' "$$f"; fi; done | xargs -0 -r gofmt -l -w

## fuzz: every fuzz target in the module, found when it runs (hack/fuzz.sh), one after another, FUZZTIME (20s) each; stops at the first failure
fuzz:
	FUZZTIME='$(FUZZTIME)' hack/fuzz.sh

## cover: the unit tests of ./internal ./cmd ./tools with coverage: a line per package, least covered first, and the total; profile in bin/cover.out
cover:
	COVERPROFILE=bin/cover.out hack/cover.sh

## bench: the benchmarks of test/bench side by side (ADD+DEL, bursts, API, daemon, start-up); prints the table, writes docs/bench/*.svg (hack/bench.sh)
bench: testbed
	hack/bench.sh

clean:
	rm -rf bin
