#!/usr/bin/env bash
# End-to-end check of dossierguard on a real cluster (docs/e2e.md).
#
#   sudo hack/e2e.sh                      # start the local cluster, test, stop it
#   KUBECONFIG=~/.kube/test hack/e2e.sh   # use that cluster; never up/down
#
# Steps: cluster, image (make image + import), Helm install (2 replicas,
# leader election), StorageClass + config/samples until Ready, the webhook
# injecting the audit proxy into a real pod, the bash stories, the Go suite
# (test/e2e: the network cases), deletion and clean-up. Exits non-zero on the
# first failure, after printing the operator's logs and the relevant objects.
#
# Settings (environment):
#   E2E_IMPORT=auto|1|0   import bin/image/dossierguard.tar into the local
#                         cluster (auto: when it is the local cluster)
#   E2E_APP_IMAGE         the workload pod's app image (local/echo:dev)
#   E2E_KEEP=1            leave everything installed (and the cluster up)
#   E2E_TIMEOUT           seconds for each wait (180)
#   E2E_POD_READY=0       do not fail when the injected pod is not Ready
#   E2E_POD_FSGROUP=N     give the workload pod fsGroup N (none by default)
#   E2E_WINDOW_SECONDS    how long the sharing step's window agreement is open (150)
#   E2E_LOGBOOK=auto|0    install the logbook on the throwaway PostgreSQL and
#                         check the chains survive a pod deletion (auto: when
#                         the local pod bridge is there for the database)
#   E2E_FOCUS             run only the Go suite's stories matching this
#                         regular expression (-ginkgo.focus)
#   E2E_PROBE_IMAGE       the Go suite's probe image (local/netprobe:dev, built
#                         and imported here on the local cluster)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

NS=dossierguard-system
RELEASE=dossierguard
DEPLOY=dossierguard-manager
WEBHOOK=dossierguard-sidecar-injector
LEASE=dossierguard.privacy.dossierguard.io
ART=$ROOT/bin/e2e/artefacts
HELM=$ROOT/bin/helm
IMAGE_TAR=$ROOT/bin/image/dossierguard.tar
IMG_TAG=${E2E_IMAGE_TAG:-dev}
APP_IMAGE=${E2E_APP_IMAGE:-local/echo:dev}
BREAK_GLASS_GROUP=dossierguard:e2e-break-glass
# A responder in the break-glass group (the admin impersonating them).
responder=(--as=e2e-responder --as-group="$BREAK_GLASS_GROUP" --as-group=system:masters)
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
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; } # Unix seconds as RFC 3339

