# nfs-subdir-provisioner — see README.md for what each target is for.
SHELL := /bin/bash
.DEFAULT_GOAL := build

VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# Evaluated once: every binary, label and file name of one run agrees even if HEAD moves meanwhile.
VERSION     := $(VERSION)
CACHE_DIR   ?= $(HOME)/.cache/nfs-subdir-provisioner
TESTBED_DIR ?= /tmp/nfsp-testbed
GOBIN_CACHE := $(CACHE_DIR)/bin
BIN         := bin/nfs-subdir-provisioner
LDFLAGS     := -s -w -X main.version=$(VERSION)
STATICCHECK_VERSION ?= v0.8.2
ACTIONLINT_VERSION  ?= v1.7.12
CYCLONEDX_VERSION   ?= v1.10.0
REVISION    ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
REVISION    := $(REVISION)
# Image creation time: the commit's, so two builds of one commit give one digest.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
SOURCE_DATE_EPOCH := $(SOURCE_DATE_EPOCH)
IMAGE_TAR   := bin/nfs-subdir-provisioner-$(VERSION).oci.tar
IMAGE_BINS  := bin/linux-amd64/nfs-subdir-provisioner bin/linux-arm64/nfs-subdir-provisioner
CHART_DIR   := charts/nfs-subdir-provisioner
# The chart's version and appVersion (the default image tag): Chart.yaml's, or a release's.
CHART_VERSION ?= $(shell sed -n 's/^version: *//p' $(CHART_DIR)/Chart.yaml)
CHART_APP_VERSION ?= $(shell sed -n 's/^appVersion: *"*\([^"]*\)"*/\1/p' $(CHART_DIR)/Chart.yaml)
CHART_TGZ   := bin/nfs-subdir-provisioner-$(CHART_VERSION).tgz
SBOM        := bin/nfs-subdir-provisioner-$(VERSION).cdx.json
# The bed's helm (Helm 4, e2e/testbed/versions.sh); chart-check also runs on Helm 3.
HELM         = $(shell e2e/testbed/build-helm.sh --path)
# make image-push REGISTRY=host/repo; plain HTTP with INSECURE=1 (a registry on 127.0.0.1).
REGISTRY    ?=
# Charts go beside the image, under charts/: ghcr.io/o/nfs-subdir-provisioner → ghcr.io/o/charts.
CHART_REGISTRY ?= $(dir $(REGISTRY))charts
GOARCH      ?= $(shell go env GOARCH)
export CACHE_DIR TESTBED_DIR

.PHONY: build
build: ## static binary in bin/ (the Dockerfile runs this same command)
	CGO_ENABLED=0 GOARCH=$(GOARCH) go build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/nfs-subdir-provisioner

