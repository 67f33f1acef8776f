# The commands a user and CI need; README.md explains each.
SHELL := /bin/bash
GO ?= go

.PHONY: test unit cross acceptance standin up destroy env bench

## test: vet, cross-build for Windows and Apple Silicon, and run every test (unit, nginx,
## engine and registry, browser, the real `pulumi up` acceptance)
test: cross
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 30m -v ./...

## unit: the layers that need no engine: config rules, the component and the program under
## Pulumi mocks, the checks (the smoke check against the host's nginx)
unit:
	$(GO) test -count=1 ./ ./internal/...

## cross: build and vet for the systems people run `pulumi up` on, so nothing Unix-only creeps in
cross:
	GOOS=windows GOARCH=amd64 $(GO) build ./...
	GOOS=windows GOARCH=amd64 $(GO) vet ./...
	GOOS=darwin GOARCH=arm64 $(GO) build ./...
	GOOS=darwin GOARCH=arm64 $(GO) vet ./...

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