# kubectl of the cluster's version when cached (bin/k8s), else from PATH.
KUBECTL_DIR=$(ls -d "$ROOT"/bin/k8s/*-linux-amd64 2>/dev/null | sort -V | tail -n 1 || true)
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
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
as_postgres() { (cd "$E2E_PG_DIR" && runuser -u postgres -- "$@"); }
stop_cluster_postgres() {
  if [ -f "$E2E_PG_DIR/data/postmaster.pid" ]; then
    as_postgres "$(pg_bin)/pg_ctl" -D "$E2E_PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
}
start_cluster_postgres() { # $1: the address to listen on; $2: the pod CIDR allowed in
  local bin; bin=$(pg_bin)
  [ -n "$bin" ] || fail "PostgreSQL is not installed (apt-get install postgresql)"
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
  if [ "$rc" -eq 0 ]; then log "PASS"; else log "FAILED (exit $rc)"; fi
  exit "$rc"
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
  else
    log "starting the local cluster (about 30 minutes the first time, while it compiles Kubernetes)"
    STARTED_CLUSTER=1
    "$LC" up >"$ART/local-cluster-up.log" 2>&1 || { tail -n 30 "$ART/local-cluster-up.log" >&2; fail "hack/local-cluster.sh up failed"; }
  fi
  KUBECONFIG=$("$LC" kubeconfig | tail -n 1)
  export KUBECONFIG
  KUBECTL_DIR=$(ls -d "$ROOT"/bin/k8s/*-linux-amd64 | sort -V | tail -n 1)
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
# The logbook on the throwaway PostgreSQL (a database of its own, the schema
# migrated by its owner, the logbook logging in as a role that holds only
# dossierguard_logbook_ingest), when the pods can reach that server.
gw=$(ip -4 -o addr show "${LC_BRIDGE:-lc-cni0}" 2>/dev/null | awk '{print $4}' | cut -d/ -f1 | head -n 1)
logbook_args=()
if [ -n "$gw" ] && [ "${E2E_LOGBOOK:-auto}" != 0 ]; then
  start_cluster_postgres "$gw" "${LC_POD_CIDR:-10.244.0.0/16}"
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
log "waiting for deploy/$DEPLOY to be Available with 2 ready replicas"
k -n "$NS" rollout status "deploy/$DEPLOY" --timeout="${TIMEOUT}s" >&2 || fail "deploy/$DEPLOY did not roll out"
k -n "$NS" wait --for=condition=Available "deploy/$DEPLOY" --timeout="${TIMEOUT}s" >/dev/null || fail "deploy/$DEPLOY is not Available"
ready=$(k -n "$NS" get deploy "$DEPLOY" -o jsonpath='{.status.readyReplicas}')
[ "$ready" = 2 ] || fail "deploy/$DEPLOY has ${ready:-0} ready replicas, want 2"
holder=""
for _ in $(seq 1 "$TIMEOUT"); do
  holder=$(k -n "$NS" get lease "$LEASE" -o jsonpath='{.spec.holderIdentity}' 2>/dev/null || true)
  [ -n "$holder" ] && break
  sleep 1
done
[ -n "$holder" ] || fail "no leader: Lease $NS/$LEASE has no holder"
log "leader: $holder"
# The operator fills the webhook's caBundle; until then the API server cannot
# call it and labelled pods are refused (failurePolicy Fail).
for _ in $(seq 1 "$TIMEOUT"); do
  ca=$(k get mutatingwebhookconfiguration "$WEBHOOK" -o jsonpath='{.webhooks[0].clientConfig.caBundle}' 2>/dev/null || true)
  [ -n "$ca" ] && break
  sleep 1
done
[ -n "$ca" ] || fail "mutatingwebhookconfiguration $WEBHOOK has no caBundle"
for _ in $(seq 1 "$TIMEOUT"); do
  vca=$(k get validatingwebhookconfiguration dossierguard-pod-guard -o jsonpath='{.webhooks[*].clientConfig.caBundle}' 2>/dev/null || true)
  [ "$(wc -w <<<"$vca")" = 2 ] && break
  sleep 1
done
[ "$(wc -w <<<"$vca")" = 2 ] || fail "validatingwebhookconfiguration dossierguard-pod-guard has no caBundle"
k -n "$NS" get secret dossierguard-webhook-tls >/dev/null || fail "Secret $NS/dossierguard-webhook-tls missing"
k -n "$NS" get deploy,pods,lease -o wide >"$ART/operator.txt" 2>&1

# --- 4. samples ---------------------------------------------------------------

step "samples"
k apply -f test/e2e/storageclass.yaml >&2
SAMPLES=1
k apply -k config/samples >&2
kinds="dossierstores.privacy.dossierguard.io accessroles.privacy.dossierguard.io sharingagreements.privacy.dossierguard.io datasubjectrequests.privacy.dossierguard.io"
for kind in $kinds; do
  log "waiting for every $kind to be Ready"
  if ! k wait --for=condition=Ready "$kind" --all -A --timeout="${TIMEOUT}s" >&2; then
    k get "$kind" -A -o wide >&2
    fail "not every $kind became Ready"
  fi
done
# Every store's encryption must rest on the attestation of encrypted-ssd.
while read -r ns name enc; do
  [ "$enc" = Attested ] || fail "DossierStore $ns/$name: encryption $enc, want Attested (StorageClass encrypted-ssd)"
done < <(k get dossierstores -A -o jsonpath='{range .items[*]}{.metadata.namespace} {.metadata.name} {.status.encryption}{"\n"}{end}')
k get privacy -A -o wide >"$ART/privacy.txt"
k get dossierstores,accessroles,sharingagreements,retentionpolicies -A \
  -o custom-columns='KIND:.kind,NAMESPACE:.metadata.namespace,NAME:.metadata.name,READY:.status.conditions[?(@.type=="Ready")].status,REASON:.status.conditions[?(@.type=="Ready")].reason' \
  >"$ART/ready-reasons.txt"
cat "$ART/ready-reasons.txt" >&2
if [ "$LOGBOOK" = 1 ]; then
  # The operator keeps every store's public checkpoint key in ConfigMap
  # dossierguard-audit-trust, the logbook's --trust-key-dir. The logbook
  # is restarted once they are all there, so that it holds them before any
  # proxy signs a checkpoint (rather than after the kubelet's refresh of the
  # volume and the logbook's next reload).
  want=$(k get dossierstores -A -o jsonpath='{range .items[*]}{.metadata.namespace}_{.metadata.name}_{"\n"}{end}' | sort)
  kept=""
  for _ in $(seq 1 "$TIMEOUT"); do
    kept=$(k -n "$NS" get configmap dossierguard-audit-trust -o go-template='{{range $k, $v := .data}}{{$k}}{{"\n"}}{{end}}' 2>/dev/null \
      | sed 's/[^_]*\.pem$//' | sort -u || true)
    [ "$kept" = "$want" ] && break
    sleep 1
  done
  [ "$kept" = "$want" ] || fail "ConfigMap $NS/dossierguard-audit-trust keeps keys of '$(echo $kept)', want one of each store: $(echo $want)"
  k -n "$NS" rollout restart deploy/dossierguard-logbook >/dev/null
  k -n "$NS" rollout status deploy/dossierguard-logbook --timeout="${TIMEOUT}s" >&2 || fail "deploy/dossierguard-logbook did not roll out"
  log "logbook Ready on PostgreSQL, with the checkpoint keys of the $(wc -l <<<"$want") stores from ConfigMap dossierguard-audit-trust"
  # The injected proxies find the logbook by its Service's name
  # (--logbook-url), through the cluster's DNS.
fi

# --- 4b. the demo application's database on the store's volume, by DNS ----

# dns_in_pod POD NAME [want-failure]: look NAME up in pod POD of namespace
# wijkteam (local/echo:dev -resolve, the pod's resolv.conf and search
# domains); its addresses on stdout, or with want-failure its error.
dns_in_pod() {
  local pod=$1 phase=""
  shift
  cat <<YAML | k apply -f - >/dev/null
apiVersion: v1
kind: Pod
metadata: {name: $pod, namespace: wijkteam, labels: {app.kubernetes.io/part-of: dossierguard-e2e}}
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
  containers:
    - name: resolve
      image: local/echo:dev
      imagePullPolicy: Never
      command: [/echo, -resolve, "$1", -timeout, 5s]
      securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
YAML
  for _ in $(seq 1 60); do
    phase=$(k -n wijkteam get pod "$pod" -o jsonpath='{.status.phase}' 2>/dev/null || true)
    case $phase in Succeeded | Failed) break ;; esac
    sleep 1
  done
  k -n wijkteam logs "$pod" >"$ART/dns-$pod.log" 2>&1 || true
  k -n wijkteam delete pod "$pod" --wait=false >/dev/null 2>&1 || true
  case "$phase:${2:-}" in
    Succeeded:) cat "$ART/dns-$pod.log" ;;
    Failed:want-failure) cat "$ART/dns-$pod.log" ;;
    *) fail "looking up $1 in pod $pod: phase '$phase', want $([ -n "${2:-}" ] && echo Failed || echo Succeeded): $(head -c 300 "$ART/dns-$pod.log")" ;;
  esac
}

# On the local cluster the demo application (test/e2e/demoapp) keeps its
# case files in PostgreSQL, which runs in the store's namespace on the
# store's own claim; on another cluster the echo server stands in.
gw=$(ip -4 -o addr show "${LC_BRIDGE:-lc-cni0}" 2>/dev/null | awk '{print $4}' | cut -d/ -f1 | head -n 1)
if [ -n "$gw" ] && [ -z "${E2E_APP_IMAGE:-}" ]; then
  step "demo database on the store's volume"
  test/e2e/demodb/image.sh "$ROOT/bin/e2e/demo-postgres.tar" >"$ART/demodb-image.log" 2>&1 \
    || fail "could not build the database's image: $(tail -n 5 "$ART/demodb-image.log")"
  "$LC" import "$ROOT/bin/e2e/demo-postgres.tar" >/dev/null 2>&1 || fail "could not import the database's image"
  DB_NAME=wijkteam-db.wijkteam.svc.cluster.local
  DB_PASSWORD=$(openssl rand -hex 24)
  k -n wijkteam create secret generic wijkteam-db-credentials --from-literal=host="$DB_NAME" --from-literal=port=5432 \
    --from-literal=dbname=postgres --from-literal=user=postgres --from-literal=password="$DB_PASSWORD" --from-literal=sslmode=disable >/dev/null
  # The workload may reach its database: a declared dependency, which the
  # store's isolation policy admits (on 5432, to these pods only).
  k -n wijkteam patch dossierstore wijkteam-dossiers --type=merge -p \
    '{"spec":{"workload":{"dependencies":[{"name":"database","podSelector":{"matchLabels":{"app.kubernetes.io/name":"wijkteam-db"}},"ports":[{"port":5432}]}]}}}' >/dev/null \
    || fail "could not declare the database as the store's dependency"
  k apply -f test/e2e/demodb/demodb.yaml >&2
  DEMO_DB=1
  k -n wijkteam rollout status deploy/wijkteam-db --timeout="${TIMEOUT}s" >&2 \
    || fail "the database did not start on the store's volume: $(k -n wijkteam describe pvc wijkteam-dossiers-dossiers | tail -n 5)"
  # The store's claim bound on the attested class, to a volume the
  # provisioner made, and the database's files are on it.
  claim=$(k -n wijkteam get pvc wijkteam-dossiers-dossiers -o jsonpath='{.status.phase} {.spec.storageClassName} {.spec.volumeName}')
  read -r phase class pv <<<"$claim"
  [ "$phase" = Bound ] && [ "$class" = encrypted-ssd ] && [ -n "$pv" ] \
    || fail "PersistentVolumeClaim wijkteam/wijkteam-dossiers-dossiers: phase, class, volume = '$claim', want Bound on encrypted-ssd"
  pvinfo=$(k get pv "$pv" -o jsonpath='{.spec.storageClassName} {.metadata.annotations.pv\.kubernetes\.io/provisioned-by} {.spec.hostPath.path}')
  read -r pvclass by path <<<"$pvinfo"
  [ "$pvclass" = encrypted-ssd ] && [ "$by" = rancher.io/local-path ] && [ -n "$path" ] \
    || fail "PersistentVolume $pv: class, provisioned-by, path = '$pvinfo', want encrypted-ssd, rancher.io/local-path and a path"
  [ -s "$path/pgdata/PG_VERSION" ] || fail "the database's files are not on the store's volume ($path/pgdata/PG_VERSION)"
  enc=$(k -n wijkteam get dossierstore wijkteam-dossiers -o jsonpath='{.status.encryption}')
  [ "$enc" = Attested ] || fail "DossierStore wijkteam/wijkteam-dossiers: encryption $enc after its claim bound, want Attested"
  log "claim wijkteam-dossiers-dossiers Bound on encrypted-ssd (Attested) to $pv ($by, $path); PostgreSQL $(cat "$path/pgdata/PG_VERSION") runs on it"
  # Names resolve in a pod through the cluster DNS; names outside the
  # cluster do not (no forwarding).
  DB_HOST=$(k -n wijkteam get svc wijkteam-db -o jsonpath='{.spec.clusterIP}')
  got=$(dns_in_pod e2e-dns-full "$DB_NAME")
  [ "$got" = "$DB_HOST" ] || fail "in a pod $DB_NAME resolved to '$got', want the Service's $DB_HOST"
  got=$(dns_in_pod e2e-dns-short wijkteam-db)
  [ "$got" = "$DB_HOST" ] || fail "in a pod of wijkteam the short name wijkteam-db resolved to '$got', want $DB_HOST (search domains)"
  got=$(dns_in_pod e2e-dns-outside dossierguard.example. want-failure)
  log "in a pod: $DB_NAME and wijkteam-db -> $DB_HOST; dossierguard.example. does not resolve ($(tr -d '\n' <<<"$got" | head -c 120))"
  demo_psql() { PGPASSWORD="$DB_PASSWORD" "$(pg_bin)/psql" -X -q -v ON_ERROR_STOP=1 -h "$DB_HOST" -p 5432 -U postgres -d postgres "$@"; }
  demo_psql -At -c 'SELECT 1' >/dev/null || fail "the node cannot reach the database at $DB_HOST:5432 with its password"
fi

# --- 5. the webhook on a real pod --------------------------------------------

step "webhook"
# Fails closed: a pod labelled for a store that does not exist is refused.
if out=$(k -n wijkteam run e2e-no-store --image="$APP_IMAGE" --image-pull-policy=Never --restart=Never \
    --labels=privacy.dossierguard.io/store=does-not-exist 2>&1); then
  k -n wijkteam delete pod e2e-no-store --ignore-not-found >/dev/null
  fail "a pod labelled for a missing DossierStore was admitted: $out"
fi
echo "$out" | grep -q 'does not exist' || fail "unexpected refusal for a missing store: $out"
log "pod for a missing store refused: ${out#*: }"

# The case-management demo app (test/e2e/demoapp) over the database above.
if [ "$DEMO_DB" = 1 ]; then
  CGO_ENABLED=0 go build -trimpath -o "$ROOT/bin/e2e/demoapp" ./test/e2e/demoapp || fail "could not build the demo app"
  "${LOCAL_CLUSTER_DIR:-$ROOT/bin/local-cluster}/tools/mkimage" -binary "$ROOT/bin/e2e/demoapp" -tag local/dossier-app:dev \
    -user 65532:65532 -expose 8080 -out "$ROOT/bin/e2e/dossier-app.tar" >/dev/null || fail "could not build the demo app's image"
  "$LC" import "$ROOT/bin/e2e/dossier-app.tar" >/dev/null 2>&1 || fail "could not import the demo app's image"
  APP_IMAGE=local/dossier-app:dev
  DEMO_APP=1
fi

fsgroup_line=""
[ -z "${E2E_POD_FSGROUP:-}" ] || fsgroup_line="    fsGroup: $E2E_POD_FSGROUP"
sed -e "s|APP_IMAGE|$APP_IMAGE|" -e "s|^    # FSGROUP.*|$fsgroup_line|" test/e2e/wijkteam-app.yaml \
  | k apply -f - >&2
names=$(k -n wijkteam get pod e2e-wijkteam-app \
  -o jsonpath='{range .spec.initContainers[*]}{.name}{"\n"}{end}{range .spec.containers[*]}{.name}{"\n"}{end}')
n=$(printf '%s\n' "$names" | grep -cx audit-proxy || true)
[ "$n" = 1 ] || fail "pod wijkteam/e2e-wijkteam-app has $n audit-proxy containers, want 1 (containers: $(echo $names))"
ann=$(k -n wijkteam get pod e2e-wijkteam-app -o jsonpath='{.metadata.annotations.privacy\.dossierguard\.io/audit-proxy}')
[ "$ann" = injected ] || fail "annotation privacy.dossierguard.io/audit-proxy is '$ann', want injected"
where=container
printf '%s\n' "$(k -n wijkteam get pod e2e-wijkteam-app -o jsonpath='{range .spec.initContainers[*]}{.name}{"\n"}{end}')" | grep -qx audit-proxy && where="native sidecar (init container, restartPolicy Always)"
log "audit-proxy injected once, as a $where"
k -n wijkteam get pod e2e-wijkteam-app -o yaml >"$ART/wijkteam-app.yaml"

# A decoy: a pod of the store with its own container named audit-proxy is
# refused; a name is no proof of the audit proxy.
if out=$(cat <<YAML | k apply -f - 2>&1
apiVersion: v1
kind: Pod
metadata:
  name: e2e-decoy
  namespace: wijkteam
  labels: {app.kubernetes.io/name: wijkteam-dossier, app.kubernetes.io/part-of: dossierguard-e2e}
spec:
  serviceAccountName: wijkteam-dossier
  containers:
    - {name: app, image: $APP_IMAGE, imagePullPolicy: Never}
    - {name: audit-proxy, image: $APP_IMAGE, imagePullPolicy: Never}
YAML
); then
  k -n wijkteam delete pod e2e-decoy --ignore-not-found >/dev/null
  fail "a workload pod with a decoy audit-proxy container was admitted: $out"
fi
echo "$out" | grep -q 'audit-proxy' || fail "unexpected refusal of the decoy pod: $out"
log "decoy audit-proxy container refused: $(echo "${out#*denied the request: }" | head -c 200)"
log "waiting for the pod to be Ready (app + audit proxy)"
pod_ready=0; why=""
for _ in $(seq 1 "$TIMEOUT"); do
  if [ "$(k -n wijkteam get pod e2e-wijkteam-app -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]; then
    pod_ready=1; break
  fi
  restarts=$(k -n wijkteam get pod e2e-wijkteam-app -o jsonpath='{range .status.initContainerStatuses[?(@.name=="audit-proxy")]}{.restartCount}{end}{range .status.containerStatuses[?(@.name=="audit-proxy")]}{.restartCount}{end}')
  if [ "${restarts:-0}" -ge 2 ]; then why="the audit-proxy container restarted $restarts times"; break; fi
  sleep 1
done
k -n wijkteam logs e2e-wijkteam-app -c audit-proxy >"$ART/audit-proxy.log" 2>&1 || true
if [ "$pod_ready" = 1 ]; then
  log "pod Ready: $(k -n wijkteam get pod e2e-wijkteam-app -o jsonpath='{range .status.initContainerStatuses[*]}{.name}={.ready} {end}{range .status.containerStatuses[*]}{.name}={.ready} {end}')"
else
  why=${why:-"not Ready within ${TIMEOUT}s"}
  log "audit-proxy log:"; sed 's/^/  | /' "$ART/audit-proxy.log" | tail -n 20 >&2
  if [ "${E2E_POD_READY:-1}" = 0 ]; then
    log "WARN: the injected pod did not become Ready: $why (E2E_POD_READY=0: not a failure)"
  else
    fail "the injected pod wijkteam/e2e-wijkteam-app did not become Ready: $why"
  fi
fi

# --- 6. real traffic through the audit proxy, and its audit log -------------

# proxy_port_forward LOG [POD]: the break-glass responder's kubectl
# port-forward to the proxy port of POD (e2e-wijkteam-app) on 127.0.0.1:$PF_PORT (output in
# $ART/LOG), stopped with the run, once the proxy answers over TLS.
proxy_port_forward() {
  # kubectl itself in the background (not the k function, a subshell), so
  # that PF_PID is the port-forward and killing it frees the port.
  "$KUBECTL" "${responder[@]}" -n wijkteam port-forward "pod/${2:-e2e-wijkteam-app}" "$PF_PORT:8443" >"$ART/$1" 2>&1 &
  PF_PID=$!
  # Stop the port-forward too; hand cleanup the exit status (set -e is on,
  # so nothing in the trap may fail before it).
  trap 'rc=$?; kill $PF_PID 2>/dev/null || true; cleanup "$rc"' EXIT
  for _ in $(seq 1 40); do
    curl -s -o /dev/null --cacert "$ART/proxy-ca.crt" "https://127.0.0.1:$PF_PORT/" && break
    sleep 0.25
  done
}

if [ "$pod_ready" = 1 ]; then
  step "debug and port-forward"
  # kubectl debug into a store's pod reaches the application behind the
  # proxy: refused.
  if out=$(k -n wijkteam debug e2e-wijkteam-app --image="$APP_IMAGE" --image-pull-policy=Never --target=app -c e2e-debug -- true 2>&1); then
    fail "kubectl debug into a workload pod was admitted: $out"
  fi
  echo "$out" | grep -q 'break-glass' || fail "unexpected refusal of kubectl debug: $out"
  log "kubectl debug refused: $(echo "${out#*denied the request: }" | head -c 200)"
  PF_PORT=${E2E_PF_PORT:-18443}
  if timeout 20 "$KUBECTL" -n wijkteam port-forward pod/e2e-wijkteam-app "$PF_PORT:8443" >"$ART/port-forward-refused.log" 2>&1; then
    fail "kubectl port-forward without break-glass was admitted"
  fi
  grep -Eq 'break-glass|denied the request|Forbidden' "$ART/port-forward-refused.log" || fail "unexpected port-forward failure: $(head -c 300 "$ART/port-forward-refused.log")"
  log "kubectl port-forward without break-glass refused"
  # The checks below enter through port-forward under break-glass: a member
  # of the group gives a justification and a window on the pod.
  k "${responder[@]}" -n wijkteam annotate pod e2e-wijkteam-app --overwrite \
    "privacy.dossierguard.io/break-glass-justification=E2E traffic checks through the audit proxy" \
    "privacy.dossierguard.io/break-glass-until=$(date -u -d '+20 min' +%Y-%m-%dT%H:%M:%SZ)" >/dev/null \
    || fail "the break-glass responder could not open a window on the pod"

  step "traffic through the audit proxy"
  # kubectl port-forward enters the pod from 127.0.0.1: the address the
  # wijkteam store trusts as its authenticating proxy (oauth2-proxy in the
  # same pod), so the identity headers below are accepted. Everything stays
  # on this machine.
  # The proxy serves TLS with the store's certificate; clients trust the
  # store's published bundle.
  k -n wijkteam get configmap wijkteam-dossiers-proxy-ca -o jsonpath='{.data.ca\.crt}' >"$ART/proxy-ca.crt"
  [ -s "$ART/proxy-ca.crt" ] || fail "ConfigMap wijkteam/wijkteam-dossiers-proxy-ca has no ca.crt"
  proxy_port_forward port-forward.log
  base="https://127.0.0.1:$PF_PORT/api/dossiers/D-1001"
  req() { local name=$1; shift; curl -s --cacert "$ART/proxy-ca.crt" -o "$ART/$name.body" -w '%{http_code}' "$@"; }
  # Plain HTTP reaches no application.
  plain=$(curl -s -o "$ART/plain.body" -w '%{http_code}' "http://127.0.0.1:$PF_PORT/api/dossiers/D-1001/decisions" || true)
  [ "$plain" = 400 ] || fail "plain HTTP to the proxy got HTTP $plain, want 400 (it serves TLS only)"
  subject=$(openssl s_client -connect "127.0.0.1:$PF_PORT" -servername 127.0.0.1 -CAfile "$ART/proxy-ca.crt" -verify_return_error </dev/null 2>/dev/null \
    | openssl x509 -noout -subject 2>/dev/null || true)
  [ -n "$subject" ] || fail "the proxy's TLS certificate does not verify against the store's bundle"
  log "the proxy serves TLS ($subject), verified with the store's trust bundle; plain HTTP gets 400"
  consulent=(-H 'X-Forwarded-User: consulent@voorbeeldstad.nl' -H 'X-Forwarded-Groups: wijkteam-consulenten')
  # Role "beschikkingen" grants identity, bsn, contact and decisions.
  code=$(req allowed "${consulent[@]}" "$base/decisions")
  [ "$code" = 200 ] || fail "a consulent reading decisions got HTTP $code, want 200 ($(head -c 300 "$ART/allowed.body"))"
  if [ "${DEMO_APP:-0}" = 1 ]; then
    grep -q 'Wmo-beschikking' "$ART/allowed.body" || fail "the decisions did not come from the demo app's database: $(head -c 300 "$ART/allowed.body")"
  fi
  # Route read-dossier also touches "request", which that role lacks.
  code=$(req denied "${consulent[@]}" "$base")
  [ "$code" = 403 ] || fail "a consulent reading the request got HTTP $code, want 403"
  grep -q '"request"' "$ART/denied.body" || fail "the 403 problem body does not name the missing category: $(head -c 300 "$ART/denied.body")"
  code=$(req anonymous "$base/decisions")
  [ "$code" = 401 ] || fail "a call without identity got HTTP $code, want 401"
  # Identity headers from anyone but the trusted address are ignored; here
  # they come through the trusted path, so a forged group is the test:
  code=$(req forged -H 'X-Forwarded-User: stranger' -H 'X-Forwarded-Groups: not-a-group' "$base/decisions")
  [ "$code" = 403 ] || fail "a user without a role got HTTP $code, want 403"
  kill $PF_PID 2>/dev/null || true; wait $PF_PID 2>/dev/null || true
  log "200 for a granted category, 403 (problem body names \"request\") for a missing one, 401 without identity, 403 without a role"
  # The break-glass port-forward is recorded on the pod, without the person.
  bg=$(k -n wijkteam get events --field-selector involvedObject.name=e2e-wijkteam-app,reason=BreakGlassAccess -o jsonpath='{range .items[*]}{.message}{"\n"}{end}')
  echo "$bg" | grep -q "portforward admitted under group $BREAK_GLASS_GROUP" || fail "no BreakGlassAccess event for the port-forward: '$bg'"
  if echo "$bg" | grep -q 'e2e-responder'; then fail "the BreakGlassAccess event names the person: $bg"; fi
  log "break-glass recorded: $(echo "$bg" | head -n 1)"

  step "audit verify"
  sleep 1 # completion events are written just after the response
  k -n wijkteam logs e2e-wijkteam-app -c audit-proxy >"$ART/audit-proxy.log" 2>&1
  grep '^{"v":1,"type":' "$ART/audit-proxy.log" >"$ART/audit.jsonl" || true
  events=$(grep -c '"type":"event"' "$ART/audit.jsonl" || true)
  [ "${events:-0}" -ge 5 ] || fail "the audit log has ${events:-0} events, want at least 5 (one per denial, two per allowed request)"
  grep -q '"actor":"consulent@voorbeeldstad.nl".*"outcome":"allowed"' "$ART/audit.jsonl" || fail "no allowed event for the consulent"
  grep -q '"outcome":"denied"' "$ART/audit.jsonl" || fail "no denied event"
  if grep -q 'D-1001' "$ART/audit.jsonl"; then fail "the audit log holds the raw dossier id; it must be pseudonymised"; fi
  k -n wijkteam get secret wijkteam-dossiers-audit-signing -o jsonpath='{.data.signing-1\.pub}' | base64 -d >"$ART/signing.pub"
  verify=(bin/image/dossierguard audit verify --public-key "$ART/signing.pub" --allow-unsigned-tail)
  "${verify[@]}" "$ART/audit.jsonl" >"$ART/verify.txt" 2>&1 || fail "audit verify rejected the proxy's log: $(cat "$ART/verify.txt")"
  log "$(cat "$ART/verify.txt")"
  # Edit one event: verification must fail, naming that line's sequence number.
  line=$(grep -n '"actor":"consulent@voorbeeldstad.nl"' "$ART/audit.jsonl" | head -n 1 | cut -d: -f1)
  seq=$(sed -n "${line}p" "$ART/audit.jsonl" | sed 's/.*"seq":\([0-9]*\).*/\1/')
  sed "${line}s/consulent@voorbeeldstad.nl/somebody-else/" "$ART/audit.jsonl" >"$ART/audit-edited.jsonl"
  set +e
  "${verify[@]}" "$ART/audit-edited.jsonl" >"$ART/verify-edited.txt" 2>&1
  rc=$?
  set -e
  [ "$rc" = 1 ] || fail "audit verify of an edited log exited $rc, want 1: $(cat "$ART/verify-edited.txt")"
  grep -q "BROKEN at seq $seq: edited" "$ART/verify-edited.txt" || fail "audit verify did not report the edit at seq $seq: $(cat "$ART/verify-edited.txt")"
  log "after editing seq $seq: $(cat "$ART/verify-edited.txt")"
fi

# --- 6b. a partner: consent per dossier, withdrawn; a window that closes ----

if [ "$pod_ready" = 1 ] && [ "${DEMO_APP:-0}" = 1 ]; then
  step "sharing: consent per dossier and a closing window"
  # The demo app is the store's consent source (spec.audit.consentURL): the
  # families of D-1001 (A) and D-1002 (B) signed the school's consent form.
  pg_consent() { demo_psql "$@"; }
  pg_consent -c "INSERT INTO consents (dossier, agreement) VALUES ('D-1001', 'e2e-school'), ('D-1002', 'e2e-school')" \
    || fail "could not record the consents at the demo app"
  # The window agreement must reach the proxy (kubelet refreshes ConfigMap
  # volumes within about a minute) before it closes.
  window=${E2E_WINDOW_SECONDS:-150}
  closes=$(( $(date +%s) + window ))
  cat <<YAML | k apply -f - >/dev/null
apiVersion: privacy.dossierguard.io/v1alpha1
kind: SharingAgreement
metadata: {name: e2e-school, namespace: wijkteam}
spec:
  storeRef: {name: wijkteam-dossiers}
  partner:
    type: School
    name: E2E school
    namespace: e2e-school
    subjects: [{kind: Group, name: e2e-school}]
  direction: Ingress
  legalBasis: Consent
  consent: {mode: PerDossier}
  categories: [identity, contact, request]
  purpose: End-to-end check of consent per dossier
---
apiVersion: privacy.dossierguard.io/v1alpha1
kind: SharingAgreement
metadata: {name: e2e-school-window, namespace: wijkteam}
spec:
  storeRef: {name: wijkteam-dossiers}
  partner:
    type: School
    name: E2E school, window
    namespace: e2e-school
    subjects: [{kind: Group, name: e2e-school-window}]
  direction: Ingress
  legalBasis: Consent
  consent: {reference: E2E-TOE-2}
  categories: [identity, contact, request]
  purpose: End-to-end check of a window closing on a kept-alive connection
  validUntil: "$(iso $closes)"
YAML
  for a in e2e-school e2e-school-window; do
    k -n wijkteam wait --for=jsonpath='{.status.proxyEnforced}'=true "sharingagreement/$a" --timeout="${TIMEOUT}s" >/dev/null \
      || fail "agreement $a does not report proxyEnforced=true: $(k -n wijkteam get sharingagreement "$a" -o jsonpath='{.status}')"
  done
  proxy_port_forward port-forward-sharing.log
  dossiers="https://127.0.0.1:$PF_PORT/api/dossiers"
  school=(-H 'X-Forwarded-User: lvs@e2e-school.example' -H 'X-Forwarded-Groups: e2e-school')
  windowed=(-H 'X-Forwarded-User: lvs@e2e-school.example' -H 'X-Forwarded-Groups: e2e-school-window')
  # Until the proxy has loaded the new policy the school is no partner yet.
  t0=$(date +%s); code=""
  while [ $(( $(date +%s) - t0 )) -lt "$TIMEOUT" ]; do
    code=$(req partner-a "${school[@]}" "$dossiers/D-1001")
    [ "$code" = 200 ] && break
    sleep 2
  done
  [ "$code" = 200 ] || fail "the school reading dossier A with consent got HTTP $code, want 200 ($(head -c 300 "$ART/partner-a.body"))"
  log "the proxy enforced the new agreements $(( $(date +%s) - t0 )) s after they were Ready; the school read dossier A with consent"
  code=$(req partner-b "${school[@]}" "$dossiers/D-1002")
  [ "$code" = 200 ] || fail "the school reading dossier B with consent got HTTP $code, want 200"
  code=$(req partner-decisions "${school[@]}" "$dossiers/D-1001/decisions")
  [ "$code" = 403 ] || fail "the school reading decisions (bsn, decisions: beyond the agreement) got HTTP $code, want 403"
  # A's family withdraws consent at the case-management system.
  pg_consent -c "UPDATE consents SET withdrawn_at = now() WHERE dossier = 'D-1001'" || fail "could not withdraw the consent"
  withdrawn=$(date +%s.%N)
  sleep 5.5 # the store's consent cache bound (spec.audit.consentCacheTTL, 5s by default)
  code=$(req partner-a-withdrawn "${school[@]}" "$dossiers/D-1001")
  [ "$code" = 403 ] || fail "after A's consent was withdrawn and the cache bound passed, the school got HTTP $code for A, want 403"
  grep -q 'withdrawn' "$ART/partner-a-withdrawn.body" || fail "the 403 does not say consent was withdrawn: $(head -c 300 "$ART/partner-a-withdrawn.body")"
  code=$(req partner-b-after "${school[@]}" "$dossiers/D-1002")
  [ "$code" = 200 ] || fail "after A's withdrawal the school got HTTP $code for B, want 200"
  log "consent for A withdrawn at the source: $(awk -v w="$withdrawn" -v n="$(date +%s.%N)" 'BEGIN{printf "%.1f", n-w}') s later A is refused (consent-withdrawn) and B still served"

  # The window: one kept-alive connection, a request before the window
  # closes and one just after.
  code=$(req window-open "${windowed[@]}" "$dossiers/D-1002")
  [ "$code" = 200 ] || fail "the windowed partner got HTTP $code before its window closed, want 200"
  now=$(date +%s)
  [ "$now" -lt $(( closes - 12 )) ] || fail "the window agreement reached the proxy too late to test it (raise E2E_WINDOW_SECONDS, now $window)"
  sleep $(( closes - 10 - now ))
  go build -o "$ROOT/bin/e2e/keepalive" ./test/e2e/keepalive || fail "could not build test/e2e/keepalive"
  out=$("$ROOT/bin/e2e/keepalive" -url "$dossiers/D-1002" -cacert "$ART/proxy-ca.crt" -second-at $(( closes + 1 )) \
    -header 'X-Forwarded-User: lvs@e2e-school.example' -header 'X-Forwarded-Groups: e2e-school-window') || fail "keepalive: $out"
  [ "$out" = "first=200 second=403 reused=true" ] || fail "window closing on a kept-alive connection: $out, want first=200 second=403 reused=true"
  log "window closed during a kept-alive connection: $out"
  kill $PF_PID 2>/dev/null || true; wait $PF_PID 2>/dev/null || true

  sleep 1
  k -n wijkteam logs e2e-wijkteam-app -c audit-proxy >"$ART/audit-proxy.log" 2>&1
  grep '^{"v":1,"type":' "$ART/audit-proxy.log" >"$ART/audit.jsonl" || true
  grep -q '"outcome":"allowed".*"agreement":"e2e-school","partner":"E2E school","legal_basis":"Consent","consent_mode":"PerDossier","consent":"given","purpose":"End-to-end check of consent per dossier"' "$ART/audit.jsonl" \
    || fail "no allowed event naming agreement, partner, basis, consent mode and outcome, and purpose"
  grep -q '"outcome":"denied".*"agreement":"e2e-school",.*"consent":"withdrawn"' "$ART/audit.jsonl" || fail "no denied event with consent withdrawn"
  grep -q '"outcome":"denied".*"agreement":"e2e-school-window",.*"consent":"not-checked"' "$ART/audit.jsonl" || fail "no denied event for the closed window"
  if grep -q 'D-100[12]' "$ART/audit.jsonl"; then fail "the audit log holds a raw dossier id"; fi
  "${verify[@]}" "$ART/audit.jsonl" >"$ART/verify-sharing.txt" 2>&1 || fail "audit verify rejected the log with partner events: $(cat "$ART/verify-sharing.txt")"
  k -n wijkteam delete sharingagreement e2e-school e2e-school-window >/dev/null 2>&1 || true
fi

# --- 6b'. data-subject rights: a restriction on one dossier ----------------

if [ "$pod_ready" = 1 ]; then
  step "data-subject rights: a restriction on dossier A"
  # The proxy watches the store's DataSubjectRequests with the workload's
  # ServiceAccount; a granted restriction on A refuses A within 10 s and
  # B is still served; when the restriction ends A is served again.
  proxy_port_forward port-forward-dsr.log
  dossiers="https://127.0.0.1:$PF_PORT/api/dossiers"
  consulent=(-H 'X-Forwarded-User: consulent@voorbeeldstad.nl' -H 'X-Forwarded-Groups: wijkteam-consulenten')
  # Until the proxy has read the store's requests every request for a
  # dossier is 503; wait for it to serve A.
  t0=$(date +%s); code=""
  while [ $(( $(date +%s) - t0 )) -lt "$TIMEOUT" ]; do
    code=$(req dsr-before "${consulent[@]}" "$dossiers/D-1001/decisions")
    [ "$code" = 200 ] && break
    sleep 1
  done
  [ "$code" = 200 ] || fail "before any restriction the consulent got HTTP $code for dossier A, want 200 ($(head -c 300 "$ART/dsr-before.body"))"
  pseudonym=$(printf '%s' D-1001 | bin/image/dossierguard pseudonym --store wijkteam/wijkteam-dossiers) || fail "dossierguard pseudonym failed: $pseudonym"
  [[ "$pseudonym" =~ ^[0-9a-f]{64}$ ]] || fail "dossierguard pseudonym printed '$pseudonym', want 64 hex digits"
  now=$(date +%s)
  cat <<YAML | k apply -f - >/dev/null
apiVersion: privacy.dossierguard.io/v1alpha1
kind: DataSubjectRequest
metadata: {name: e2e-afscherming, namespace: wijkteam}
spec:
  storeRef: {name: wijkteam-dossiers}
  type: Restriction
  dossier: $pseudonym
  receivedAt: "$(iso $(( now - 60 )))"
  requester: {relation: Self}
  subject: {ageBand: Adult}
  handler: privacy-officer
  decision: {outcome: Granted, decidedAt: "$(iso "$now")"}
YAML
  decided=$(date +%s.%N)
  code=""
  for _ in $(seq 1 40); do
    code=$(req dsr-restricted "${consulent[@]}" "$dossiers/D-1001/decisions")
    [ "$code" = 403 ] && break
    sleep 0.25
  done
  took=$(awk -v d="$decided" -v n="$(date +%s.%N)" 'BEGIN{printf "%.1f", n-d}')
  [ "$code" = 403 ] || fail "10 s after the restriction of A was recorded the consulent still got HTTP $code for A, want 403"
  grep -q '"type":"https://dossierguard.io/problems/restricted"' "$ART/dsr-restricted.body" \
    || fail "the 403 for the restricted dossier is not of type restricted: $(head -c 300 "$ART/dsr-restricted.body")"
  code=$(req dsr-b "${consulent[@]}" "$dossiers/D-1002/decisions")
  [ "$code" = 200 ] || fail "while A is restricted the consulent got HTTP $code for B, want 200"
  state=$(k -n wijkteam get dsr e2e-afscherming -o jsonpath='{.status.state}')
  log "restriction of A recorded: A refused (restricted) $took s later, B still served; the request is $state"
  k -n wijkteam patch dsr e2e-afscherming --type=merge -p "{\"spec\":{\"endedAt\":\"$(iso "$(date +%s)")\"}}" >/dev/null \
    || fail "could not end the restriction"
  ended=$(date +%s.%N)
  code=""
  for _ in $(seq 1 40); do
    code=$(req dsr-ended "${consulent[@]}" "$dossiers/D-1001/decisions")
    [ "$code" = 200 ] && break
    sleep 0.25
  done
  took=$(awk -v d="$ended" -v n="$(date +%s.%N)" 'BEGIN{printf "%.1f", n-d}')
  [ "$code" = 200 ] || fail "10 s after the restriction of A ended the consulent got HTTP $code for A, want 200"
  log "restriction of A ended: A served again $took s later"
  kill $PF_PID 2>/dev/null || true; wait $PF_PID 2>/dev/null || true
  sleep 1
  k -n wijkteam logs e2e-wijkteam-app -c audit-proxy >"$ART/audit-proxy.log" 2>&1
  grep '^{"v":1,"type":' "$ART/audit-proxy.log" >"$ART/audit.jsonl" || true
  grep "\"data_subject_id\":\"$pseudonym\"" "$ART/audit.jsonl" | grep '"outcome":"denied"' | grep -q '"http_status":403' \
    || fail "no denied event (403) for the restricted dossier's pseudonym in the audit log"
  if grep -q 'D-1001' "$ART/audit.jsonl"; then fail "the audit log holds the raw dossier id"; fi
  if k -n wijkteam get dsr e2e-afscherming -o yaml | grep -q 'D-1001'; then fail "the DataSubjectRequest holds the raw dossier id"; fi
  k -n wijkteam delete dsr e2e-afscherming >/dev/null 2>&1 || true
fi

# --- 6c. the logbook: a deleted pod's chain outlives it --------------------

if [ "$pod_ready" = 1 ] && [ "$LOGBOOK" = 1 ]; then
  step "logbook: pod deletion"
  # A Deployment's pod serves traffic, is deleted, and the Deployment starts
  # a new one that serves traffic too. Every request has an actor of its own,
  # so the requests served can be counted against the events the logbook
  # recorded; the store's chains must all be contiguous and verified.
  sed -e "s|APP_IMAGE|$APP_IMAGE|" test/e2e/wijkteam-deployment.yaml | k apply -f - >&2
  LB_SERVED=0
  lb_round() { # $1: the round. Ten requests through the Deployment's pod ($LB_POD).
    local i code
    k -n wijkteam rollout status deploy/e2e-wijkteam-deploy --timeout="${TIMEOUT}s" >&2 || fail "deploy/e2e-wijkteam-deploy did not roll out"
    LB_POD=$(k -n wijkteam get pods -l app.kubernetes.io/instance=e2e-wijkteam-deploy -o jsonpath='{.items[0].metadata.name}')
    [ -n "$LB_POD" ] || fail "deploy/e2e-wijkteam-deploy has no pod"
    k "${responder[@]}" -n wijkteam annotate pod "$LB_POD" --overwrite \
      "privacy.dossierguard.io/break-glass-justification=E2E logbook checks through the audit proxy" \
      "privacy.dossierguard.io/break-glass-until=$(date -u -d '+10 min' +%Y-%m-%dT%H:%M:%SZ)" >/dev/null \
      || fail "the break-glass responder could not open a window on pod $LB_POD"
    proxy_port_forward "port-forward-logbook-$1.log" "$LB_POD"
    grep -q "Forwarding from 127.0.0.1:$PF_PORT" "$ART/port-forward-logbook-$1.log" \
      || fail "no port-forward to pod $LB_POD: $(head -c 300 "$ART/port-forward-logbook-$1.log")"
    for i in $(seq 1 10); do
      code=$(req "logbook-$1-$i" -H "X-Forwarded-User: e2e-lb-$1-$i@voorbeeldstad.nl" -H 'X-Forwarded-Groups: wijkteam-consulenten' \
        "https://127.0.0.1:$PF_PORT/api/dossiers/D-1001/decisions")
      [ "$code" = 200 ] || fail "request $i of round $1 through pod $LB_POD got HTTP $code, want 200 ($(head -c 300 "$ART/logbook-$1-$i.body"))"
      LB_SERVED=$((LB_SERVED + 1))
    done
    kill $PF_PID 2>/dev/null || true
    wait $PF_PID 2>/dev/null || true
  }
  lb_round 1; first=$LB_POD
  k -n wijkteam delete pod "$first" --wait=true --timeout=60s >/dev/null || fail "pod $first was not deleted in time"
  lb_round 2; second=$LB_POD
  [ "$first" != "$second" ] || fail "the Deployment did not start a new pod after $first was deleted"
  log "served $LB_SERVED requests through pod $first (deleted) and pod $second (its successor)"
  sleep 1 # completion events are written just after the response
  lb_sql() { lb_env "$(pg_bin)/psql" -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }
  recorded=$(lb_sql "SELECT count(DISTINCT line::jsonb->>'actor') FROM dossierguard_logbook.logbook_records
    WHERE store = 'wijkteam/wijkteam-dossiers' AND type = 'event' AND line::jsonb->>'actor' LIKE 'e2e-lb-%'")
  [ "$recorded" = "$LB_SERVED" ] || fail "$LB_SERVED requests served, but the logbook recorded events of $recorded of them"
  per_pod=$(lb_sql "SELECT c.pod || '=' || count(DISTINCT r.line::jsonb->>'actor') FROM dossierguard_logbook.logbook_records r
    JOIN dossierguard_logbook.logbook_chains c USING (chain_id)
    WHERE r.type = 'event' AND r.line::jsonb->>'actor' LIKE 'e2e-lb-%' GROUP BY c.pod ORDER BY c.pod" | tr '\n' ' ')
  grep -q "$first=10 " <<<"$per_pod" && grep -q "$second=10 " <<<"$per_pod" \
    || fail "requests recorded per pod: $per_pod, want 10 in the chain of $first and 10 in that of $second"
  set +e
  lb_env bin/image/dossierguard audit verify --logbook --store wijkteam/wijkteam-dossiers >"$ART/verify-logbook.txt" 2>&1
  rc=$?
  set -e
  [ "$rc" = 0 ] || fail "audit verify --logbook exited $rc: $(cat "$ART/verify-logbook.txt")"
  chains=$(grep -c '^chain ' "$ART/verify-logbook.txt" || true)
  ok=$(grep -c '^chain .*): OK: ' "$ART/verify-logbook.txt" || true)
  [ "$chains" -ge 3 ] && [ "$ok" = "$chains" ] || fail "the logbook holds $chains chains of the store, $ok verified, want at least 3, all OK: $(cat "$ART/verify-logbook.txt")"
  tail -n 1 "$ART/verify-logbook.txt" | grep -qx "$chains chains of store wijkteam/wijkteam-dossiers, 0 broken" \
    || fail "audit verify --logbook: $(tail -n 1 "$ART/verify-logbook.txt")"
  for p in "$first" "$second"; do
    grep -q "(pod $p, started " "$ART/verify-logbook.txt" || fail "the logbook holds no chain of pod $p: $(cat "$ART/verify-logbook.txt")"
  done
  # The deleted pod's proxy signed its chain's end on SIGTERM.
  if grep "(pod $first, started " "$ART/verify-logbook.txt" | grep -q 'not yet signed'; then
    fail "the deleted pod's chain ends unsigned: $(grep "(pod $first, " "$ART/verify-logbook.txt")"
  fi
  log "$LB_SERVED requests served, $recorded recorded in the logbook (per pod: $per_pod); $(tail -n 1 "$ART/verify-logbook.txt")"
  sed 's/^/  /' "$ART/verify-logbook.txt" >&2
  k -n wijkteam delete deploy e2e-wijkteam-deploy --wait=true --timeout=60s >/dev/null 2>&1 || true
fi

# --- 7. a retention Job from the policy's CronJob, against PostgreSQL -------

step "retention job"
gw=$(ip -4 -o addr show "${LC_BRIDGE:-lc-cni0}" 2>/dev/null | awk '{print $4}' | cut -d/ -f1 | head -n 1)
if [ -z "$gw" ]; then
  log "SKIP: no local pod bridge (an existing cluster); the retention Job needs a database the pods can reach"
else
  if [ "$DEMO_DB" = 1 ]; then
    # The demo application's database, on the store's volume.
    psql_e2e() { demo_psql "$@"; }
    db_addrs=("$DB_NAME" "$DB_HOST")
  else
    [ "$PG_STARTED" = 1 ] || start_cluster_postgres "$gw" "${LC_POD_CIDR:-10.244.0.0/16}"
    psql_e2e() { "$(pg_bin)/psql" -X -q -v ON_ERROR_STOP=1 -h "$gw" -p "$E2E_PG_PORT" -U postgres -d postgres "$@"; }
    db_addrs=("$gw")
  fi
  # 30 due, 5 due but on legal hold, 5 due but with a future extension, 10 recent.
  psql_e2e -c "CREATE TABLE dossiers (id bigint PRIMARY KEY, last_contact_at timestamptz NOT NULL, legal_hold boolean NOT NULL DEFAULT false, retain_until date);
    INSERT INTO dossiers SELECT g, now() - interval '6 years', false, NULL FROM generate_series(1, 30) g;
    INSERT INTO dossiers SELECT g, now() - interval '7 years', true, NULL FROM generate_series(31, 35) g;
    INSERT INTO dossiers SELECT g, now() - interval '8 years', false, current_date + 365 FROM generate_series(36, 40) g;
    INSERT INTO dossiers SELECT g, now() - interval '1 year', false, NULL FROM generate_series(41, 50) g;" \
    || fail "could not load the test dossiers"
  k -n wijkteam get secret wijkteam-db-credentials >/dev/null 2>&1 || \
    k -n wijkteam create secret generic wijkteam-db-credentials --from-literal=host="$gw" --from-literal=port="$E2E_PG_PORT" \
      --from-literal=dbname=postgres --from-literal=user=postgres --from-literal=password=unused --from-literal=sslmode=disable >/dev/null
  k -n wijkteam create job e2e-sweep --from=cronjob/wijkteam-bewaartermijn-retention >/dev/null
  k -n wijkteam wait --for=condition=Complete job/e2e-sweep --timeout="${TIMEOUT}s" >&2 \
    || { k -n wijkteam logs job/e2e-sweep >"$ART/sweep.log" 2>&1; fail "the retention Job did not complete: $(tail -n 5 "$ART/sweep.log")"; }
  k -n wijkteam logs job/e2e-sweep >"$ART/sweep.log" 2>&1
  left=$(psql_e2e -At -c "SELECT count(*) FILTER (WHERE id <= 30), count(*) FILTER (WHERE id BETWEEN 31 AND 40), count(*) FILTER (WHERE id > 40) FROM dossiers")
  [ "$left" = "0|10|10" ] || fail "after the sweep (due|held|recent) = $left, want 0|10|10"
  grep -q '"destroyed":30' "$ART/sweep.log" || fail "the proof of destruction on the Job's log does not count 30 destroyed: $(head -c 300 "$ART/sweep.log")"
  for a in "${db_addrs[@]}"; do
    if grep -qF "$a" "$ART/sweep.log"; then fail "the Job's log shows the database address"; fi
  done
  destroyed=$(k -n wijkteam get retentionpolicy wijkteam-bewaartermijn -o jsonpath='{.status.lastRun.destroyed}/{.status.lastRun.held}/{.status.lastRun.result}')
  [ "$destroyed" = "30/10/Succeeded" ] || fail "status.lastRun destroyed/held/result = $destroyed, want 30/10/Succeeded"
  k -n wijkteam wait --for=condition=RetentionEnforced retentionpolicy/wijkteam-bewaartermijn --timeout=60s >&2 \
    || fail "RetentionEnforced did not become True after the run"
  log "the Job destroyed the 30 due dossiers, kept 5 on legal hold and 5 with an extension, and the policy reports it (RetentionEnforced=True)"
  # With retention proven, the wijkteam store passes every control; the other
  # stores fail only RetentionEnforced (no sweep has run for them).
  k -n wijkteam wait --for=condition=Compliant dossierstore/wijkteam-dossiers --timeout=60s >&2 \
    || fail "wijkteam-dossiers is not Compliant: $(k -n wijkteam get dossierstore wijkteam-dossiers -o jsonpath='{.status.conditions[?(@.type=="Compliant")].message}')"
  for store in cjg/cjg-dossiers veilig-thuis/vt-dossiers; do
    failing=$(k -n "${store%/*}" get dossierstore "${store#*/}" -o jsonpath='{range .status.compliance[?(@.result!="Pass")]}{.control}{" "}{end}')
    [ "$failing" = "RetentionEnforced " ] || fail "$store: controls not passing: '$failing', want only RetentionEnforced"
  done
  log "wijkteam-dossiers is Compliant; cjg and veilig-thuis fail only RetentionEnforced (no sweep ran for them)"
  k -n wijkteam delete job e2e-sweep --wait=false >/dev/null 2>&1 || true
  # The logbook's database keeps running for the Go suite (the egress
  # gateway and the proxies are refused while the logbook cannot acknowledge).
  [ "$LOGBOOK" = 1 ] || stop_cluster_postgres
fi

# --- 8. a sharing agreement with a short window -----------------------------

step "short-window agreement"
opens=$(( $(date +%s) + 8 )); closes=$(( opens + 10 ))
cat <<YAML | k apply -f - >/dev/null
apiVersion: privacy.dossierguard.io/v1alpha1
kind: SharingAgreement
metadata: {name: e2e-short-window, namespace: wijkteam}
spec:
  storeRef: {name: wijkteam-dossiers}
  partner:
    type: School
    name: E2E school
    namespace: e2e-school
    subjects: [{kind: Group, name: e2e-school}]
  direction: Ingress
  legalBasis: Consent
  consent: {reference: E2E-TOE-1}
  categories: [request]
  purpose: End-to-end check of a short window
  validFrom: "$(iso $opens)"
  validUntil: "$(iso $closes)"
YAML
appeared=""; vanished=""
while [ "$(date +%s)" -le $(( closes + 10 )) ] && [ -z "$vanished" ]; do
  if k -n wijkteam get networkpolicy share-e2e-short-window >/dev/null 2>&1; then
    [ -n "$appeared" ] || appeared=$(date +%s.%N)
  elif [ -n "$appeared" ]; then
    vanished=$(date +%s.%N)
  fi
  sleep 0.2
done
[ -n "$appeared" ] || fail "the agreement's NetworkPolicy never appeared"
[ -n "$vanished" ] || fail "the agreement's NetworkPolicy did not disappear after the window closed"
awk -v a="$appeared" -v o="$opens" 'BEGIN { exit !(a >= o - 0.5 && a <= o + 2) }' || fail "the NetworkPolicy appeared at $appeared, want within 2 s after $opens"
awk -v v="$vanished" -v c="$closes" 'BEGIN { exit !(v >= c - 0.5 && v <= c + 2) }' || fail "the NetworkPolicy disappeared at $vanished, want within 2 s after $closes"
k -n wijkteam wait --for=jsonpath='{.status.conditions[?(@.type=="AgreementInForce")].reason}'=Expired sharingagreement/e2e-short-window --timeout=30s >/dev/null \
  || fail "the agreement does not report Expired"
log "NetworkPolicy appeared $(awk -v a="$appeared" -v o="$opens" 'BEGIN{printf "%.1f", a-o}') s after the window opened and disappeared $(awk -v v="$vanished" -v c="$closes" 'BEGIN{printf "%.1f", v-c}') s after it closed; status Expired"
k -n wijkteam delete sharingagreement e2e-short-window >/dev/null 2>&1 || true

# --- 8b. the Go suite (test/e2e): the network cases ------------------------

step "go suite (test/e2e)"
# Real packets between pods, from netprobe pods (test/e2e/netprobe) the suite
# starts itself; its diagnostics and figures go to bin/test-artefacts/e2e.
GO_ART=$ROOT/bin/test-artefacts/e2e
rm -rf "$GO_ART"; mkdir -p "$GO_ART"
PROBE_IMAGE=${E2E_PROBE_IMAGE:-local/netprobe:dev}
if [ "$E2E_IMPORT" = 1 ]; then
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$ROOT/bin/e2e/netprobe" ./test/e2e/netprobe || fail "could not build test/e2e/netprobe"
  "${LOCAL_CLUSTER_DIR:-$ROOT/bin/local-cluster}/tools/mkimage" -binary "$ROOT/bin/e2e/netprobe" -tag "$PROBE_IMAGE" \
    -user 65532:65532 -expose 8080 -out "$ROOT/bin/e2e/netprobe.tar" >/dev/null || fail "could not build the netprobe image"
  "$LC" import "$ROOT/bin/e2e/netprobe.tar" >/dev/null 2>&1 || fail "could not import the netprobe image"
fi
# The egress story's stand-in partner (test/e2e/partner); it sends with the demo app.
PARTNER_IMAGE=${E2E_PARTNER_IMAGE:-local/e2e-partner:dev}
if [ "$E2E_IMPORT" = 1 ]; then
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$ROOT/bin/e2e/partner" ./test/e2e/partner || fail "could not build test/e2e/partner"
  "${LOCAL_CLUSTER_DIR:-$ROOT/bin/local-cluster}/tools/mkimage" -binary "$ROOT/bin/e2e/partner" -tag "$PARTNER_IMAGE" \
    -user 65532:65532 -expose 8443 -out "$ROOT/bin/e2e/partner.tar" >/dev/null || fail "could not build the partner image"
  "$LC" import "$ROOT/bin/e2e/partner.tar" >/dev/null 2>&1 || fail "could not import the partner image"
fi
netpol_log=${LOCAL_CLUSTER_DIR:-$ROOT/bin/local-cluster}/logs/kube-network-policies.log
[ "$KUBECONFIG" = "$LOCAL_KUBECONFIG" ] && [ -f "$netpol_log" ] || netpol_log=""
go_focus=()
[ -z "${E2E_FOCUS:-}" ] || go_focus=(-ginkgo.focus "$E2E_FOCUS")
set +e
E2E_OPERATOR_NAMESPACE="$NS" E2E_PROBE_IMAGE="$PROBE_IMAGE" E2E_BREAK_GLASS_GROUP="$BREAK_GLASS_GROUP" \
  E2E_PARTNER_IMAGE="$PARTNER_IMAGE" E2E_DEMO_APP_IMAGE="${E2E_DEMO_APP_IMAGE:-$([ "${DEMO_APP:-0}" = 1 ] && echo "$APP_IMAGE")}" \
  E2E_ARTEFACTS="$GO_ART" E2E_NETPOL_LOG="$netpol_log" E2E_TIMEOUT="$TIMEOUT" \
  go test -tags e2e ./test/e2e -count=1 -timeout 30m -ginkgo.v -ginkgo.no-color -ginkgo.junit-report="$GO_ART/junit.xml" "${go_focus[@]}" \
  2>&1 | tee "$ART/go-suite.log" >&2
rc=${PIPESTATUS[0]}
set -e
[ "$rc" = 0 ] || fail "the Go suite failed (exit $rc); its log is $ART/go-suite.log, diagnostics under $GO_ART"
[ ! -f "$GO_ART/figures.txt" ] || { log "figures:"; sed 's/^/  /' "$GO_ART/figures.txt" >&2; }

if [ "${E2E_KEEP:-0}" = 1 ]; then
  # The deletion story below would remove what E2E_KEEP=1 keeps.
  log "E2E_KEEP=1: not running the deletion story, so that the install stays for inspection (and make e2e-suite)"
  step "checks done"
  log "all checks run passed; artefacts in $ART"
  exit 0
fi

# --- 9. deletion and uninstall leave only the retained dossier volumes ------

step "deletion leaves only the retained volumes"
k -n wijkteam delete pod e2e-wijkteam-app --ignore-not-found --wait=true --timeout=60s >/dev/null 2>&1
[ "$DEMO_DB" = 0 ] || k delete -f test/e2e/demodb/demodb.yaml --wait=true --timeout=60s >/dev/null 2>&1 || fail "the demo database was not deleted in time"
# The dossierguard resources only: deleting the samples' Namespaces would
# take their volumes too, as Kubernetes does with everything in a namespace.
sample_ns="cjg wijkteam veilig-thuis"
for ns in $sample_ns; do
  k -n "$ns" delete dossierstores,accessroles,sharingagreements,retentionpolicies,datasubjectrequests --all --wait=true --timeout=120s >/dev/null \
    || fail "the dossierguard resources in $ns were not deleted in time"
done
leftover=""
for _ in $(seq 1 60); do
  leftover=""
  for ns in $sample_ns; do
    # Owned children go through garbage collection (kube-controller-manager).
    for kind in networkpolicies secrets configmaps roles rolebindings cronjobs serviceaccounts; do
      n=$(k -n "$ns" get "$kind" -l app.kubernetes.io/managed-by=dossierguard -o name 2>/dev/null | wc -l)
      [ "$n" = 0 ] || leftover="$leftover $ns/$kind:$n"
    done
  done
  [ -z "$leftover" ] && break
  sleep 1
done
[ -z "$leftover" ] || fail "dossierguard objects left after deleting the samples:$leftover"
retained=0
for ns in $sample_ns; do
  for pvc in $(k -n "$ns" get pvc -o name 2>/dev/null); do
    from=$(k -n "$ns" get "$pvc" -o jsonpath='{.metadata.annotations.privacy\.dossierguard\.io/retained-from-store}')
    owners=$(k -n "$ns" get "$pvc" -o jsonpath='{.metadata.ownerReferences}')
    [ -n "$from" ] && [ -z "$owners" ] || fail "$ns/$pvc is not a released dossier volume (retained-from-store '$from', owners '$owners')"
    retained=$((retained + 1))
  done
done
[ "$retained" = 3 ] || fail "$retained dossier volumes retained, want the 3 of the sample stores"
"$HELM" uninstall "$RELEASE" -n "$NS" --wait --timeout 120s >&2 || fail "helm uninstall failed"
INSTALLED=0
left=$(k get clusterroles,clusterrolebindings,mutatingwebhookconfigurations,validatingwebhookconfigurations -o name | grep -c dossierguard || true)
[ "$left" = 0 ] || fail "$left cluster-scoped dossierguard objects left after helm uninstall"
# But ConfigMap dossierguard-audit-trust: the stores' public checkpoint
# keys, which outlive the stores and the release (docs/audit-log.md).
left=$(k -n "$NS" get deploy,svc,secrets,configmaps,roles,rolebindings,serviceaccounts,pdb,networkpolicies -l app.kubernetes.io/part-of=dossierguard -o name 2>/dev/null \
  | { grep -vx 'configmap/dossierguard-audit-trust' || true; } | wc -l)
[ "$left" = 0 ] || fail "$left dossierguard objects left in $NS after helm uninstall"
k -n "$NS" get configmap dossierguard-audit-trust >/dev/null 2>&1 || fail "ConfigMap $NS/dossierguard-audit-trust (the stores' public checkpoint keys) did not outlive the stores and the release"
log "after deleting the samples and uninstalling: no dossierguard object left but the CRDs, the $retained retained dossier volumes and the public checkpoint keys (ConfigMap dossierguard-audit-trust)"
for ns in $sample_ns; do k -n "$ns" delete pvc --all --wait=false >/dev/null 2>&1 || true; done

step "checks done"
log "all checks passed; artefacts in $ART"
