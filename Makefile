# dossierguard — build, generate, test, run.
# `make help` lists the targets.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

IMG ?= dossierguard:dev
LOCALBIN := $(CURDIR)/bin
CONTROLLER_TOOLS_VERSION ?= v0.23.0
CONTROLLER_GEN := $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
GOLANGCI_LINT_VERSION ?= v2.15.0
GOLANGCI_LINT := $(LOCALBIN)/golangci-lint
# Envtest binaries: kube-apiserver, etcd, a matching kubectl, and
# kube-controller-manager, whose garbage collector the tests of owned reports run.
ENVTEST_ASSETS = $(shell hack/envtest-assets.sh kubectl kube-controller-manager)
GO_TEST_FLAGS ?= -count=1
BENCH_STORES ?= 100

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*##/ { printf "  %-16s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

##@ Development

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy code.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths="./api/..."

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs and RBAC from markers.
	$(CONTROLLER_GEN) rbac:roleName=dossierguard-manager crd:allowDangerousTypes=false paths="./api/...;./controllers/...;./internal/...;./cmd/..." \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac

.PHONY: fmt
fmt: ## Format the code.
	gofmt -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: lint
lint: golangci-lint ## Run golangci-lint (.golangci.yml) over the main module and test/netpol.
	$(GOLANGCI_LINT) run --allow-parallel-runners ./...
	cd test/netpol && $(GOLANGCI_LINT) run --allow-parallel-runners --config ../../.golangci.yml ./...

