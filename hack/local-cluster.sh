#!/usr/bin/env bash
# local-cluster.sh runs a real single-node Kubernetes cluster on this machine,
# without a Docker engine and without a container registry: etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler, containerd, runc,
# CNI bridge networking, kubelet and kube-proxy, all as plain processes.
#
#   hack/local-cluster.sh up                  start (idempotent); waits for a Ready node and a running pod
#   hack/local-cluster.sh down [--purge]      stop every process it started, unmount, clean the network;
#                                             --purge also deletes the cluster's data (certs, etcd, images)
#   hack/local-cluster.sh status              which components run, the node, the pods (exit 1 unless all run)
#   hack/local-cluster.sh kubeconfig          print the admin kubeconfig path
#   hack/local-cluster.sh import IMAGE_TAR    import an image tarball into containerd (k8s.io namespace)
#   hack/local-cluster.sh selftest            pod, Service and pod-to-pod traffic checks (local/echo:dev)
#
# NetworkPolicy is enforced by kube-network-policies (hack/local-cluster/network-policies.sh);
# with LC_NETWORK_POLICIES=0 policies are stored only.
# CoreDNS is the cluster DNS (hack/local-cluster/dns.sh) and local-path-provisioner
# provisions volumes (hack/local-cluster/volumes.sh), both as pods.
#
# Needs root, Linux, Go and apt (Debian packages are installed when missing).
# All state lives under bin/local-cluster/ (LOCAL_CLUSTER_DIR to change it);
# logs in bin/local-cluster/logs/<component>.log. docs/local-cluster.md has the
# details, the measured timings and the pitfalls.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE="$ROOT/hack/local-cluster"
STATE=${LOCAL_CLUSTER_DIR:-$ROOT/bin/local-cluster}
TOOLS="$STATE/tools"
PKI="$STATE/pki"
LOGS="$STATE/logs"
RUN="$STATE/run"
KCFG="$STATE/kubeconfig"
ADMIN_KUBECONFIG="$KCFG/admin.kubeconfig"
SOCK="$RUN/containerd.sock"

RUNC_VERSION=${LC_RUNC_VERSION:-v1.5.2}
APISERVER_PORT=${LC_APISERVER_PORT:-6443}
ETCD_PORT=${LC_ETCD_PORT:-23790}
ETCD_PEER_PORT=${LC_ETCD_PEER_PORT:-23800}
POD_CIDR=${LC_POD_CIDR:-10.244.0.0/16}
SERVICE_CIDR=${LC_SERVICE_CIDR:-10.96.0.0/12}
KUBERNETES_SVC_IP=${LC_KUBERNETES_SVC_IP:-10.96.0.1}
CLUSTER_DNS=${LC_CLUSTER_DNS-10.96.0.10}
BRIDGE=${LC_BRIDGE:-lc-cni0}
GUARD=${LC_GUARD_BRIDGE:-lc-guard0}
EGRESS_GUARD=${LC_EGRESS_GUARD:-1}
TIMEOUT=${LC_TIMEOUT:-300}
PAUSE_IMAGE=docker.io/local/pause:dev
ECHO_IMAGE=docker.io/local/echo:dev
GUARD_CHAIN=LOCAL-CLUSTER-EGRESS
# The kubelet puts every pod under this cgroup (in each cgroup v1 hierarchy),
# so down finds exactly this cluster's container processes and no one else's.
CGROUP_ROOT=local-cluster

COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy)

# shellcheck source=hack/local-cluster/network-policies.sh
. "$HERE/network-policies.sh"
# shellcheck source=hack/local-cluster/dns.sh
. "$HERE/dns.sh"
# shellcheck source=hack/local-cluster/volumes.sh
. "$HERE/volumes.sh"

T0=$(date +%s)
log() { printf '[local-cluster %4ss] %s\n' "$(($(date +%s) - T0))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- settings

# The node's address: the IPv4 address of the interface holding the default
# route, else the first global IPv4 address. LC_NODE_IP overrides.
node_ip() {
  if [ -n "${LC_NODE_IP:-}" ]; then echo "$LC_NODE_IP"; return; fi
  local dev ip
  dev=$(ip -4 route show default 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "dev") {print $(i + 1); exit}}')
  if [ -n "$dev" ]; then
    ip=$(ip -4 -o addr show dev "$dev" scope global 2>/dev/null | awk '{sub("/.*", "", $4); print $4; exit}')
  fi
  [ -n "${ip:-}" ] || ip=$(ip -4 -o addr show scope global 2>/dev/null | awk '{sub("/.*", "", $4); print $4; exit}')
  [ -n "${ip:-}" ] || die "no IPv4 address found for the node; set LC_NODE_IP"
  echo "$ip"
}

node_name() {
  local n=${LC_NODE_NAME:-$(hostname)}
  echo "$n" | tr '[:upper:]' '[:lower:]' | tr -c 'a-z0-9.\n-' '-'
}

