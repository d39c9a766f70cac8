# shellcheck shell=bash
# kube-proxy.sh: kube-proxy as a host process in iptables mode
# (configuration bin/local-cluster/kube-proxy.yaml from kube-proxy.yaml.in;
# metrics 10249, health 10256), which turns ClusterIPs and NodePorts into
# pod addresses; and on `down` its rules (`kube-proxy --cleanup`, log
# bin/local-cluster/logs/kube-proxy-cleanup.log). Its log is
# bin/local-cluster/logs/kube-proxy.log.
#
#   kube_proxy_up        the configuration; start it unless it runs
#   kube_proxy_down      stop it
#   kube_proxy_cleanup   remove its iptables rules, once it has stopped
#
# Sourced by hack/local-cluster.sh after lib.sh; runs nothing on its own.

kube_proxy_up() {
  render "$HERE/kube-proxy.yaml.in" "$STATE/kube-proxy.yaml"
  start kube-proxy "$ASSETS/kube-proxy" --config "$STATE/kube-proxy.yaml" --v=1
}

kube_proxy_down() {
  stop kube-proxy
}

kube_proxy_cleanup() {
  if [ -x "${ASSETS:-/nonexistent}/kube-proxy" ]; then
    "$ASSETS/kube-proxy" --cleanup >"$LOGS/kube-proxy-cleanup.log" 2>&1 || true
  fi
}
