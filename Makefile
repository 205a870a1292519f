# nfs-subdir-provisioner — see README.md for what each target is for.
SHELL := /bin/bash
.DEFAULT_GOAL := build

VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
CACHE_DIR   ?= $(HOME)/.cache/nfs-subdir-provisioner
TESTBED_DIR ?= /tmp/nfsp-testbed
GOBIN_CACHE := $(CACHE_DIR)/bin
BIN         := bin/nfs-subdir-provisioner
LDFLAGS     := -s -w -X main.version=$(VERSION)
STATICCHECK_VERSION ?= v0.8.2
GOARCH      ?= $(shell go env GOARCH)
export CACHE_DIR TESTBED_DIR

.PHONY: build
build: ## static binary in bin/ (the Dockerfile runs this same command)
	CGO_ENABLED=0 GOARCH=$(GOARCH) go build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/nfs-subdir-provisioner

.PHONY: lint
lint: $(GOBIN_CACHE)/staticcheck-$(STATICCHECK_VERSION)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...
	go vet -tags e2e ./e2e/...
	$(GOBIN_CACHE)/staticcheck-$(STATICCHECK_VERSION) ./...
	$(GOBIN_CACHE)/staticcheck-$(STATICCHECK_VERSION) -tags e2e ./e2e/...

$(GOBIN_CACHE)/staticcheck-$(STATICCHECK_VERSION):
	mkdir -p $(GOBIN_CACHE)
	GOBIN=$(GOBIN_CACHE) go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(GOBIN_CACHE)/staticcheck $@

.PHONY: test-unit
test-unit: ## unit + contract tests (in-process NFS server; Ganesha too when the test bed is up)
	go test -count=1 ./... 2>&1 | tee /tmp/nfsp-unit.log; exit $${PIPESTATUS[0]}

.PHONY: testbed-build
testbed-build: ## build and cache etcd, kube binaries, kwok, helm
	e2e/testbed/build.sh
	e2e/testbed/build-helm.sh

.PHONY: testbed-up
testbed-up: build testbed-build ## start etcd, apiserver, controller-manager, scheduler, kwok, rpcbind, Ganesha
	e2e/testbed/up.sh

.PHONY: testbed-down
testbed-down: ## stop every test bed process
	e2e/testbed/down.sh

.PHONY: test-e2e
test-e2e: testbed-up ## end-to-end suite and chart/deploy checks on the test bed
	set -a; source $(TESTBED_DIR)/env; set +a; \
	  go test -count=1 -tags e2e -timeout 40m -v ./e2e/... 2>&1 | tee $(TESTBED_DIR)/e2e.log; rc=$${PIPESTATUS[0]}; \
	  if [ $$rc -ne 0 ]; then e2e/testbed/logs.sh; fi; exit $$rc

.PHONY: chart-check
chart-check: testbed-up ## helm lint/template/schema and deploy/ checks against the test bed's apiserver
	e2e/chart/check.sh

.PHONY: test
test: lint testbed-up ## everything CI runs: lint, unit + contract (Ganesha required), e2e, chart checks
	NFSP_REQUIRE_GANESHA=1 NFSP_REQUIRE_HELM=1 $(MAKE) test-unit
	$(MAKE) test-e2e
	$(MAKE) chart-check

.PHONY: demo
demo: testbed-up ## the StatefulSet walkthrough on the local test bed
	e2e/demo.sh

.PHONY: bench
bench: testbed-up ## provisioning benchmark on the test bed
	set -a; source $(TESTBED_DIR)/env; set +a; go test -tags e2e -run '^$$' -bench . -benchtime 1x -timeout 60m ./e2e/bench/

.PHONY: test-faults
test-faults: testbed-up ## fault suite alone, larger counts
	set -a; source $(TESTBED_DIR)/env; set +a; E2E_FAULT_CLAIMS=$${E2E_FAULT_CLAIMS:-300} go test -count=1 -tags e2e -timeout 60m -v -run 'TestFault' ./e2e/...

.PHONY: image
image: ## container image (needs a Docker engine; not available on the dev machines)
	docker build --build-arg TARGETOS=linux --build-arg TARGETARCH=$(GOARCH) --build-arg VERSION=$(VERSION) -t nfs-subdir-provisioner:$(VERSION) .

.PHONY: e2e-kind
e2e-kind: ## kind cluster + chart + the same e2e suite (needs Docker)
	e2e/kind/run.sh

.PHONY: clean
clean:
	rm -rf bin
