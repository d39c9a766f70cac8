# shellcheck shell=bash
# apiserver.sh: kube-apiserver as a host process, serving on
# https://<node IP>:LC_APISERVER_PORT (all addresses; the kubeconfigs name
# 127.0.0.1), storing in etcd, with the certificates of pki.sh: client-CA
# authentication, request-header (front-proxy) authentication for aggregated
# APIs, service-account issuer and signing keys, admission plugins default +
# NodeRestriction, authorization Node,RBAC, and --enable-aggregator-routing
# (webhook and aggregated-API pods are reached on their pod IPs). Its log is
# bin/local-cluster/logs/kube-apiserver.log.
#
#   apiserver_up      start it unless it runs; wait until /readyz answers
#   apiserver_ready   whether /readyz answers ok (with the admin certificate)
#   apiserver_down    stop it
#
# Sourced by hack/local-cluster.sh after lib.sh; runs nothing on its own.

apiserver_ready() {
  curl -sf --max-time 5 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "https://127.0.0.1:$APISERVER_PORT/readyz" | grep -q ok
}

apiserver_up() {
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
}

apiserver_down() {
  stop kube-apiserver
}
