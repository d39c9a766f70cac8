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
# Each component has a file of its own under hack/local-cluster/ (lib.sh, build.sh,
# pki.sh, etcd.sh, apiserver.sh, controller-manager.sh, scheduler.sh, cni.sh,
# containerd.sh, kubelet.sh, kube-proxy.sh); this script only puts them in order.
#
# Needs root, Linux, Go and apt (Debian packages are installed when missing).
# All state lives under bin/local-cluster/ (LOCAL_CLUSTER_DIR to change it);
# logs in bin/local-cluster/logs/<component>.log. docs/local-cluster.md has the
# details, the measured timings and the pitfalls.
set -euo pipefail

LC_PARTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/local-cluster"
# shellcheck source=hack/local-cluster/lib.sh
. "$LC_PARTS/lib.sh"
# shellcheck source=hack/local-cluster/build.sh
. "$LC_PARTS/build.sh"
# shellcheck source=hack/local-cluster/pki.sh
. "$LC_PARTS/pki.sh"
# shellcheck source=hack/local-cluster/cni.sh
. "$LC_PARTS/cni.sh"
# shellcheck source=hack/local-cluster/etcd.sh
. "$LC_PARTS/etcd.sh"
# shellcheck source=hack/local-cluster/apiserver.sh
. "$LC_PARTS/apiserver.sh"
# shellcheck source=hack/local-cluster/controller-manager.sh
. "$LC_PARTS/controller-manager.sh"
# shellcheck source=hack/local-cluster/scheduler.sh
. "$LC_PARTS/scheduler.sh"
# shellcheck source=hack/local-cluster/containerd.sh
. "$LC_PARTS/containerd.sh"
# shellcheck source=hack/local-cluster/kubelet.sh
. "$LC_PARTS/kubelet.sh"
# shellcheck source=hack/local-cluster/kube-proxy.sh
. "$LC_PARTS/kube-proxy.sh"
# shellcheck source=hack/local-cluster/network-policies.sh
. "$LC_PARTS/network-policies.sh"
# shellcheck source=hack/local-cluster/dns.sh
. "$LC_PARTS/dns.sh"
# shellcheck source=hack/local-cluster/volumes.sh
. "$LC_PARTS/volumes.sh"

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
  pki_up
  cni_up
  etcd_up
  apiserver_up
  controller_manager_up
  scheduler_up
  # Before containerd and the kubelet, so that no pod ever runs unpoliced.
  netpol_up
  containerd_up
  kubelet_up
  kube_proxy_up
  kubelet_wait_ready
  [ "${LC_SMOKE_TEST:-1}" != 1 ] || smoke_test
  dns_up
  volumes_up
  log "cluster is up in $(($(date +%s) - T0))s"
  log "kubeconfig: $ADMIN_KUBECONFIG"
  log "  export KUBECONFIG=$ADMIN_KUBECONFIG; export PATH=$ASSETS:\$PATH"
  echo "$ADMIN_KUBECONFIG"
}

cmd_down() {
  [ "$(id -u)" = 0 ] || die "run as root"
  load_settings
  mkdir -p "$RUN"
  # Nothing may start new pods while they are being removed.
  kube_proxy_down
  kubelet_down
  scheduler_down
  controller_manager_down
  netpol_down
  containerd_down
  apiserver_down
  etcd_down
  unmount_state
  kubelet_cleanup
  cni_cleanup
  kube_proxy_cleanup
  kubelet_iptables_down
  cni_down
  # Checked before --purge deletes the pid files and the data under them.
  local left c p
  left="$(shim_pids) $(kubepods_pids)"
  for c in "${COMPONENTS[@]}" kube-network-policies; do p=$(pid_of "$c") && left="$left $p"; done
  [ -z "${left// /}" ] || die "processes still running: $left"
  left=$(state_mounts | wc -l)
  [ "$left" = 0 ] || die "$left mounts still under $STATE (findmnt | grep ${STATE#"$ROOT"/})"
  if [ "${1:-}" = --purge ]; then
    log "deleting the cluster's data (certificates, etcd, containerd, kubelet, tokens); keeping tools/ and logs/"
    volumes_purge
    rm -rf "$STATE/pki" "$STATE/etcd" "$STATE/containerd" "$STATE/kubelet" "$STATE/cni" "$STATE/pod-logs" \
      "$STATE/network-policies" "$STATE/kubeconfig" "$STATE"/*.yaml "$STATE/cluster.env" "$RUN"
  fi
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