.PHONY: lint
lint: packages $(GOBIN_CACHE)/staticcheck-$(STATICCHECK_VERSION) $(GOBIN_CACHE)/actionlint-$(ACTIONLINT_VERSION)
	tools/check-tracked.sh
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...
	go vet -tags e2e ./e2e/...
	$(GOBIN_CACHE)/staticcheck-$(STATICCHECK_VERSION) ./...
	$(GOBIN_CACHE)/staticcheck-$(STATICCHECK_VERSION) -tags e2e ./e2e/...
	cd tools/ocibuild && go vet ./... && $(GOBIN_CACHE)/staticcheck-$(STATICCHECK_VERSION) ./...
	$(GOBIN_CACHE)/actionlint-$(ACTIONLINT_VERSION) -shellcheck= .github/workflows/*.yaml
	shellcheck -x $$(git ls-files '*.sh') .ci/run e2e/testbed/node/guest/usr/local/sbin/nfsp-init

$(GOBIN_CACHE)/actionlint-$(ACTIONLINT_VERSION):
	mkdir -p $(GOBIN_CACHE)
	GOBIN=$(GOBIN_CACHE) go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)
	mv $(GOBIN_CACHE)/actionlint $@

$(GOBIN_CACHE)/cyclonedx-gomod-$(CYCLONEDX_VERSION):
	mkdir -p $(GOBIN_CACHE)
	GOBIN=$(GOBIN_CACHE) go install github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod@$(CYCLONEDX_VERSION)
	mv $(GOBIN_CACHE)/cyclonedx-gomod $@

$(GOBIN_CACHE)/staticcheck-$(STATICCHECK_VERSION):
	mkdir -p $(GOBIN_CACHE)
	GOBIN=$(GOBIN_CACHE) go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(GOBIN_CACHE)/staticcheck $@

.PHONY: test-unit
test-unit: ## unit + contract tests (in-process NFS server; Ganesha too when the test bed is up)
	go test -count=1 ./...

.PHONY: packages
packages: ## apt-install the Debian packages the tests need (e2e/testbed/versions.sh), when missing
	e2e/testbed/packages.sh

.PHONY: testbed-build
testbed-build: ## build and cache etcd, kube binaries, kwok, helm (4, and 3 for the chart checks)
	e2e/testbed/build.sh
	e2e/testbed/build-helm.sh
	source e2e/testbed/versions.sh && e2e/testbed/build-helm.sh $$HELM3_VERSION

.PHONY: testbed-up
testbed-up: build testbed-build ## start etcd, apiserver, controller-manager, scheduler, kwok, rpcbind, Ganesha
	e2e/testbed/up.sh

.PHONY: testbed-down
testbed-down: ## stop every test bed process
	e2e/testbed/down.sh

.PHONY: node-up
node-up: testbed-up image ## join one real node to the test bed: a qemu VM with kubelet, containerd and the kernel's NFS client and server
	e2e/testbed/node/up.sh

.PHONY: test-node
test-node: node-up ## the node suite (e2e/node) on the real node: helm install, redis walkthrough, real mounts, knfsd
	set -a; source $(TESTBED_DIR)/env; set +a; \
	  NFSP_REQUIRE_NODE=1 NFSP_REQUIRE_KNFSD=1 go test -count=1 -tags e2e -timeout 30m -v ./e2e/node/ 2>&1 | tee $(TESTBED_DIR)/e2e-node.log; rc=$${PIPESTATUS[0]}; \
	  if [ $$rc -ne 0 ]; then e2e/testbed/logs.sh; e2e/testbed/node/logs.sh; \
	    echo "== failed node tests (full output: $(TESTBED_DIR)/e2e-node.log):"; \
	    grep -E -- '--- FAIL|^panic:|^FAIL' $(TESTBED_DIR)/e2e-node.log || true; fi; exit $$rc

.PHONY: node-down
node-down: ## stop the real node's VM (testbed-down does too)
	e2e/testbed/node/down.sh

.PHONY: test-e2e
test-e2e: testbed-up ## end-to-end suite and chart/deploy checks on the test bed
	set -a; source $(TESTBED_DIR)/env; set +a; \
	  { go test -p 1 -count=1 -tags e2e -timeout 40m -v ./e2e/... && \
	    echo "== the functional and fault suites again, every class over NFSv4.1 (E2E_CLASS_NFS_VERSION=4.1)" && \
	    E2E_CLASS_NFS_VERSION=4.1 go test -p 1 -count=1 -tags e2e -timeout 30m -v ./e2e/functional/ ./e2e/fault/; } 2>&1 | tee $(TESTBED_DIR)/e2e.log; rc=$${PIPESTATUS[0]}; \
	  if [ $$rc -ne 0 ]; then e2e/testbed/logs.sh; \
	    echo "== failed e2e tests (full output: $(TESTBED_DIR)/e2e.log):"; \
	    grep -E -- '--- FAIL|^panic:|^FAIL' $(TESTBED_DIR)/e2e.log | grep -v '^FAIL-FIGURES' || true; fi; exit $$rc

.PHONY: chart-check
chart-check: testbed-up ## helm lint/template/schema and deploy/ checks against the test bed's apiserver, on Helm 4 and Helm 3
	e2e/chart/check.sh
	source e2e/testbed/versions.sh && CHART_CHECK_HELM_VERSION=$$HELM3_VERSION e2e/chart/check.sh

.PHONY: testbed-clean
testbed-clean: ## stop the test bed and delete its state (etcd data, exports, logs); the build cache stays
	e2e/testbed/down.sh
	@test -n "$(TESTBED_DIR)" && test "$(TESTBED_DIR)" != / && rm -rf "$(TESTBED_DIR)"

.PHONY: test
# The real node boots after the other e2e suites (its emulated CPU would slow their timing) and
# after the chart checks (its release's class nfs-client is not the one deploy/ applies).
test: lint ## everything CI runs, on a fresh test bed: lint, unit + contract (Ganesha required), e2e, chart checks, the real node and its suite
	$(MAKE) testbed-clean
	$(MAKE) testbed-up
	NFSP_REQUIRE_GANESHA=1 NFSP_REQUIRE_HELM=1 $(MAKE) test-unit
	$(MAKE) test-e2e
	$(MAKE) chart-check
	$(MAKE) test-node
	$(MAKE) test-image

.PHONY: demo
demo: testbed-up ## the StatefulSet walkthrough on the local test bed
	e2e/demo.sh

.PHONY: bench
bench: testbed-up ## provisioning benchmark on the test bed (README "Performance"), then NFSv3 and NFSv4.1 side by side; E2E_BENCH_CLAIMS, E2E_BENCH_CACHED override
	set -a; source $(TESTBED_DIR)/env; set +a; \
	  { E2E_BENCH=1 E2E_BENCH_OUT=$(TESTBED_DIR)/bench.txt go test -count=1 -tags e2e -timeout 60m -v ./e2e/bench/ && \
	    echo "== NFSv3 and NFSv4.1 side by side on the bed's Ganesha: provisions, delete of 100,000 files, clone" && \
	    NFSP_REQUIRE_GANESHA=1 go test -count=1 -run '^$$' -bench 'RemoveTree|CopyTree' -benchtime 1x -timeout 60m ./provisioner/export/wire/ && \
	    NFSP_REQUIRE_GANESHA=1 go test -count=1 -run '^$$' -bench 'GaneshaMkdirAll' -benchtime 2000x ./provisioner/export/wire/; } 2>&1 | tee $(TESTBED_DIR)/bench.log; \
	  rc=$${PIPESTATUS[0]}; if [ $$rc -ne 0 ]; then e2e/testbed/logs.sh; \
	    echo "== failed benchmark tests (full output: $(TESTBED_DIR)/bench.log):"; \
	    grep -E -- '--- FAIL|^panic:|^FAIL' $(TESTBED_DIR)/bench.log | grep -v '^FAIL-FIGURES' || true; fi; exit $$rc

.PHONY: bench-kcm-default-qps
bench-kcm-default-qps: testbed-up ## the 1,000-claim run with the controller-manager at its default API QPS (20/30); restores 500/1000 afterwards
	set -a; source $(TESTBED_DIR)/env; set +a; source e2e/testbed/lib.sh; \
	  trap 'stop_process kube-controller-manager; e2e/testbed/up.sh >/dev/null' EXIT; \
	  stop_process kube-controller-manager && KCM_KUBE_API_QPS=20 KCM_KUBE_API_BURST=30 e2e/testbed/up.sh >/dev/null && \
	  E2E_BENCH=1 E2E_BENCH_CLAIMS=$${E2E_BENCH_CLAIMS:-1000} E2E_BENCH_CACHED=0 \
	  E2E_BENCH_LABEL="controller-manager at its defaults, --kube-api-qps=20 --kube-api-burst=30" \
	  E2E_BENCH_OUT=$(TESTBED_DIR)/bench.txt go test -count=1 -tags e2e -timeout 60m -v ./e2e/bench/

.PHONY: test-faults
test-faults: testbed-up ## fault suite alone, larger counts
	set -a; source $(TESTBED_DIR)/env; set +a; E2E_FAULT_CLAIMS=$${E2E_FAULT_CLAIMS:-300} go test -count=1 -tags e2e -timeout 60m -v ./e2e/fault/

.PHONY: image
image: ## OCI image index (linux/amd64 + linux/arm64) as an OCI layout tarball in bin/, no Docker
	$(MAKE) build GOARCH=amd64 BIN=bin/linux-amd64/nfs-subdir-provisioner VERSION=$(VERSION)
	$(MAKE) build GOARCH=arm64 BIN=bin/linux-arm64/nfs-subdir-provisioner VERSION=$(VERSION)
	cd tools/ocibuild && go run . build -out $(CURDIR)/$(IMAGE_TAR) \
	  -version $(VERSION) -revision $(REVISION) -created $(SOURCE_DATE_EPOCH) \
	  -binary linux/amd64=$(CURDIR)/bin/linux-amd64/nfs-subdir-provisioner \
	  -binary linux/arm64=$(CURDIR)/bin/linux-arm64/nfs-subdir-provisioner

.PHONY: image-push
image-push: image ## push the image index: make image-push REGISTRY=host/repo [INSECURE=1]
	@test -n "$(REGISTRY)" || { echo "set REGISTRY=host/repo" >&2; exit 2; }
	cd tools/ocibuild && go run . push -layout $(CURDIR)/$(IMAGE_TAR) -ref $(REGISTRY):$(VERSION) $(if $(INSECURE),-insecure)

.PHONY: chart-package
chart-package: ## the chart as bin/nfs-subdir-provisioner-<chart version>.tgz
	e2e/testbed/build-helm.sh >/dev/null
	mkdir -p bin && $(HELM) package $(CHART_DIR) -d bin --version $(CHART_VERSION) --app-version $(CHART_APP_VERSION) >/dev/null && echo $(CHART_TGZ)

.PHONY: chart-push
chart-push: chart-package ## push the chart as an OCI artifact: make chart-push REGISTRY=host/repo (goes to oci://host)
	@test -n "$(REGISTRY)" || { echo "set REGISTRY=host/repo" >&2; exit 2; }
	$(HELM) push $(CHART_TGZ) oci://$(CHART_REGISTRY) $(if $(INSECURE),--plain-http)

.PHONY: sbom
sbom: $(GOBIN_CACHE)/cyclonedx-gomod-$(CYCLONEDX_VERSION) ## CycloneDX SBOM of the binary's modules in bin/
	mkdir -p bin
	$(GOBIN_CACHE)/cyclonedx-gomod-$(CYCLONEDX_VERSION) app -json -licenses=false -main cmd/nfs-subdir-provisioner -output $(SBOM) .

.PHONY: test-image
test-image: image chart-package sbom ## image + chart round trip through a registry on 127.0.0.1, reproducibility, SBOM
	cd tools/ocibuild && NFSP_REQUIRE_IMAGE=1 IMAGE_TAR=$(CURDIR)/$(IMAGE_TAR) IMAGE_VERSION=$(VERSION) \
	  IMAGE_BIN_AMD64=$(CURDIR)/bin/linux-amd64/nfs-subdir-provisioner IMAGE_BIN_ARM64=$(CURDIR)/bin/linux-arm64/nfs-subdir-provisioner \
	  HELM=$(HELM) CHART_TGZ=$(CURDIR)/$(CHART_TGZ) CHART_VERSION=$(CHART_VERSION) SBOM=$(CURDIR)/$(SBOM) \
	  go test -count=1 -v ./...

.PHONY: image-docker
image-docker: ## the same image with a Docker engine (Dockerfile; not available on the dev machines)
	docker build --build-arg TARGETOS=linux --build-arg TARGETARCH=$(GOARCH) --build-arg VERSION=$(VERSION) -t nfs-subdir-provisioner:$(VERSION) .

.PHONY: e2e-kind
e2e-kind: ## kind cluster + chart + the same e2e suite (needs Docker)
	e2e/kind/run.sh

.PHONY: clean
clean:
	rm -rf bin
