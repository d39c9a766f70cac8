# shellcheck shell=bash disable=SC2034 # the variables are the other files'
# lib.sh: what every piece of the local cluster shares. It owns the paths
# under the state folder (bin/local-cluster, LOCAL_CLUSTER_DIR), the
# cluster-wide settings (the LC_* variables) and cluster.env, the settings
# file of the last `up`; logging (log, die); the templates (render); and the
# host processes: pid files, start, stop, wait_for, the ports preflight, and
# unmounting what is left under the state folder.
# Sourced first by hack/local-cluster.sh; it defines variables and functions
# and runs nothing.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/hack/local-cluster"
STATE=${LOCAL_CLUSTER_DIR:-$ROOT/bin/local-cluster}
TOOLS="$STATE/tools"
PKI="$STATE/pki"
LOGS="$STATE/logs"
RUN="$STATE/run"
KCFG="$STATE/kubeconfig"
ADMIN_KUBECONFIG="$KCFG/admin.kubeconfig"
SOCK="$RUN/containerd.sock"

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
# The kubelet puts every pod under this cgroup (in each cgroup v1 hierarchy),
# so down finds exactly this cluster's container processes and no one else's.
CGROUP_ROOT=local-cluster

# The host processes, in the order `up` starts them (kube-network-policies,
# started between kube-scheduler and containerd, is network-policies.sh's).
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy)

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

# The TCP ports each component listens on (set by the flags and
# configurations in its own file).
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
# The pid file goes only when no live NAME is named in it any more: one
# written meanwhile by another `up` stays.
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
  pid_of "$name" >/dev/null || rm -f "$(pidfile "$name")"
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

# state_mounts prints the mount points under the state folder, deepest first.
# The mount table holds resolved paths, and the state folder may be reached
# through a symlink (bin/local-cluster shared by several checkouts), so both
# the given and the physical path count.
state_mounts() {
  local phys
  phys=$(cd "$STATE" 2>/dev/null && pwd -P) || phys=$STATE
  findmnt -rn -o TARGET | awk -v s="$STATE/" -v p="$phys/" 'index($0, s) == 1 || index($0, p) == 1' | sort -r
}

# unmount_state unmounts everything under the state folder, deepest first:
# pod volumes, container root filesystems, network namespaces, the shims'
# sockets (the kubelet and containerd leave them when they stop).
unmount_state() {
  local m n=0 i mounts
  for ((i = 0; i < 5; i++)); do
    mapfile -t mounts < <(state_mounts)
    [ ${#mounts[@]} -gt 0 ] || break
    for m in "${mounts[@]}"; do
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
      n=$((n + 1))
    done
  done
  [ $n = 0 ] || log "unmounted $n mounts under ${STATE#"$ROOT"/}"
}