.PHONY: shellcheck
shellcheck: ## shellcheck every script (hack/*.sh and hack/local-cluster/*.sh; Debian's shellcheck, which .ci/run installs).
	@command -v shellcheck >/dev/null || { echo "shellcheck is not installed (Debian: apt-get install shellcheck)"; exit 1; }
	shellcheck -x hack/*.sh hack/local-cluster/*.sh

.PHONY: golangci-lint
golangci-lint: ## Build golangci-lint (GOLANGCI_LINT_VERSION) into bin/ from the Go module proxy when missing or of another version.
	@if [ "$$($(GOLANGCI_LINT) version --short 2>/dev/null)" != "$(GOLANGCI_LINT_VERSION:v%=%)" ]; then \
		echo "building golangci-lint $(GOLANGCI_LINT_VERSION) into bin/ (a few minutes the first time)"; \
		GOBIN=$(LOCALBIN) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION); \
	fi

.PHONY: verify
verify: generate manifests lint shellcheck ## Fail when generated files are stale, code is not gofmt/vet clean or a script under hack/ is not shellcheck-clean.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "Not gofmt-clean:"; echo "$$out"; exit 1; fi
	go vet ./...
	go vet -tags e2e ./test/e2e/...
	go mod tidy -diff
	cd test/netpol && go vet ./... && go mod tidy -diff
	cd hack/local-cluster/images && go vet ./... && go mod tidy -diff
	go test ./internal/resources -run TestGeneratedNetworkPolicies
	hack/sync-chart.sh --check
	@if [ -n "$$(git status --porcelain -- api config)" ]; then \
		echo "Generated files are stale; run 'make generate manifests' and commit:"; \
		git status --porcelain -- api config; git --no-pager diff --stat -- api config; exit 1; fi

.PHONY: test
test: test-go test-netpol test-local-cluster-tools ## Run all tests (unit, envtest, NetworkPolicy semantics, the local cluster's own tools; builds kube-apiserver and etcd on first use).

.PHONY: test-go
test-go: ## Unit, envtest and PostgreSQL suites of the main module (starts and stops a throwaway PostgreSQL).
	hack/postgres.sh start
	trap 'hack/postgres.sh stop' EXIT; \
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" DOSSIERGUARD_TEST_PG_DSN="$$(hack/postgres.sh dsn)" go test $(GO_TEST_FLAGS) ./...

.PHONY: test-report
test-report: ## The compliance report: model, golden files, `dossierguard report` on envtest, and in headless Chromium (screenshot and PDF in bin/test-artefacts/report/), and the family's access report (`dossierguard dsr report`).
	@[ -n "$$DOSSIERGUARD_CHROMIUM" ] || command -v chromium >/dev/null || { echo "Chromium is needed: apt-get install -y chromium (or set DOSSIERGUARD_CHROMIUM)"; exit 1; }
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" go test $(GO_TEST_FLAGS) ./internal/report/ && \
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" go test $(GO_TEST_FLAGS) -run 'TestReport|TestDSRReport' -v ./cmd/dossierguard/

.PHONY: test-local-cluster-tools
test-local-cluster-tools: ## The local cluster's own tools (mkimage, volume-helper; own module, standard library only) and lib.sh's unmounting (real mounts in a namespace of its own).
	cd hack/local-cluster/images && go test $(GO_TEST_FLAGS) ./...
	hack/local-cluster/lib_test.sh

.PHONY: test-netpol
test-netpol: ## NetworkPolicy semantics of the generated policies, checked with cyclonus's matcher (own module).
	cd test/netpol && go test $(GO_TEST_FLAGS) ./...

FUZZTIME ?= 30s
FUZZ_TARGETS := ./internal/auditproxy:FuzzRouterMatch ./internal/auditproxy:FuzzAuthenticate ./internal/auditproxy:FuzzMultipartGuard ./internal/auditproxy:FuzzFilterRecords

.PHONY: fuzz
fuzz: ## Run each fuzz test (route matcher, identity extraction, multipart guard) for FUZZTIME (default 30s); seeds run in make test too.
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "go test $$pkg -run '^$$' -fuzz '^$$fn\$$' -fuzztime $(FUZZTIME)"; \
		go test "$$pkg" -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s || exit 1; \
	done

.PHONY: envtest-assets
envtest-assets: ## Build or download kube-apiserver, etcd and kubectl into bin/k8s.
	hack/envtest-assets.sh kubectl

##@ Build and run

.PHONY: build
build: ## Build bin/dossierguard.
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o $(LOCALBIN)/dossierguard ./cmd/dossierguard

.PHONY: run
run: manifests ## Run the manager against the cluster in KUBECONFIG (keeps public audit keys in namespace dossierguard-system).
	kubectl create namespace dossierguard-system --dry-run=client -o yaml | kubectl apply -f -
	go run ./cmd/dossierguard manager --leader-elect=false --enable-webhook=false --audit-trust-namespace dossierguard-system

.PHONY: install
install: manifests ## Install the CRDs into the cluster in KUBECONFIG.
	kubectl apply --server-side -k config/crd

.PHONY: uninstall
uninstall: ## Remove the CRDs (and every dossierguard resource) from the cluster in KUBECONFIG.
	kubectl delete --ignore-not-found -k config/crd

$(CONTROLLER_GEN):
	@mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(LOCALBIN)/controller-gen $(CONTROLLER_GEN)

##@ Demo

.PHONY: demo
demo: build ## Run dossierguard on a local control plane with the samples, and the logbook on a throwaway PostgreSQL (no root, no cluster). DEMO_EXIT=1 exits after printing.
	hack/postgres.sh start
	trap 'hack/postgres.sh stop' EXIT; \
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" DEMO_PG_DSN="$$(hack/postgres.sh dsn)" DEMO_BIN="$(LOCALBIN)/dossierguard" go run ./hack/demo

.PHONY: demo-down
demo-down: ## Stop the control plane, the logbook and the PostgreSQL that `make demo` left running.
	@if [ -f bin/demo/pid ]; then kill "$$(cat bin/demo/pid)" && echo "Stopped the demo control plane."; else echo "No demo is running."; fi

##@ Benchmarks

.PHONY: bench
bench: ## Convergence benchmark: BENCH_STORES stores with their roles, agreements and policies, writes by verb and resource against a plain-client floor (figures in docs/benchmarks.md).
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" BENCH_STORES=$(BENCH_STORES) go test -run '^$$' -bench Convergence -benchtime 1x -timeout 30m ./test/bench/

.PHONY: bench-proxy
bench-proxy: ## Audit proxy against a bare reverse proxy, smoke run of a few seconds; figures printed, not asserted (docs/benchmarks-auditproxy.md).
	go test -run '^$$' -bench 'BenchmarkProxyFloor|BenchmarkTokenIdentity' -benchtime 1x -short -timeout 5m ./internal/auditproxy/

BENCH_RETENTION_ROWS ?= 1000000
BENCH_RETENTION_BATCH ?= 5000
.PHONY: bench-retention
bench-retention: ## Retention sweeper against one plain DELETE on a real PostgreSQL.
	hack/postgres.sh start
	trap 'hack/postgres.sh stop' EXIT; \
	DOSSIERGUARD_TEST_PG_DSN="$$(hack/postgres.sh dsn)" DOSSIERGUARD_BENCH_ROWS=$(BENCH_RETENTION_ROWS) \
	DOSSIERGUARD_BENCH_BATCH=$(BENCH_RETENTION_BATCH) \
	go test -run '^$$' -bench BenchmarkSweepVsPlainDelete -benchtime=3x -timeout 60m ./internal/retention/

.PHONY: bench-logbook
bench-logbook: ## Logbook ingest from 8 shipping proxies, and the latency the logbook adds to Append (real PostgreSQL).
	hack/postgres.sh start
	trap 'hack/postgres.sh stop' EXIT; \
	DOSSIERGUARD_TEST_PG_DSN="$$(hack/postgres.sh dsn)" go test -run '^$$' -bench 'BenchmarkLogbookIngest|BenchmarkProxyShipping|BenchmarkAppendLatency' -benchtime 200000x -timeout 30m ./internal/logbook/

.PHONY: bench-auditlog
bench-auditlog: ## Durable audit events per second with group commit.
	go test -run '^$$' -bench 'BenchmarkAppendDurable|BenchmarkFsync|BenchmarkVerify' -benchtime 5s -count 3 ./internal/auditlog/

##@ End to end

.PHONY: e2e
e2e: ## End to end on a real cluster: KUBECONFIG, or the local cluster (root, containerd); see docs/e2e.md.
	hack/e2e.sh

E2E_FOCUS ?=
.PHONY: e2e-suite
e2e-suite: ## Only the Go stories (test/e2e), with the settings of the install `E2E_KEEP=1 make e2e` left (bin/e2e/suite.env); E2E_FOCUS=REGEX picks stories (the install story runs regardless).
	set -a; if [ -f bin/e2e/suite.env ]; then . bin/e2e/suite.env; fi; set +a; \
	go test -tags e2e ./test/e2e -v -count=1 -timeout 40m -ginkgo.v -ginkgo.label-filter='!deletion' $(if $(E2E_FOCUS),-ginkgo.focus '$(E2E_FOCUS)' -ginkgo.focus '^dossierguard end to end Install ')

##@ Image, Helm and deployment

VERSION ?= dev
HELM_VERSION ?= v3.22.0
HELM := $(LOCALBIN)/helm
HELM_LDFLAGS := -s -w -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
	-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=37 \
	-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=37
PROMETHEUS_VERSION ?= v0.316.0
# remove_all_sd leaves Prometheus's service discoveries (every cloud SDK) out of
# promtool: the rules and their tests need none of them, and the build is about
# an eighth of the full one (docs/e2e.md, CI time).
PROMTOOL_TAGS ?= remove_all_sd
PROMTOOL := $(LOCALBIN)/promtool
# go install stamps no version into promtool: this file records which one bin/ holds.
PROMTOOL_STAMP := $(LOCALBIN)/.promtool-$(PROMETHEUS_VERSION)-$(PROMTOOL_TAGS)
DEPLOY_DIR ?= config/default
KUBECTL ?= kubectl

.PHONY: image
image: ## Build the image without Docker into bin/image/dossierguard.tar (IMG, VERSION, SOURCE_DATE_EPOCH).
	@mkdir -p $(LOCALBIN)/image
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -buildvcs=false -tags timetzdata \
		-ldflags "-s -w -buildid= -X main.version=$(VERSION)" -o $(LOCALBIN)/image/dossierguard ./cmd/dossierguard
	go run ./hack/image -binary $(LOCALBIN)/image/dossierguard -tag $(IMG) -version $(VERSION) -out $(LOCALBIN)/image/dossierguard.tar

.PHONY: docker-build
docker-build: ## Build the image with a Docker engine and the Dockerfile (IMG, VERSION).
	docker build --build-arg VERSION=$(VERSION) -t $(IMG) .

.PHONY: helm
helm: ## Build the Helm CLI (HELM_VERSION) into bin/helm from the Go module proxy.
	@if [ "$$($(HELM) version --template '{{.Version}}' 2>/dev/null)" != "$(HELM_VERSION)" ]; then \
		echo "building helm $(HELM_VERSION) into bin/ (a few minutes the first time)"; \
		GOBIN=$(LOCALBIN) go install -ldflags "$(HELM_LDFLAGS)" helm.sh/helm/v3/cmd/helm@$(HELM_VERSION); \
	fi

.PHONY: promtool
promtool: ## Build promtool (PROMETHEUS_VERSION) into bin/ from the Go module proxy when missing or of another version.
	@if [ ! -x "$(PROMTOOL)" ] || [ ! -f "$(PROMTOOL_STAMP)" ]; then \
		echo "building promtool $(PROMETHEUS_VERSION) into bin/ (several minutes the first time)"; \
		GOBIN=$(LOCALBIN) go install -tags "$(PROMTOOL_TAGS)" github.com/prometheus/prometheus/cmd/promtool@$(PROMETHEUS_VERSION) && \
		rm -f $(LOCALBIN)/.promtool-* && touch "$(PROMTOOL_STAMP)"; \
	fi

.PHONY: test-alerts
test-alerts: promtool ## Check the chart's alerting rules and run their promtool unit tests (test/alerts) on synthetic series; parse the dashboard's PromQL.
	$(PROMTOOL) check rules charts/dossierguard/alerts/dossierguard.rules.yaml
	$(PROMTOOL) test rules test/alerts/dossierguard.test.yaml
	DOSSIERGUARD_PROMTOOL="$(abspath $(PROMTOOL))" go test ./test/chart -run 'TestDashboardNamesExportedMetrics' -count=1

.PHONY: helm-lint
helm-lint: helm ## Lint the chart (default values, cert-manager, the ServiceMonitor and PrometheusRule, the dashboard and PolicyReports).
	$(HELM) lint --strict charts/dossierguard
	$(HELM) lint --strict charts/dossierguard --set certManager.enabled=true
	$(HELM) lint --strict charts/dossierguard --set prometheusRule.enabled=true --set metrics.serviceMonitor.enabled=true
	$(HELM) lint --strict charts/dossierguard --set grafanaDashboard.enabled=true --set reports.policyReports=true

.PHONY: sync-chart
sync-chart: manifests ## Copy the generated CRDs and RBAC rules into the chart and config/manager.
	hack/sync-chart.sh

.PHONY: test-chart
test-chart: helm ## Chart, kustomize and image tests (helm lint/template/install against a real kube-apiserver).
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" go test $(GO_TEST_FLAGS) ./test/chart/ ./hack/image/

.PHONY: deploy
deploy: ## Deploy with kustomize (DEPLOY_DIR=config/default or config/certmanager; IMG) to the cluster in KUBECONFIG.
	$(KUBECTL) kustomize $(DEPLOY_DIR) | sed "s|dossierguard:dev|$(IMG)|g" | $(KUBECTL) apply --server-side -f -

.PHONY: undeploy
undeploy: ## Remove what deploy applied except the CRDs (and so every dossierguard resource).
	$(KUBECTL) kustomize $(DEPLOY_DIR) | $(KUBECTL) delete --ignore-not-found -l app.kubernetes.io/part-of=dossierguard -f -
