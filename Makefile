# The commands a user and CI need; README.md explains each.
SHELL := /bin/bash
GO ?= go

.PHONY: test check unit cross acceptance standin up destroy env bench

# Compiled as the Go language host compiles the program on every `pulumi up` (-trimpath): the
# tests' builds and the acceptance's `up`s then share one build cache, and nothing is
# compiled twice.
export GOFLAGS += -trimpath

## test: vet and run every test (unit, nginx, engine and registry, browser, the real
## `pulumi up` acceptance), and beside them the Windows and Apple Silicon vet (cross)
test:
	$(MAKE) -j2 cross check

## check: vet and run every test on this machine. go test vets each package (-vet=all: all of
## go vet's checks) as soon as its dependencies are built, so the e2e tests start without waiting
## for the vet of every other package; go vet then covers the packages with no tests
check:
	time $(GO) test -count=1 -timeout 30m -vet=all -v ./...
	time $(GO) vet $(UNTESTED_PACKAGES)

# The packages go test does not vet: those without a test file.
UNTESTED_PACKAGES = $(shell $(GO) list -f '{{if not (or .TestGoFiles .XTestGoFiles)}}{{.ImportPath}}{{end}}' ./...)

## unit: the layers that need no engine: config rules, the component and the program under
## Pulumi mocks (go test ./ ./internal/...)
unit:
	$(GO) test -count=1 ./ ./internal/...

# The program and its unit tests: what people build and run on Windows and macOS. The e2e
# tests, their testbed and the benchmarks need Linux.
CROSS_PACKAGES = $(shell $(GO) list ./... | grep -v -e /e2e$$ -e /bench$$ -e /internal/testbed$$)

## cross: type-check and vet CROSS_PACKAGES, from source, for the systems people run
## `pulumi up` on, so nothing Unix-only creeps in; niced, it takes the CPU the tests leave idle
cross:
	time nice $(GO) run ./internal/crossvet -targets windows/amd64,darwin/arm64 $(CROSS_PACKAGES)

## acceptance: pulumi up, the faults a deployment meets, destroy, through the Automation API
## (needs the Pulumi CLI; installs the provider plugins at the versions go.mod pins, a no-op once there)
acceptance:
	pulumi plugin install resource docker $$($(GO) list -m -f '{{.Version}}' github.com/pulumi/pulumi-docker/sdk/v4)
	pulumi plugin install resource command $$($(GO) list -m -f '{{.Version}}' github.com/pulumi/pulumi-command/sdk)
	$(GO) test -count=1 -timeout 30m -v -run TestAcceptance ./e2e/

## standin: build the offline stand-in for the nginx Alpine base and print its tag
standin:
	@scripts/standin-base.sh

## up: deploy with one command (local backend unless you have one; no account needed)
up:
	@scripts/stack.sh up

## destroy: undo `make up`
destroy:
	@scripts/stack.sh destroy

## bench: measure image size, start time, throughput, builds and pulumi runs; writes docs/benchmarks.md
## (flags through ARGS, e.g. make bench ARGS="-starts 5 -skip-cold-build")
bench:
	$(GO) run ./bench $(ARGS)

## env: print the exports that point plain `pulumi` commands at make up's backend: eval "$(make -s env)"
env:
	@scripts/stack.sh env