# The settings of the last `up` (down and status use the same names).
load_settings() {
  if [ -f "$STATE/cluster.env" ]; then
    # shellcheck disable=SC1091
    . "$STATE/cluster.env"
  fi
}

save_settings() {
  cat >"$STATE/cluster.env" <<EOF
# Written by hack/local-cluster.sh up; read by down and status.
NODE_IP=$NODE_IP
NODE_NAME=$NODE_NAME
APISERVER_PORT=$APISERVER_PORT
ETCD_PORT=$ETCD_PORT
ETCD_PEER_PORT=$ETCD_PEER_PORT
POD_CIDR=$POD_CIDR
SERVICE_CIDR=$SERVICE_CIDR
KUBERNETES_SVC_IP=$KUBERNETES_SVC_IP
CLUSTER_DNS=$CLUSTER_DNS
BRIDGE=$BRIDGE
GUARD=$GUARD
EGRESS_GUARD=$EGRESS_GUARD
ASSETS=$ASSETS
EOF
}

render() { # render TEMPLATE OUT
  sed -e "s|@STATE@|$STATE|g" -e "s|@NODE_IP@|$NODE_IP|g" -e "s|@NODE_NAME@|$NODE_NAME|g" \
    -e "s|@POD_CIDR@|$POD_CIDR|g" -e "s|@BRIDGE@|$BRIDGE|g" -e "s|@PAUSE_IMAGE@|$PAUSE_IMAGE|g" \
    -e "s|@RUNC@|$TOOLS/runc|g" -e "s|@CGROUP_ROOT@|/$CGROUP_ROOT|g" -e "s|@CLUSTER_DNS@|${CLUSTER_DNS:+clusterDNS: [$CLUSTER_DNS]}|g" \
    "$1" >"$2.tmp"
  mv "$2.tmp" "$2"
}

# ---------------------------------------------------------------- processes

pidfile() { echo "$RUN/$1.pid"; }

# pid_of NAME prints the pid of a running component started by this script.
pid_of() {
  local f pid exe
  f=$(pidfile "$1")
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  case "$exe" in */"$1" | */"$1 (deleted)") echo "$pid" ;; *) return 1 ;; esac
}

# The TCP ports each component listens on.
ports_of() {
  case $1 in
    etcd) echo "$ETCD_PORT $ETCD_PEER_PORT" ;;
    kube-apiserver) echo "$APISERVER_PORT" ;;
    kube-controller-manager) echo 10257 ;;
    kube-scheduler) echo 10259 ;;
    kubelet) echo "10250 10248" ;;
    kube-proxy) echo "10249 10256" ;;
  esac
}

# preflight fails early, and clearly, when a port a component needs is taken
# by something else (another cluster on this machine, say).
preflight_ports() {
  local c p busy=()
  for c in "${COMPONENTS[@]}"; do
    pid_of "$c" >/dev/null && continue
    for p in $(ports_of "$c"); do
      if ss -Htln "sport = :$p" 2>/dev/null | grep -q .; then
        busy+=("$p ($c): $(ss -Htlnp "sport = :$p" 2>/dev/null | grep -o 'users:.*' | head -n 1)")
      fi
    done
  done
  [ ${#busy[@]} -eq 0 ] && return 0
  printf '  port %s\n' "${busy[@]}" >&2
  die "ports this cluster needs are in use (LC_APISERVER_PORT, LC_ETCD_PORT and LC_ETCD_PEER_PORT move the first three)"
}

# start NAME BINARY ARGS... starts a component in its own session, logging to
# logs/NAME.log, unless it already runs.
start() {
  local name=$1 bin=$2 pid
  shift 2
  if pid=$(pid_of "$name"); then
    log "$name already running (pid $pid)"
    return 0
  fi
  [ -x "$bin" ] || die "$bin is missing"
  log "starting $name"
  printf '\n==== %s starting %s\n' "$(date -Is)" "$name" >>"$LOGS/$name.log"
  rm -f "$(pidfile "$name")"
  # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell.
  # The inner shell writes its own pid and becomes the component (exec), so
  # the pid is right even when setsid has to fork.
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$(pidfile "$name")" "$bin" "$@" </dev/null >>"$LOGS/$name.log" 2>&1 &
  local i
  for ((i = 0; i < 50; i++)); do
    pid_of "$name" >/dev/null && break
    sleep 0.1
  done
  sleep 0.5
  pid_of "$name" >/dev/null || { tail -n 30 "$LOGS/$name.log" >&2; die "$name exited at once; see $LOGS/$name.log"; }
}

# stop NAME [SECONDS] sends SIGTERM, then SIGKILL after SECONDS (default 20).
stop() {
  local name=$1 wait=${2:-20} pid i
  if pid=$(pid_of "$name"); then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < wait * 10; i++)); do
      [ -d "/proc/$pid" ] || break
      sleep 0.1
    done
    if [ -d "/proc/$pid" ]; then
      log "$name did not stop in ${wait}s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
    fi
  fi
  rm -f "$(pidfile "$name")"
}

