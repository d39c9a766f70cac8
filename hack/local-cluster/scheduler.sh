# shellcheck shell=bash
# scheduler.sh: kube-scheduler as a host process (secure port 10259 on
# 127.0.0.1, no leader election), with its client certificate from pki.sh.
# Its log is bin/local-cluster/logs/kube-scheduler.log.
#
#   scheduler_up     start it unless it runs
#   scheduler_down   stop it
#
# Sourced by hack/local-cluster.sh after lib.sh; runs nothing on its own.

scheduler_up() {
  start kube-scheduler "$ASSETS/kube-scheduler" \
    --kubeconfig "$KCFG/scheduler.kubeconfig" \
    --authentication-kubeconfig "$KCFG/scheduler.kubeconfig" \
    --authorization-kubeconfig "$KCFG/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 10259 --leader-elect=false --v=1
}

scheduler_down() {
  stop kube-scheduler
}
