#!/usr/bin/env bash
# End-to-end check of dossierguard on a real cluster (docs/e2e.md).
#
#   sudo hack/e2e.sh                      # start the local cluster, test, stop it
#   KUBECONFIG=~/.kube/test hack/e2e.sh   # use that cluster; never up/down
#
# A thin runner: it does what has to happen outside the cluster's API and
# leaves every check to the Go suite (test/e2e). Steps: the cluster, the
# images (make image, the demo database, the demo app, netprobe, the
# partner; imported), the throwaway PostgreSQL and the logbook's database,
# helm install, then the Go suite: its install story first (the operator's
# rollout, leader and webhooks, the samples applied and Ready, the
# logbook's keys, the demo database on the store's volume), every story,
# the deletion story alone, and clean-up. Exits non-zero when a step or a
# story failed, after printing the operator's logs and the relevant objects.
#
# Settings (environment):
#   E2E_IMPORT=auto|1|0   import bin/image/dossierguard.tar into the local
#                         cluster (auto: when it is the local cluster)
#   E2E_APP_IMAGE         the workload pod's app image (local/echo:dev)
#   E2E_KEEP=1            leave everything installed (and the cluster up)
#   E2E_TIMEOUT           seconds for each wait (180)
#   E2E_POD_FSGROUP=N     give the workload pod fsGroup N (none by default)
#   E2E_WINDOW_SECONDS    how long the sharing step's window agreement is open (150)
#   E2E_LOGBOOK=auto|0    install the logbook on the throwaway PostgreSQL and
#                         check the chains survive a pod deletion (auto: when
#                         the local pod bridge is there for the database)
#   E2E_FOCUS             run only the Go suite's stories matching this
#                         regular expression (-ginkgo.focus, against
#                         "dossierguard end to end <story> <spec>"; the install and
#                         the deletion story run regardless, the deletion
#                         unless E2E_KEEP=1)
#   E2E_PROBE_IMAGE       the Go suite's probe image (local/netprobe:dev, built
#                         and imported here on the local cluster)
#   LC_NETWORK_POLICIES=0 the local cluster without NetworkPolicy enforcement
#                         (the network stories fail then: docs/e2e.md)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

NS=dossierguard-system
RELEASE=dossierguard
ART=$ROOT/bin/e2e/artefacts
HELM=$ROOT/bin/helm
IMAGE_TAR=$ROOT/bin/image/dossierguard.tar
IMG_TAG=${E2E_IMAGE_TAG:-dev}
APP_IMAGE=${E2E_APP_IMAGE:-local/echo:dev}
BREAK_GLASS_GROUP=dossierguard:e2e-break-glass
DEMO_APP=0
LOGBOOK=0
DEMO_DB=0
PG_STARTED=0
TIMEOUT=${E2E_TIMEOUT:-180}
E2E_IMPORT=${E2E_IMPORT:-auto}
LC=$ROOT/hack/local-cluster.sh