# wait_for WHAT SECONDS COMMAND... retries COMMAND until it succeeds.
wait_for() {
  local what=$1 secs=$2 start
  shift 2
  start=$(date +%s)
  until "$@" >/dev/null 2>&1; do
    if (($(date +%s) - start > secs)); then
      log "timed out after ${secs}s waiting for $what"
      return 1
    fi
    sleep 1
  done
}

kubectl_() { "$ASSETS/kubectl" --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }
ctr_() { ctr --address "$SOCK" -n k8s.io "$@"; }

# ---------------------------------------------------------------- prerequisites

ensure_packages() {
  local need=()
  command -v openssl >/dev/null || need+=(openssl)
  command -v curl >/dev/null || need+=(curl)
  command -v ip >/dev/null || need+=(iproute2)
  command -v iptables >/dev/null || need+=(iptables)
  command -v conntrack >/dev/null || need+=(conntrack)
  command -v findmnt >/dev/null || need+=(util-linux)
  command -v ss >/dev/null || need+=(iproute2)
  command -v containerd >/dev/null && command -v ctr >/dev/null && command -v containerd-shim-runc-v2 >/dev/null || need+=(containerd)
  [ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/portmap ] && [ -x /usr/lib/cni/loopback ] || need+=(containernetworking-plugins)
  if [ ! -x "$TOOLS/runc" ]; then
    command -v gcc >/dev/null || need+=(gcc libc6-dev)
    command -v pkg-config >/dev/null || need+=(pkg-config)
    pkg-config --exists libseccomp 2>/dev/null || need+=(libseccomp-dev)
  fi
  [ ${#need[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "missing packages (${need[*]}) and no apt-get to install them"
  log "installing Debian packages: ${need[*]}"
  apt-get update >"$LOGS/apt.log" 2>&1 || { tail -n 20 "$LOGS/apt.log" >&2; die "apt-get update failed"; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >>"$LOGS/apt.log" 2>&1 ||
    { tail -n 20 "$LOGS/apt.log" >&2; die "apt-get install failed; see $LOGS/apt.log"; }
}

# build_module_tools DIR OUT... builds the packages of a small Go module under
# hack/local-cluster when a binary is missing or was built from other
# sources: the digest of the module's Go files, go.mod and go.sum is kept
# beside each binary (.NAME.src). A digest rather than file times, so that a
# tools folder shared by two checkouts never keeps the other one's build.
build_module_tools() {
  local dir=$1 stale=0 b sum
  shift
  sum=$(cd "$dir" && find . -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \) -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
  for b in "$@"; do
    if [ ! -x "$TOOLS/$b" ] || [ "$(cat "$TOOLS/.$b.src" 2>/dev/null)" != "$sum" ]; then
      stale=1
    fi
  done
  [ $stale = 1 ] || return 0
  log "building $* from ${dir#"$ROOT"/}"
  (cd "$dir" && GOWORK=off CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "-s -w -buildid=" -o "$TOOLS/" ./...) ||
    die "building $dir failed"
  for b in "$@"; do echo "$sum" >"$TOOLS/.$b.src"; done
}

ensure_tools() {
  mkdir -p "$TOOLS/images"
  if [ ! -x "$TOOLS/runc" ]; then
    log "building runc $RUNC_VERSION with seccomp (Debian's runc 1.1 fails on this kernel; about 1 minute)"
    GOBIN="$TOOLS" GOWORK=off CGO_ENABLED=1 GOFLAGS=-mod=mod go install -tags seccomp "github.com/opencontainers/runc@$RUNC_VERSION" >"$LOGS/runc-build.log" 2>&1 ||
      { tail -n 20 "$LOGS/runc-build.log" >&2; die "building runc failed"; }
  fi
  "$TOOLS/runc" --version | grep -q libseccomp || die "$TOOLS/runc was built without seccomp; delete it and run up again"
  build_module_tools "$HERE/images" pause echo mkimage volume-helper
  build_module_tools "$HERE/cri" cri
  netpol_build
  dns_build
  volumes_build
  local img
  for img in pause echo; do
    if [ ! -f "$TOOLS/images/$img.tar" ] || [ "$TOOLS/$img" -nt "$TOOLS/images/$img.tar" ]; then
      case $img in
        pause) "$TOOLS/mkimage" -binary "$TOOLS/pause" -tag local/pause:dev -user 65535:65535 -out "$TOOLS/images/pause.tar" ;;
        echo) "$TOOLS/mkimage" -binary "$TOOLS/echo" -tag local/echo:dev -user 65532:65532 -expose 8080 -out "$TOOLS/images/echo.tar" ;;
      esac
    fi
  done
  log "Kubernetes binaries (hack/envtest-assets.sh; about 12 minutes the first time on two cores)"
  ASSETS=$("$ROOT/hack/envtest-assets.sh" kube-controller-manager kube-scheduler kubelet kube-proxy kubectl) ||
    die "hack/envtest-assets.sh failed"
}

# ---------------------------------------------------------------- certificates

# cert NAME CN O EKU [SANS] makes PKI/NAME.{key,crt} signed by the cluster CA
# unless it exists (and, for serving certs, already names every SAN).
cert() {
  local name=$1 cn=$2 o=$3 eku=$4 sans=${5:-} subj ext
  if [ -f "$PKI/$name.crt" ] && [ -f "$PKI/$name.key" ]; then
    if [ -z "$sans" ] || [ "$(openssl x509 -in "$PKI/$name.crt" -noout -ext subjectAltName 2>/dev/null | tail -n +2 | tr -d ' \n' | sed 's/IPAddress:/IP:/g')" = "$sans" ]; then
      return 0
    fi
    log "certificate $name lacks the current SANs; making it again"
  fi
  subj="/CN=$cn"
  [ -z "$o" ] || subj="/O=$o$subj"
  ext="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=$eku"
  [ -z "$sans" ] || ext="$ext
subjectAltName=$sans"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI/$name.key" 2>/dev/null
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  local ca=ca
  [ "$name" != front-proxy-client ] || ca=front-proxy-ca
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -set_serial "0x$(openssl rand -hex 16)" \
    -days 825 -sha256 -extfile <(echo "$ext") -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr"
}

ca() { # ca NAME CN
  [ -f "$PKI/$1.crt" ] && [ -f "$PKI/$1.key" ] && return 0
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI/$1.key" 2>/dev/null
  openssl req -x509 -new -key "$PKI/$1.key" -subj "/CN=$2" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$PKI/$1.crt" 2>/dev/null
}

ensure_pki() {
  mkdir -p "$PKI" "$KCFG"
  chmod 700 "$PKI"
  log "certificates (openssl) in ${PKI#"$ROOT"/}"
  ca ca local-cluster-ca
  ca front-proxy-ca local-cluster-front-proxy-ca
  if [ ! -f "$PKI/sa.key" ]; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$PKI/sa.key" 2>/dev/null
    openssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  fi
  # SANs in the order openssl prints them: DNS names first, then IPs.
  cert apiserver kube-apiserver "" serverAuth \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,DNS:$NODE_NAME,IP:127.0.0.1,IP:$NODE_IP,IP:$KUBERNETES_SVC_IP"
  cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters clientAuth
  cert front-proxy-client front-proxy-client "" clientAuth
  cert admin local-cluster-admin system:masters clientAuth
  cert kubelet "system:node:$NODE_NAME" system:nodes clientAuth
  cert kubelet-serving "$NODE_NAME" "" serverAuth "DNS:$NODE_NAME,DNS:localhost,IP:127.0.0.1,IP:$NODE_IP"
  cert controller-manager system:kube-controller-manager "" clientAuth
  cert scheduler system:kube-scheduler "" clientAuth
  cert kube-proxy system:kube-proxy "" clientAuth
  chmod 600 "$PKI"/*.key

  local server="https://127.0.0.1:$APISERVER_PORT" name user
  for name in admin controller-manager scheduler kube-proxy kubelet; do
    case $name in
      admin) user=local-cluster-admin ;;
      kubelet) user="system:node:$NODE_NAME" ;;
      *) user="system:$name" ;;
    esac
    sed -e "s|@STATE@|$STATE|g" -e "s|@SERVER@|$server|g" -e "s|@USER@|$user|g" -e "s|@CERT@|$name|g" \
      "$HERE/kubeconfig.in" >"$KCFG/$name.kubeconfig"
    chmod 600 "$KCFG/$name.kubeconfig"
  done
}

# ---------------------------------------------------------------- host network

sysctl_set() { # sysctl_set KEY VALUE, remembering the old value for down
  local key=$1 val=$2 path old
  path="/proc/sys/${key//.//}"
  [ -f "$path" ] || { log "note: $key does not exist on this kernel"; return 0; }
  old=$(cat "$path")
  grep -q "^$key=" "$RUN/sysctl.saved" 2>/dev/null || echo "$key=$old" >>"$RUN/sysctl.saved"
  [ "$old" = "$val" ] || echo "$val" >"$path"
}

network_up() {
  sysctl_set net.ipv4.ip_forward 1
  sysctl_set net.bridge.bridge-nf-call-iptables 1
  # Addresses in the service and pod ranges that nothing answers for (a
  # ClusterIP kube-proxy has not programmed yet, a stale pod IP) would follow
  # the default route off this machine. An empty bridge holding those routes
  # keeps them here: traffic to it goes nowhere. kube-proxy's DNAT and the pod
  # bridge's more specific route still win.
  if [ "$EGRESS_GUARD" = 1 ]; then
    ip link show "$GUARD" >/dev/null 2>&1 || ip link add "$GUARD" type bridge
    ip link set "$GUARD" up
    ip route replace "$SERVICE_CIDR" dev "$GUARD"
    ip route replace "$POD_CIDR" dev "$GUARD"
    # Pods talk to each other, to the node and to Services, never beyond.
    iptables -w -N "$GUARD_CHAIN" 2>/dev/null || iptables -w -F "$GUARD_CHAIN"
    iptables -w -A "$GUARD_CHAIN" -s "$POD_CIDR" -o "$BRIDGE" -j RETURN
    iptables -w -A "$GUARD_CHAIN" -s "$POD_CIDR" -j REJECT --reject-with icmp-net-prohibited
    iptables -w -C FORWARD -j "$GUARD_CHAIN" 2>/dev/null || iptables -w -I FORWARD 1 -j "$GUARD_CHAIN"
  fi
}

network_down() {
  if iptables -w -C FORWARD -j "$GUARD_CHAIN" 2>/dev/null; then
    iptables -w -D FORWARD -j "$GUARD_CHAIN" || true
  fi
  iptables -w -F "$GUARD_CHAIN" 2>/dev/null && iptables -w -X "$GUARD_CHAIN" 2>/dev/null || true
  local dev
  for dev in "$BRIDGE" "$GUARD"; do
    if ip link show "$dev" >/dev/null 2>&1; then
      log "deleting network interface $dev"
      ip link del "$dev" || true
    fi
  done
  # Chains the bridge plugin's ipMasq and portmap leave when a pod's CNI DEL
  # never ran (containers killed without the runtime).
  local chain
  local rule
  for chain in $(iptables -w -t nat -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^CNI-/ {print $2}' || true); do
    if iptables -w -t nat -S "$chain" 2>/dev/null | grep -q 'name: \\"local-cluster\\"\|name: "local-cluster"'; then
      while read -r rule; do
        [ -z "$rule" ] || eval "iptables -w -t nat ${rule/#-A/-D}" || true
      done < <(iptables -w -t nat -S POSTROUTING 2>/dev/null | grep -- "-j $chain\$" || true)
      iptables -w -t nat -F "$chain" || true
      iptables -w -t nat -X "$chain" || true
    fi
  done
  # The kubelet's own chains, unless another kubelet on this machine uses them.
  if ! pgrep -x kubelet >/dev/null; then
    local table
    for table in filter nat mangle; do
      for chain in KUBE-FIREWALL KUBE-KUBELET-CANARY KUBE-IPTABLES-HINT; do
        iptables -w -t "$table" -S "$chain" >/dev/null 2>&1 || continue
        while read -r rule; do
          [ -z "$rule" ] || eval "iptables -w -t $table ${rule/#-A/-D}" || true
        done < <(iptables -w -t "$table" -S 2>/dev/null | grep -- "-j $chain\$" || true)
        iptables -w -t "$table" -F "$chain" 2>/dev/null || true
        iptables -w -t "$table" -X "$chain" 2>/dev/null || true
      done
    done
  fi
  if [ -f "$RUN/sysctl.saved" ]; then
    local kv
    while IFS= read -r kv; do
      [ -n "$kv" ] || continue
      echo "${kv#*=}" >"/proc/sys/$(echo "${kv%%=*}" | tr . /)" 2>/dev/null || true
    done <"$RUN/sysctl.saved"
    rm -f "$RUN/sysctl.saved"
  fi
}

# ---------------------------------------------------------------- components

apiserver_ready() {
  curl -sf --max-time 5 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "https://127.0.0.1:$APISERVER_PORT/readyz" | grep -q ok
}

start_control_plane() {
  mkdir -p "$STATE/etcd"
  chmod 700 "$STATE/etcd"
  start etcd "$ASSETS/etcd" \
    --name local-cluster --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "local-cluster=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-state new \
    --log-level warn
  wait_for "etcd" 60 curl -sf --max-time 3 "http://127.0.0.1:$ETCD_PORT/health" || die "etcd is not healthy; see $LOGS/etcd.log"

  start kube-apiserver "$ASSETS/kube-apiserver" \
    --advertise-address "$NODE_IP" --bind-address 0.0.0.0 --secure-port "$APISERVER_PORT" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --service-cluster-ip-range "$SERVICE_CIDR" --service-node-port-range 30000-32767 \
    --client-ca-file "$PKI/ca.crt" --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP,Hostname \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --enable-aggregator-routing=true \
    --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$PKI/front-proxy-client.crt" --proxy-client-key-file "$PKI/front-proxy-client.key" \
    --allow-privileged=true --profiling=false --v=1
  log "waiting for kube-apiserver on https://127.0.0.1:$APISERVER_PORT"
  wait_for "kube-apiserver /readyz" 180 apiserver_ready || { tail -n 30 "$LOGS/kube-apiserver.log" >&2; die "kube-apiserver is not ready; see $LOGS/kube-apiserver.log"; }

  start kube-controller-manager "$ASSETS/kube-controller-manager" \
    --kubeconfig "$KCFG/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$KCFG/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$KCFG/controller-manager.kubeconfig" \
    --client-ca-file "$PKI/ca.crt" --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" \
    --bind-address 127.0.0.1 --secure-port 10257 --leader-elect=false \
    --cluster-name local-cluster \
    --controllers '*,bootstrapsigner,tokencleaner' --use-service-account-credentials=true \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --allocate-node-cidrs=true --cluster-cidr "$POD_CIDR" --node-cidr-mask-size 24 \
    --flex-volume-plugin-dir "$STATE/kubelet/volume-plugins" \
    --service-cluster-ip-range "$SERVICE_CIDR" --v=1

  start kube-scheduler "$ASSETS/kube-scheduler" \
    --kubeconfig "$KCFG/scheduler.kubeconfig" \
    --authentication-kubeconfig "$KCFG/scheduler.kubeconfig" \
    --authorization-kubeconfig "$KCFG/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 10259 --leader-elect=false --v=1
}

start_containerd() {
  mkdir -p "$STATE/containerd/certs.d/_default" "$STATE/containerd/certs.d/docker.io" "$STATE/cni/net.d" "$STATE/cni/networks"
  render "$HERE/containerd.toml.in" "$STATE/containerd/config.toml"
  render "$HERE/cni.conflist.tmpl.in" "$STATE/cni/conflist.tmpl"
  cp "$HERE/hosts.toml.in" "$STATE/containerd/certs.d/_default/hosts.toml"
  cp "$HERE/hosts.toml.in" "$STATE/containerd/certs.d/docker.io/hosts.toml"
  # PATH: containerd finds containerd-shim-runc-v2 there; runc is named in the config.
  PATH="$TOOLS:$PATH" start containerd "$(command -v containerd)" --config "$STATE/containerd/config.toml"
  wait_for "containerd" 60 ctr --address "$SOCK" version || die "containerd did not come up; see $LOGS/containerd.log"
  if ! ctr_ images ls -q | grep -qx "$PAUSE_IMAGE" || [ "$TOOLS/images/pause.tar" -nt "$STATE/containerd/.pause-imported" ]; then
    import_image "$TOOLS/images/pause.tar"
    touch "$STATE/containerd/.pause-imported"
  fi
  if ! ctr_ images ls -q | grep -qx "$ECHO_IMAGE" || [ "$TOOLS/images/echo.tar" -nt "$STATE/containerd/.echo-imported" ]; then
    import_image "$TOOLS/images/echo.tar"
    touch "$STATE/containerd/.echo-imported"
  fi
}

import_image() {
  [ -f "$1" ] || die "no such file: $1"
  log "importing $(basename "$1") into containerd (namespace k8s.io)"
  ctr_ images import --snapshotter overlayfs "$1" >&2 || die "importing $1 failed"
}

start_node() {
  mkdir -p "$STATE/kubelet" "$STATE/pod-logs"
  cgroups_up
  render "$HERE/kubelet.yaml.in" "$STATE/kubelet.yaml"
  render "$HERE/kube-proxy.yaml.in" "$STATE/kube-proxy.yaml"
  PATH="$TOOLS:$PATH" start kubelet "$ASSETS/kubelet" \
    --config "$STATE/kubelet.yaml" --kubeconfig "$KCFG/kubelet.kubeconfig" \
    --root-dir "$STATE/kubelet" --cert-dir "$STATE/kubelet/pki" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --v=1
  start kube-proxy "$ASSETS/kube-proxy" --config "$STATE/kube-proxy.yaml" --v=1
}

node_ready() {
  [ "$(kubectl_ get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

smoke_test() {
  local pod=local-cluster-smoke ip
  wait_for "the default ServiceAccount" 120 kubectl_ -n default get serviceaccount default || die "no default ServiceAccount (kube-controller-manager?)"
  kubectl_ -n default delete pod "$pod" --ignore-not-found --wait=true >/dev/null
  kubectl_ apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $pod
  namespace: default
  labels: {app.kubernetes.io/name: local-cluster-smoke}
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 2
  containers:
  - name: pause
    image: local/pause:dev
    imagePullPolicy: Never
EOF
  log "waiting for the test pod $pod to run"
  if ! kubectl_ -n default wait pod "$pod" --for=condition=Ready --timeout=180s >/dev/null; then
    kubectl_ -n default describe pod "$pod" | tail -n 20 >&2
    die "the test pod did not start; see $LOGS/kubelet.log and $LOGS/containerd.log"
  fi
  ip=$(kubectl_ -n default get pod "$pod" -o jsonpath='{.status.podIP}')
  [ -n "$ip" ] || die "the test pod has no IP"
  log "test pod $pod is Running with IP $ip"
  kubectl_ -n default delete pod "$pod" --wait=false >/dev/null
}

# ---------------------------------------------------------------- commands

cmd_up() {
  [ "$(id -u)" = 0 ] || die "run as root (containerd, kubelet and the network need it)"
  mkdir -p "$STATE" "$LOGS" "$RUN"
  NODE_IP=$(node_ip)
  NODE_NAME=$(node_name)
  log "node $NODE_NAME at $NODE_IP; state in ${STATE#"$ROOT"/}"
  ensure_packages
  ensure_tools
  save_settings
  preflight_ports
  ensure_pki
  network_up
  start_control_plane
  netpol_up
  start_containerd
  start_node
  log "waiting for node $NODE_NAME to be Ready"
  wait_for "node $NODE_NAME Ready" "$TIMEOUT" node_ready || {
    kubectl_ describe node "$NODE_NAME" 2>&1 | tail -n 30 >&2
    die "the node is not Ready; see $LOGS/kubelet.log"
  }
  log "node $NODE_NAME is Ready (pod CIDR $(kubectl_ get node "$NODE_NAME" -o jsonpath='{.spec.podCIDR}'))"
  [ "${LC_SMOKE_TEST:-1}" != 1 ] || smoke_test
  dns_up
  volumes_up
  log "cluster is up in $(($(date +%s) - T0))s"
  log "kubeconfig: $ADMIN_KUBECONFIG"
  log "  export KUBECONFIG=$ADMIN_KUBECONFIG; export PATH=$ASSETS:\$PATH"
  echo "$ADMIN_KUBECONFIG"
}

# Processes of the shims this cluster's containerd started (they name its socket).
shim_pids() {
  local p
  for p in $(pgrep containerd-shim 2>/dev/null || true); do
    if tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -q -- "-address $SOCK "; then echo "$p"; fi
  done
  return 0
}

# shim_sockets PID... prints the /run/containerd/s sockets these shims listen on.
shim_sockets() {
  local p inodes=""
  for p in "$@"; do
    inodes="$inodes $(find "/proc/$p/fd" -lname 'socket:*' -printf '%l\n' 2>/dev/null | tr -dc '0-9\n' | tr '\n' ' ')"
  done
  [ -n "${inodes// /}" ] || return 0
  awk -v want="$inodes" 'BEGIN {n = split(want, w, " "); for (i = 1; i <= n; i++) ok[w[i]] = 1}
    ok[$7] && $8 ~ "^/run/containerd/s/" {print $8}' /proc/net/unix | sort -u
}

# Processes in this cluster's pod cgroups (/local-cluster in every hierarchy).
kubepods_pids() {
  local d
  for d in /sys/fs/cgroup/*/"$CGROUP_ROOT" /sys/fs/cgroup/"$CGROUP_ROOT"; do
    if [ -d "$d" ]; then find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null || true; fi
  done | sort -un
}

# cgroups_up makes the kubelet's cgroupRoot in every cgroup v1 hierarchy (the
# kubelet refuses a cgroupRoot that does not exist); a new cpuset cgroup needs
# the parent's cpus and mems before anything can join it.
cgroups_up() {
  local h
  for h in /sys/fs/cgroup/*/; do
    [ -f "$h/cgroup.procs" ] || continue
    mkdir -p "$h$CGROUP_ROOT"
    if [ -f "$h/cpuset.cpus" ]; then
      [ -n "$(cat "$h$CGROUP_ROOT/cpuset.cpus")" ] || cat "$h/cpuset.cpus" >"$h$CGROUP_ROOT/cpuset.cpus"
      [ -n "$(cat "$h$CGROUP_ROOT/cpuset.mems")" ] || cat "$h/cpuset.mems" >"$h$CGROUP_ROOT/cpuset.mems"
    fi
  done
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then mkdir -p "/sys/fs/cgroup/$CGROUP_ROOT"; fi
}

cmd_down() {
  [ "$(id -u)" = 0 ] || die "run as root"
  load_settings
  mkdir -p "$RUN"
  # Nothing may start new pods while they are being removed.
  stop kube-proxy
  stop kubelet
  stop kube-scheduler
  stop kube-controller-manager
  netpol_down
  if pid_of containerd >/dev/null && [ -x "$TOOLS/cri" ]; then
    log "stopping and removing every pod through the CRI (runs each pod's CNI DEL)"
    "$TOOLS/cri" -endpoint "unix://$SOCK" -timeout 90s stop-all >&2 || log "some pods could not be removed cleanly; killing what is left"
  fi
  if pid_of containerd >/dev/null; then
    local t
    for t in $(ctr_ tasks ls -q 2>/dev/null); do
      ctr_ tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true
      ctr_ tasks delete -f "$t" >/dev/null 2>&1 || true
    done
  fi
  stop containerd
  local pids p i
  pids="$(shim_pids) $(kubepods_pids)"
  if [ -n "${pids// /}" ]; then
    # A shim killed this way leaves its socket in /run/containerd/s (a path
    # containerd 1.6 does not let one move): note which ones are ours.
    local socks
    # shellcheck disable=SC2046 # one pid a word
    socks=$(shim_sockets $(shim_pids))
    log "killing leftover shims and container processes: $(tr -s ' \n' ' ' <<<"$pids")"
    for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
    for ((i = 0; i < 50; i++)); do
      pids="$(shim_pids) $(kubepods_pids)"
      [ -n "${pids// /}" ] || break
      sleep 0.1
    done
    for p in $socks; do rm -f "$p"; done
  fi
  stop kube-apiserver
  stop etcd
  # Mounts under the state dir: pod volumes, container root filesystems,
  # network namespaces, the shims' sockets.
  local m n=0
  for ((i = 0; i < 5; i++)); do
    mapfile -t mounts < <(findmnt -rn -o TARGET | awk -v s="$STATE/" 'index($0, s) == 1' | sort -r)
    [ ${#mounts[@]} -gt 0 ] || break
    for m in "${mounts[@]}"; do
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
      n=$((n + 1))
    done
  done
  [ $n = 0 ] || log "unmounted $n mounts under ${STATE#"$ROOT"/}"
  # The (now empty) pod cgroups.
  local d
  for d in /sys/fs/cgroup/*/"$CGROUP_ROOT" /sys/fs/cgroup/"$CGROUP_ROOT"; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  # Leftovers outside the state dir: containerd's shim sockets, the CNI
  # result cache, the kubelet's container log links.
  rm -f /var/lib/cni/results/local-cluster-* 2>/dev/null || true
  local sb
  for sb in "$STATE"/containerd/root/io.containerd.grpc.v1.cri/sandboxes/*; do
    [ -d "$sb" ] && rm -f /var/lib/cni/results/*-"$(basename "$sb")"-* 2>/dev/null || true
  done
  find /var/log/containers -maxdepth 1 -type l -lname "$STATE/*" -delete 2>/dev/null || true
  # The kubelet's device-plugin socket has a fixed path (not under --root-dir).
  if ! pgrep -x kubelet >/dev/null; then
    rm -f /var/lib/kubelet/device-plugins/kubelet.sock /var/lib/kubelet/device-plugins/kubelet_internal_checkpoint
    rmdir /var/lib/kubelet/device-plugins /var/lib/kubelet 2>/dev/null || true
  fi
  rmdir /var/log/containers /var/lib/cni/results /var/lib/cni 2>/dev/null || true
  rm -rf "$STATE/cni/networks"
  if [ -x "${ASSETS:-/nonexistent}/kube-proxy" ]; then
    "$ASSETS/kube-proxy" --cleanup >"$LOGS/kube-proxy-cleanup.log" 2>&1 || true
  fi
  network_down
  if [ "${1:-}" = --purge ]; then
    log "deleting the cluster's data (certificates, etcd, containerd, kubelet); keeping tools/"
    volumes_purge
    rm -rf "$STATE/pki" "$STATE/etcd" "$STATE/containerd" "$STATE/kubelet" "$STATE/cni" "$STATE/pod-logs" \
      "$STATE/kubeconfig" "$STATE"/*.yaml "$STATE/cluster.env" "$RUN"
  fi
  local left
  left="$(shim_pids) $(kubepods_pids)"
  for c in "${COMPONENTS[@]}"; do p=$(pid_of "$c") && left="$left $p"; done
  [ -z "${left// /}" ] || die "processes still running: $left"
  log "cluster is down"
}

cmd_status() {
  load_settings
  local c pid rc=0
  for c in "${COMPONENTS[@]}"; do
    if pid=$(pid_of "$c"); then
      printf '%-24s running (pid %s)\n' "$c" "$pid"
    else
      printf '%-24s stopped\n' "$c"
      rc=1
    fi
  done
  netpol_status || rc=1
  dns_status || rc=1
  volumes_status || rc=1
  printf '%-24s %s\n' "containerd shims" "$(shim_pids | wc -l)"
  if [ -n "${ASSETS:-}" ] && pid_of kube-apiserver >/dev/null && [ -f "$ADMIN_KUBECONFIG" ]; then
    echo
    kubectl_ get nodes -o wide 2>&1 || true
    echo
    kubectl_ get pods -A -o wide 2>&1 || true
  fi
  echo
  echo "kubeconfig: $ADMIN_KUBECONFIG"
  return $rc
}

cmd_import() {
  [ $# -eq 1 ] || die "usage: $0 import IMAGE_TAR"
  pid_of containerd >/dev/null || die "containerd is not running; run '$0 up' first"
  import_image "$1"
  ctr_ images ls -q >&2
}

cmd_selftest() {
  load_settings
  if [ -z "${ASSETS:-}" ] || ! pid_of kube-apiserver >/dev/null; then die "the cluster is not up; run '$0 up' first"; fi
  KUBECTL="$ASSETS/kubectl" KUBECONFIG="$ADMIN_KUBECONFIG" NODE_IP="$NODE_IP" POD_CIDR="$POD_CIDR" \
    SERVICE_CIDR="$SERVICE_CIDR" CLUSTER_DNS="$CLUSTER_DNS" bash "$HERE/selftest.sh"
}

case "${1:-}" in
  up) cmd_up ;;
  down) shift; cmd_down "$@" ;;
  status) cmd_status ;;
  kubeconfig) echo "$ADMIN_KUBECONFIG" ;;
  import) shift; cmd_import "$@" ;;
  selftest) cmd_selftest ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 2
    ;;
esac
