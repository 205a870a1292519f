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
	go test -count=1 ./...

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

.PHONY: testbed-clean
testbed-clean: ## stop the test bed and delete its state (etcd data, exports, logs); the build cache stays
	e2e/testbed/down.sh
	@test -n "$(TESTBED_DIR)" && test "$(TESTBED_DIR)" != / && rm -rf "$(TESTBED_DIR)"

.PHONY: test
test: lint ## everything CI runs, on a fresh test bed: lint, unit + contract (Ganesha required), e2e, chart checks
	$(MAKE) testbed-clean
	$(MAKE) testbed-up
	NFSP_REQUIRE_GANESHA=1 NFSP_REQUIRE_HELM=1 $(MAKE) test-unit
	$(MAKE) test-e2e
	$(MAKE) chart-check

.PHONY: demo
demo: testbed-up ## the StatefulSet walkthrough on the local test bed
	e2e/demo.sh

.PHONY: bench
bench: testbed-up ## provisioning benchmark on the test bed (README "Performance"); E2E_BENCH_CLAIMS, E2E_BENCH_CACHED override
	set -a; source $(TESTBED_DIR)/env; set +a; \
	  E2E_BENCH=1 E2E_BENCH_OUT=$(TESTBED_DIR)/bench.txt go test -count=1 -tags e2e -timeout 60m -v -run '^TestBenchmark$$' ./e2e/ 2>&1 | tee $(TESTBED_DIR)/bench.log; \
	  rc=$${PIPESTATUS[0]}; if [ $$rc -ne 0 ]; then e2e/testbed/logs.sh; fi; exit $$rc

.PHONY: bench-kcm-default-qps
bench-kcm-default-qps: testbed-up ## the 1,000-claim run with the controller-manager at its default API QPS (20/30); restores 500/1000 afterwards
	set -a; source $(TESTBED_DIR)/env; set +a; source e2e/testbed/lib.sh; \
	  trap 'stop_process kube-controller-manager; e2e/testbed/up.sh >/dev/null' EXIT; \
	  stop_process kube-controller-manager && KCM_KUBE_API_QPS=20 KCM_KUBE_API_BURST=30 e2e/testbed/up.sh >/dev/null && \
	  E2E_BENCH=1 E2E_BENCH_CLAIMS=$${E2E_BENCH_CLAIMS:-1000} E2E_BENCH_CACHED=0 \
	  E2E_BENCH_LABEL="controller-manager at its defaults, --kube-api-qps=20 --kube-api-burst=30" \
	  E2E_BENCH_OUT=$(TESTBED_DIR)/bench.txt go test -count=1 -tags e2e -timeout 60m -v -run '^TestBenchmark$$' ./e2e/

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