mkdir -p "$ART"
rm -f "$ART"/*
T0=$(date +%s)
STEP_T0=$T0
STEP="start"
STARTED_CLUSTER=0
INSTALLED=0
SAMPLES=0
FAILED=0

log() { printf '[e2e %4ds] %s\n' "$(($(date +%s) - T0))" "$*" >&2; }
step() {
  local now; now=$(date +%s)
  [ "$STEP" = start ] || printf '%-42s %4ds\n' "$STEP" "$((now - STEP_T0))" >>"$ART/timings.txt"
  STEP=$1; STEP_T0=$now
  log "== $1"
}
fail() { log "FAIL ($STEP): $*"; exit 1; }
# newest_dir prints the directory among its arguments (a glob) with the
# highest version, or nothing when none exists.
newest_dir() {
  local d
  for d in "$@"; do if [ -d "$d" ]; then printf '%s\n' "$d"; fi; done | sort -V | tail -n 1
}

# kubectl of the cluster's version when cached (bin/k8s), else from PATH.
KUBECTL_DIR=$(newest_dir "$ROOT"/bin/k8s/*-linux-amd64)
if [ -n "$KUBECTL_DIR" ] && [ -x "$KUBECTL_DIR/kubectl" ]; then KUBECTL=$KUBECTL_DIR/kubectl
elif command -v kubectl >/dev/null; then KUBECTL=$(command -v kubectl)
else KUBECTL=""; fi
k() { "$KUBECTL" "$@"; }

# --- diagnostics and clean-up --------------------------------------------

diagnose() {
  log "diagnostics (also in $ART/)"
  {
    echo "### deployment, pods, events in $NS"
    k -n "$NS" get deploy,rs,pods,svc,endpointslices -o wide 2>&1 || true
    k -n "$NS" get events --sort-by=.lastTimestamp 2>&1 | tail -n 40 || true
    echo "### privacy resources"
    k get privacy -A -o wide 2>&1 || true
    echo "### pods in wijkteam"
    k -n wijkteam get pods -o wide 2>&1 || true
    k -n wijkteam describe pod e2e-wijkteam-app 2>&1 | tail -n 60 || true
  } >"$ART/diagnostics.txt" 2>&1
  cat "$ART/diagnostics.txt" >&2
  local p
  for p in $(k -n "$NS" get pods -l app.kubernetes.io/name=dossierguard -o name 2>/dev/null); do
    echo "### logs of $p" >&2
    k -n "$NS" logs "$p" --all-containers --tail=200 2>&1 | tee "$ART/operator-${p#pod/}.log" >&2 || true
    k -n "$NS" logs "$p" --all-containers --previous --tail=50 >"$ART/operator-${p#pod/}.previous.log" 2>&1 || true
  done
  k -n wijkteam logs e2e-wijkteam-app --all-containers --tail=100 >"$ART/wijkteam-app.log" 2>&1 || true
}

# A throwaway PostgreSQL for the retention Job, on the pod bridge's gateway
# address (this machine; pods reach it, nothing else does), with random rows.
E2E_PG_PORT=${E2E_PG_PORT:-55433}
E2E_PG_DIR=$ROOT/bin/e2e/postgres
pg_bin() { newest_dir /usr/lib/postgresql/*/bin; }
as_postgres() { (cd "$E2E_PG_DIR" && runuser -u postgres -- "$@"); }
stop_cluster_postgres() {
  if [ -f "$E2E_PG_DIR/data/postmaster.pid" ]; then
    as_postgres "$(pg_bin)/pg_ctl" -D "$E2E_PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
}
start_cluster_postgres() { # $1: the address to listen on; $2: the pod CIDR allowed in
  local bin; bin=$(pg_bin)
  [ -n "$bin" ] || fail "PostgreSQL is not installed (apt-get install postgresql)"
  stop_cluster_postgres # one an E2E_KEEP=1 run left running
  rm -rf "$E2E_PG_DIR"; mkdir -p "$E2E_PG_DIR"; chown postgres: "$E2E_PG_DIR"; chmod 0700 "$E2E_PG_DIR"
  as_postgres "$bin/initdb" -D "$E2E_PG_DIR/data" -U postgres --auth-host=trust --auth-local=trust >"$ART/postgres-initdb.log" 2>&1 \
    || fail "initdb failed: $(tail -n 5 "$ART/postgres-initdb.log")"
  printf "listen_addresses = '%s'\nport = %s\nunix_socket_directories = ''\n" "$1" "$E2E_PG_PORT" >>"$E2E_PG_DIR/data/postgresql.conf"
  printf 'host all all %s trust\n' "$2" >"$E2E_PG_DIR/data/pg_hba.conf"
  as_postgres "$bin/pg_ctl" -D "$E2E_PG_DIR/data" -l "$E2E_PG_DIR/postgres.log" -w start >/dev/null \
    || fail "PostgreSQL did not start: $(tail -n 5 "$E2E_PG_DIR/postgres.log")"
  PG_STARTED=1
}

# release_volumes deletes the volumes this run's claims got (the class
# keeps them: reclaimPolicy Retain) once their claims are gone and, on the
# local cluster, their directories.
release_volumes() {
  local pv path vdir="${LOCAL_CLUSTER_DIR:-$ROOT/bin/local-cluster}/volumes/"
  for pv in $(k get pv -o jsonpath='{range .items[?(@.spec.storageClassName=="encrypted-ssd")]}{.metadata.name}{"\n"}{end}' 2>/dev/null); do
    path=$(k get pv "$pv" -o jsonpath='{.spec.hostPath.path}' 2>/dev/null || true)
    k delete pv "$pv" --wait=true --timeout=60s >/dev/null 2>&1 || { log "WARN: PersistentVolume $pv not deleted"; continue; }
    case "$path" in "$vdir"pvc-*) rm -rf "$path" ;; esac
  done
}

