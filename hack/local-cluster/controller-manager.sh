# shellcheck shell=bash
# controller-manager.sh: kube-controller-manager as a host process (secure
# port 10257 on 127.0.0.1, no leader election). It signs service-account
# tokens and certificate requests with the keys of pki.sh, allocates each
# node a /24 of LC_POD_CIDR (--allocate-node-cidrs; containerd renders the
# CNI configuration from it), and keeps its flex-volume folder under the
# state folder. Its log is bin/local-cluster/logs/kube-controller-manager.log.
#
#   controller_manager_up     start it unless it runs
#   controller_manager_down   stop it
#
# Sourced by hack/local-cluster.sh after lib.sh; runs nothing on its own.

controller_manager_up() {
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
}

controller_manager_down() {
  stop kube-controller-manager
}
