# shellcheck shell=bash
# etcd.sh: the cluster's store, etcd, as a host process on loopback only
# (client http://127.0.0.1:LC_ETCD_PORT, peer LC_ETCD_PEER_PORT), its data
# in bin/local-cluster/etcd (root's, 0700; kept by `down`, deleted by
# `down --purge`), its log in bin/local-cluster/logs/etcd.log.
#
#   etcd_up     start it unless it runs; wait until /health answers
#   etcd_down   stop it
#
# Sourced by hack/local-cluster.sh after lib.sh; runs nothing on its own.

etcd_up() {
  mkdir -p "$STATE/etcd"
  chmod 700 "$STATE/etcd"
  start etcd "$ASSETS/etcd" \
    --name local-cluster --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "local-cluster=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-state new \
    --log-level warn
  wait_for "etcd" 60 curl -sf --max-time 3 "http://127.0.0.1:$ETCD_PORT/health" || die "etcd is not healthy; see $LOGS/etcd.log"
}

etcd_down() {
  stop etcd
}