cleanup() {
  # The exit status: given by a trap that had to run something first, or $?.
  local rc=${1:-$?}
  set +e
  trap - EXIT INT TERM
  if [ "$rc" -ne 0 ]; then FAILED=1; [ -n "$KUBECTL" ] && [ -n "${KUBECONFIG:-}" ] && diagnose; fi
  if [ "${E2E_KEEP:-0}" = 1 ]; then
    log "E2E_KEEP=1: leaving the release, the samples and the cluster as they are (KUBECONFIG=${KUBECONFIG:-})"
  else
    step "clean-up"
    # Samples first, while the operator runs: DossierStores carry a finalizer
    # that only the operator removes.
    k -n wijkteam delete pod e2e-wijkteam-app --ignore-not-found --wait=true --timeout=60s >/dev/null 2>&1
    k -n wijkteam delete deploy e2e-wijkteam-deploy --ignore-not-found --wait=true --timeout=60s >/dev/null 2>&1
    # What the Go suite made, should it have stopped before its own clean-up.
    k -n wijkteam delete pod e2e-net-workload e2e-net-neighbour e2e-egress-app e2e-egress-workload e2e-egress-gateway-probe --ignore-not-found --wait=true --timeout=60s >/dev/null 2>&1
    k -n wijkteam delete sharingagreements -l app.kubernetes.io/part-of=dossierguard-e2e --ignore-not-found >/dev/null 2>&1
    k delete namespace e2e-net-partner e2e-net-expiring e2e-net-other e2e-egress-partner --ignore-not-found --wait=true --timeout=60s >/dev/null 2>&1
    k -n wijkteam delete serviceaccount wijkteam-dossier --ignore-not-found >/dev/null 2>&1
    if [ "$DEMO_DB" = 1 ]; then
      k delete -f test/e2e/demodb/demodb.yaml --ignore-not-found --wait=true --timeout=60s >/dev/null 2>&1
    fi
    if [ "$SAMPLES" = 1 ]; then
      k delete -k config/samples --ignore-not-found --wait=true --timeout=120s >&2 || { log "WARN: samples not deleted in time"; FAILED=1; }
      release_volumes
    fi
    k delete -f test/e2e/storageclass.yaml --ignore-not-found >/dev/null 2>&1
    stop_cluster_postgres
    if [ "$INSTALLED" = 1 ]; then
      "$HELM" uninstall "$RELEASE" -n "$NS" --wait --timeout 120s >&2 || { log "WARN: helm uninstall failed"; FAILED=1; }
      k delete namespace "$NS" --ignore-not-found --wait=true --timeout=120s >/dev/null 2>&1
      # Helm keeps the CRDs on purpose (docs/install.md); they stay.
    fi
    # What this run put beside the release: the logbook's database Secret,
    # and the stores' public keys the operator kept (checked above).
    k -n "$NS" delete secret/dossierguard-logbook-db configmap/dossierguard-audit-trust --ignore-not-found >/dev/null 2>&1
    if [ "$STARTED_CLUSTER" = 1 ]; then
      log "stopping the local cluster (it was started by this run)"
      "$LC" down >"$ART/local-cluster-down.log" 2>&1 || { log "WARN: local-cluster down failed (see $ART/local-cluster-down.log)"; FAILED=1; }
    fi
  fi
  step "end"
  if [ "$rc" -eq 0 ] && [ "$FAILED" = 1 ]; then rc=1; fi
  log "total $(($(date +%s) - T0))s; timings in $ART/timings.txt"
  if [ "$rc" -ne 0 ]; then failures; fi
  if [ "$rc" -eq 0 ]; then log "PASS"; else log "FAILED (exit $rc)"; fi
  exit "$rc"
}
# failures repeats, last, what each failed spec of the Go suites said and
# the order's seed (rerun one order with -ginkgo.seed), so that the end of
# the output says why without the artefacts.
failures() {
  local f
  for f in "$ART"/go-suite*.log; do
    [ -f "$f" ] || continue
    grep -q '\[FAILED\]' "$f" || continue
    log "what failed in $(basename "$f") ($(grep -m1 -o 'Random Seed: [0-9]*' "$f" || echo 'seed unknown')):"
    grep -A12 '^ *\[FAILED\] ' "$f" | head -n 60 | sed 's/^/  /' >&2 || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. cluster -------------------------------------------------------------

step "cluster"
LOCAL_KUBECONFIG=$("$LC" kubeconfig 2>/dev/null | tail -n 1 || true)
if [ -n "${KUBECONFIG:-}" ]; then
  [ -n "$KUBECTL" ] || fail "no kubectl: neither bin/k8s/*/kubectl nor kubectl on PATH"
  if ! k get --raw /readyz >/dev/null 2>&1; then
    fail "KUBECONFIG=$KUBECONFIG is set but its cluster does not answer /readyz; unset KUBECONFIG to use the local cluster"
  fi
  log "using the existing cluster of KUBECONFIG=$KUBECONFIG (no up/down)"
else
  [ "$(id -u)" = 0 ] || fail "the local cluster needs root (sudo hack/e2e.sh), or set KUBECONFIG to an existing cluster"
  lc_status=$("$LC" status 2>/dev/null || true)   # not piped into grep -q: SIGPIPE + pipefail
  if grep -Eq '^kube-apiserver +running' <<<"$lc_status"; then
    log "the local cluster already runs; using it (it will not be stopped)"
    # It enforces NetworkPolicy as it was started: a run asked for the
    # other must not pass (or fail) for the wrong reason.
    enforcing=0
    if grep -Eq '^kube-network-policies +running' <<<"$lc_status"; then enforcing=1; fi
    if [ "$enforcing" != "${LC_NETWORK_POLICIES:-1}" ]; then
      fail "the local cluster runs with NetworkPolicy enforcement $([ "$enforcing" = 1 ] && echo on || echo off), this run asks for LC_NETWORK_POLICIES=${LC_NETWORK_POLICIES:-1}: stop it first (hack/local-cluster.sh down)"
    fi
  else
    log "starting the local cluster (about 30 minutes the first time, while it compiles Kubernetes)"
    STARTED_CLUSTER=1
    "$LC" up >"$ART/local-cluster-up.log" 2>&1 || { tail -n 30 "$ART/local-cluster-up.log" >&2; fail "hack/local-cluster.sh up failed"; }
  fi
  KUBECONFIG=$("$LC" kubeconfig | tail -n 1)
  export KUBECONFIG
  KUBECTL_DIR=$(newest_dir "$ROOT"/bin/k8s/*-linux-amd64)
  KUBECTL=$KUBECTL_DIR/kubectl
  k get --raw /readyz >/dev/null || fail "the local cluster's apiserver is not ready"
fi
k version 2>/dev/null | sed 's/^/  /' >&2 || true
k get nodes -o wide >&2

# --- 2. image ---------------------------------------------------------------

step "make image"
make image >"$ART/make-image.log" 2>&1 || { tail -n 30 "$ART/make-image.log" >&2; fail "make image failed"; }
[ -s "$IMAGE_TAR" ] || fail "$IMAGE_TAR missing after make image"
step "import image"
case "$E2E_IMPORT" in
  auto) if [ "$STARTED_CLUSTER" = 1 ] || [ "$KUBECONFIG" = "$LOCAL_KUBECONFIG" ]; then E2E_IMPORT=1; else E2E_IMPORT=0; fi ;;
esac
if [ "$E2E_IMPORT" = 1 ]; then
  "$LC" import "$IMAGE_TAR" >"$ART/import.log" 2>&1 || { cat "$ART/import.log" >&2; fail "hack/local-cluster.sh import failed"; }
  log "imported $IMAGE_TAR"
else
  log "not importing (E2E_IMPORT=0 or not the local cluster): dossierguard:$IMG_TAG and $APP_IMAGE must already be on the nodes"
fi

# --- 3. Helm install ----------------------------------------------------------

step "make helm"
make helm >"$ART/make-helm.log" 2>&1 || { tail -n 30 "$ART/make-helm.log" >&2; fail "make helm failed"; }
step "helm install"
if "$HELM" status "$RELEASE" -n "$NS" >/dev/null 2>&1; then
  fail "release $RELEASE already exists in $NS: this run would change someone else's install (helm uninstall $RELEASE -n $NS first)"
fi
# The namespace enforces the restricted Pod Security Standard (docs/install.md).
k create namespace "$NS" --dry-run=client -o yaml | k apply -f - >/dev/null
k label namespace "$NS" --overwrite \
  pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/warn=restricted >/dev/null
INSTALLED=1
# The throwaway PostgreSQL on the pod bridge's gateway, when the pods can
# reach that server: the logbook's database, and the retention story's
# when there is no demo database. The logbook gets a database of its own,
# the schema migrated by its owner, and logs in as a role that holds only
# dossierguard_logbook_ingest.
gw=$(ip -4 -o addr show "${LC_BRIDGE:-lc-cni0}" 2>/dev/null | awk '{print $4}' | cut -d/ -f1 | head -n 1)
[ -z "$gw" ] || start_cluster_postgres "$gw" "${LC_POD_CIDR:-10.244.0.0/16}"
logbook_args=()
if [ -n "$gw" ] && [ "${E2E_LOGBOOK:-auto}" != 0 ]; then
  "$(pg_bin)/psql" -X -q -v ON_ERROR_STOP=1 -h "$gw" -p "$E2E_PG_PORT" -U postgres -d postgres -c "CREATE DATABASE logbook" \
    || fail "could not create the logbook's database"
  lb_env() { env PGHOST="$gw" PGPORT="$E2E_PG_PORT" PGDATABASE=logbook PGUSER=postgres PGSSLMODE=disable "$@"; }
  lb_env bin/image/dossierguard logbook migrate >"$ART/logbook-migrate.log" 2>&1 \
    || fail "dossierguard logbook migrate failed: $(tail -n 5 "$ART/logbook-migrate.log")"
  lb_env "$(pg_bin)/psql" -X -q -v ON_ERROR_STOP=1 -c "CREATE ROLE logbook LOGIN IN ROLE dossierguard_logbook_ingest" \
    || fail "could not create the logbook's login role"
  k -n "$NS" create secret generic dossierguard-logbook-db --from-literal=PGHOST="$gw" --from-literal=PGPORT="$E2E_PG_PORT" \
    --from-literal=PGDATABASE=logbook --from-literal=PGUSER=logbook --from-literal=PGPASSWORD=unused --from-literal=PGSSLMODE=disable \
    --dry-run=client -o yaml | k apply -f - >/dev/null
  logbook_args=(--set logbook.enabled=true --set logbook.replicas=1 --set logbook.database.secretName=dossierguard-logbook-db)
  LOGBOOK=1
fi
# Helm creates the chart's CRDs only when they are missing and never
# upgrades them (docs/install.md): a cluster that an earlier run left with
# older CRDs would refuse the samples' newer fields. Apply them first, as an
# upgrade does.
k apply --server-side --force-conflicts -f charts/dossierguard/crds/ >/dev/null || fail "applying the chart's CRDs failed"
# Break-glass (exec, attach, port-forward, debug into a store's pods) for
# one group, which the traffic checks below use.
"$HELM" install "$RELEASE" charts/dossierguard -n "$NS" \
  --set image.tag="$IMG_TAG" --set image.pullPolicy=IfNotPresent \
  --set "webhook.breakGlass.groups={$BREAK_GLASS_GROUP}" "${logbook_args[@]}" >"$ART/helm-install.txt" 2>&1 \
  || { cat "$ART/helm-install.txt" >&2; fail "helm install failed"; }
# The Go suite's install story waits for the rollout, the leader and the
# webhooks' certificates.

# --- 4. the images of the suite's pods ---------------------------------------

# On the local cluster the demo application (test/e2e/demoapp) keeps its
# case files in PostgreSQL (test/e2e/demodb), which the install story runs
# in the store's namespace on the store's own claim; on another cluster, or
# with E2E_APP_IMAGE, the echo server stands in.
step "images for the suite"
# mkimage BINARY TAG PORT TAR: the binary as an image of its own for the
# nodes (as user 65532, exposing PORT), imported.
mkimage() {
  "${LOCAL_CLUSTER_DIR:-$ROOT/bin/local-cluster}/tools/mkimage" -binary "$1" -tag "$2" \
    -user 65532:65532 -expose "$3" -out "$4" >/dev/null || fail "could not build the image $2"
  "$LC" import "$4" >/dev/null 2>&1 || fail "could not import the image $2"
}
if [ -n "$gw" ] && [ -z "${E2E_APP_IMAGE:-}" ]; then
  test/e2e/demodb/image.sh "$ROOT/bin/e2e/demo-postgres.tar" >"$ART/demodb-image.log" 2>&1 \
    || fail "could not build the database's image: $(tail -n 5 "$ART/demodb-image.log")"
  "$LC" import "$ROOT/bin/e2e/demo-postgres.tar" >/dev/null 2>&1 || fail "could not import the database's image"
  DEMO_DB=1
  # The case-management demo app over that database; the Go suite's
  # workload pod runs it (or, without it, the echo server).
  CGO_ENABLED=0 go build -trimpath -o "$ROOT/bin/e2e/demoapp" ./test/e2e/demoapp || fail "could not build the demo app"
  mkimage "$ROOT/bin/e2e/demoapp" local/dossier-app:dev 8080 "$ROOT/bin/e2e/dossier-app.tar"
  APP_IMAGE=local/dossier-app:dev
  DEMO_APP=1
fi
PROBE_IMAGE=${E2E_PROBE_IMAGE:-local/netprobe:dev}
# The egress story's stand-in partner (test/e2e/partner); it sends with the demo app.
PARTNER_IMAGE=${E2E_PARTNER_IMAGE:-local/e2e-partner:dev}
if [ "$E2E_IMPORT" = 1 ]; then
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$ROOT/bin/e2e/netprobe" ./test/e2e/netprobe || fail "could not build test/e2e/netprobe"
  mkimage "$ROOT/bin/e2e/netprobe" "$PROBE_IMAGE" 8080 "$ROOT/bin/e2e/netprobe.tar"
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$ROOT/bin/e2e/partner" ./test/e2e/partner || fail "could not build test/e2e/partner"
  mkimage "$ROOT/bin/e2e/partner" "$PARTNER_IMAGE" 8443 "$ROOT/bin/e2e/partner.tar"
fi

# --- 5. the Go suite (test/e2e): the install, every story -------------------

step "compile the Go suite"
# The install story first (the operator rolled out with two replicas and a
# leader, the webhooks' caBundles, the samples applied and Ready, the
# logbook's keys, the demo database on the store's volume), then the
# stories of docs/e2e.md, each a Ginkgo spec. Their diagnostics and figures
# go to bin/test-artefacts/e2e.
GO_ART=$ROOT/bin/test-artefacts/e2e
rm -rf "$GO_ART"; mkdir -p "$GO_ART"
SUITE=$ROOT/bin/e2e/e2e.test
go test -c -tags e2e -o "$SUITE" ./test/e2e >"$ART/go-suite-build.log" 2>&1 \
  || { tail -n 30 "$ART/go-suite-build.log" >&2; fail "could not compile the Go suite (test/e2e)"; }
netpol_log=${LOCAL_CLUSTER_DIR:-$ROOT/bin/local-cluster}/logs/kube-network-policies.log
[ "$KUBECONFIG" = "$LOCAL_KUBECONFIG" ] && [ -f "$netpol_log" ] || netpol_log=""
# What the stories need to know of this run; make e2e-suite reads it too
# (docs/e2e.md).
host_pg=""
[ "$PG_STARTED" = 0 ] || host_pg="$gw:$E2E_PG_PORT"
cat >"$ROOT/bin/e2e/suite.env" <<ENV
KUBECONFIG=$KUBECONFIG
E2E_OPERATOR_NAMESPACE=$NS
E2E_RELEASE=$RELEASE
E2E_PROBE_IMAGE=$PROBE_IMAGE
E2E_PARTNER_IMAGE=$PARTNER_IMAGE
E2E_DEMO_APP_IMAGE=${E2E_DEMO_APP_IMAGE:-$([ "${DEMO_APP:-0}" = 1 ] && echo "$APP_IMAGE")}
E2E_EGRESS_WINDOW=${E2E_EGRESS_WINDOW:-150}
E2E_BREAK_GLASS_GROUP=$BREAK_GLASS_GROUP
E2E_NETPOL_LOG=$netpol_log
E2E_TIMEOUT=$TIMEOUT
E2E_APP_IMAGE=$APP_IMAGE
E2E_DEMO_APP=$DEMO_APP
E2E_LOGBOOK=$LOGBOOK
E2E_HOST_PG=$host_pg
E2E_WINDOW_SECONDS=${E2E_WINDOW_SECONDS:-150}
E2E_POD_FSGROUP=${E2E_POD_FSGROUP:-}
E2E_CLI=$ROOT/bin/image/dossierguard
E2E_HELM=$HELM
E2E_KUBECTL=$KUBECTL
ENV
# go_suite NAME ARGS...: the Go suite with these Ginkgo flags, run where
# go test runs it (its package's folder), its output in $ART/NAME.log and
# its JUnit report in $GO_ART/NAME.xml.
go_suite() {
  local name=$1 rc
  shift
  set +e
  # shellcheck source=/dev/null # written above
  (set -a; . "$ROOT/bin/e2e/suite.env"; set +a; export E2E_ARTEFACTS="$GO_ART"; cd "$ROOT/test/e2e" &&
    "$SUITE" -test.v -test.count=1 -test.timeout 40m -ginkgo.v -ginkgo.no-color -ginkgo.junit-report="$GO_ART/$name.xml" "$@") \
    2>&1 | tee "$ART/$name.log" >&2
  rc=${PIPESTATUS[0]}
  set -e
  return "$rc"
}
# The install story runs whatever E2E_FOCUS picks: every story builds on it.
# Ginkgo matches a focus against the suite's name and the spec's text
# ("dossierguard end to end Install rolls out ..."). A dry run checks that
# the install story and at least one story of E2E_FOCUS are picked.
go_focus=()
if [ -n "${E2E_FOCUS:-}" ]; then
  go_focus=(-ginkgo.focus "$E2E_FOCUS" -ginkgo.focus '^dossierguard end to end Install ')
  picked=$(cd "$ROOT/test/e2e" && "$SUITE" -ginkgo.dry-run -ginkgo.no-color -ginkgo.v -ginkgo.label-filter='!deletion' "${go_focus[@]}" 2>&1) \
    || fail "dry run of the Go suite with E2E_FOCUS: $(tail -n 5 <<<"$picked")"
  grep -q '^Install rolls out ' <<<"$picked" || fail "E2E_FOCUS: the install story is not picked (is the suite still named 'dossierguard end to end'?)"
  grep -v '^Install ' <<<"$picked" | grep -q '\[[a-z, -]*\]$' || fail "E2E_FOCUS=$E2E_FOCUS picks no story; Ginkgo matches it against 'dossierguard end to end <story> <spec>'"
fi
step "go suite (test/e2e)"
# From here the clean-up removes the samples and the demo database, which
# the install story applies.
SAMPLES=1
# Every story but the deletion, which removes the installation (below).
go_suite go-suite -ginkgo.label-filter='!deletion' "${go_focus[@]}" \
  || fail "the Go suite failed; its log is $ART/go-suite.log, diagnostics under $GO_ART"
[ ! -f "$GO_ART/figures.txt" ] || { log "figures:"; sed 's/^/  /' "$GO_ART/figures.txt" >&2; }

if [ "${E2E_KEEP:-0}" = 1 ]; then
  # The deletion story below would remove what E2E_KEEP=1 keeps.
  log "E2E_KEEP=1: not running the deletion story, so that the install stays for inspection (and make e2e-suite)"
  step "checks done"
  log "all checks run passed; artefacts in $ART"
  exit 0
fi

# --- 6. deletion and uninstall leave only the retained dossier volumes ------

step "deletion leaves only the retained volumes"
go_suite go-suite-deletion -ginkgo.label-filter=deletion \
  || fail "the deletion story failed; its log is $ART/go-suite-deletion.log, diagnostics under $GO_ART"
"$HELM" status "$RELEASE" -n "$NS" >/dev/null 2>&1 || INSTALLED=0

step "checks done"
log "all checks passed; artefacts in $ART"
