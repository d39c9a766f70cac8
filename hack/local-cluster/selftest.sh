#!/usr/bin/env bash
# selftest.sh checks a running local cluster end to end (run it through
# `hack/local-cluster.sh selftest`, which sets KUBECTL, KUBECONFIG and the
# cluster's settings):
#
#   1. an echo pod (local/echo:dev, imagePullPolicy Never) runs and gets an IP;
#   2. the host reaches it over the pod bridge (pod IP);
#   3. the host reaches it through a ClusterIP Service (kube-proxy's DNAT)
#      and a NodePort on the node's own address;
#   4. a second pod reaches the first over the bridge (pod IP) and through the
#      Service (pod -> ClusterIP -> pod), via `kubectl exec`;
#   5. a pod reaches the API server through the `kubernetes` Service;
#   5a. with a cluster DNS (CLUSTER_DNS), a pod resolves the Service's short
#      name (search domains) and the kubernetes Service's full name, and a
#      name outside the cluster does not resolve (no forwarding);
#   6. an image that was never imported fails at once: pulls go to a closed
#      loopback port, never off the machine.
#
# Every address it connects to is checked first to be the node's own, a pod
# IP in the pod range or a ClusterIP in the service range: no traffic leaves
# this machine. It removes what it made, also when a check fails.
set -euo pipefail

: "${KUBECTL:?}" "${KUBECONFIG:?}" "${NODE_IP:?}" "${POD_CIDR:?}" "${SERVICE_CIDR:?}"
export KUBECONFIG
NS=local-cluster-selftest
pass=0
fail=0

say() { printf '[selftest] %s\n' "$*" >&2; }
k() { "$KUBECTL" "$@"; }
ok() { pass=$((pass + 1)); say "PASS $*"; }
bad() { fail=$((fail + 1)); say "FAIL $*"; }

ip2int() { local IFS=. a b c d; read -r a b c d <<<"$1"; echo $(((a << 24) + (b << 16) + (c << 8) + d)); }
in_cidr() { # in_cidr IP CIDR
  local ip net bits mask
  ip=$(ip2int "$1") net=$(ip2int "${2%/*}") bits=${2#*/}
  mask=$(((0xffffffff << (32 - bits)) & 0xffffffff))
  (((ip & mask) == (net & mask)))
}
# local_target IP: the node itself, or a pod or service address of this cluster.
local_target() {
  [ "$1" = "$NODE_IP" ] || [ "$1" = 127.0.0.1 ] || in_cidr "$1" "$POD_CIDR" || in_cidr "$1" "$SERVICE_CIDR" ||
    { say "refusing to connect to $1: not an address of this cluster"; exit 1; }
}
fetch() { # fetch IP PORT PATH: curl from the host, bounded
  local_target "$1"
  curl -sS --max-time 5 --retry 5 --retry-delay 1 --retry-all-errors "http://$1:$2$3"
}

cleanup() {
  k delete namespace "$NS" --ignore-not-found --wait=false >/dev/null 2>&1 || true
}
trap cleanup EXIT

k delete namespace "$NS" --ignore-not-found --wait=true --timeout=120s >/dev/null
k create namespace "$NS" >/dev/null
# The namespace's ServiceAccount comes from kube-controller-manager.
for _ in $(seq 60); do k -n "$NS" get serviceaccount default >/dev/null 2>&1 && break; sleep 1; done

k apply -n "$NS" -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: echo
  labels: {app: echo}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: echo
    image: local/echo:dev
    imagePullPolicy: Never
    ports: [{containerPort: 8080, name: http}]
    readinessProbe:
      httpGet: {path: /healthz, port: http}
      periodSeconds: 2
---
apiVersion: v1
kind: Pod
metadata:
  name: client
  labels: {app: client}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: client
    image: local/echo:dev
    imagePullPolicy: Never
    args: ["-listen", ":8081"]
---
apiVersion: v1
kind: Service
metadata:
  name: echo
spec:
  selector: {app: echo}
  ports: [{port: 80, targetPort: http, name: http}]
---
apiVersion: v1
kind: Service
metadata:
  name: echo-nodeport
spec:
  type: NodePort
  selector: {app: echo}
  ports: [{port: 80, targetPort: http, name: http}]
EOF

start=$(date +%s)
if k -n "$NS" wait pod/echo pod/client --for=condition=Ready --timeout=180s >/dev/null; then
  ok "two echo pods Running and Ready in $(($(date +%s) - start))s"
else
  k -n "$NS" describe pods >&2 || true
  bad "pods did not become Ready"
  exit 1
fi
echo_ip=$(k -n "$NS" get pod echo -o jsonpath='{.status.podIP}')
client_ip=$(k -n "$NS" get pod client -o jsonpath='{.status.podIP}')
svc_ip=$(k -n "$NS" get svc echo -o jsonpath='{.spec.clusterIP}')
node_port=$(k -n "$NS" get svc echo-nodeport -o jsonpath='{.spec.ports[0].nodePort}')
kube_ip=$(k -n default get svc kubernetes -o jsonpath='{.spec.clusterIP}')
say "echo pod $echo_ip, client pod $client_ip, Service echo $svc_ip:80, NodePort $NODE_IP:$node_port"
if in_cidr "$echo_ip" "$POD_CIDR" && in_cidr "$client_ip" "$POD_CIDR"; then ok "pod IPs are in the pod range $POD_CIDR"; else bad "pod IPs outside $POD_CIDR"; fi

if out=$(fetch "$echo_ip" 8080 /host-to-pod) && grep -q 'hostname: echo' <<<"$out"; then
  ok "host -> pod IP $echo_ip:8080 over the bridge"
else bad "host -> pod IP: $out"; fi

# The Service's endpoints must be programmed by kube-proxy first.
for _ in $(seq 30); do
  [ -n "$(k -n "$NS" get endpointslices -l kubernetes.io/service-name=echo -o jsonpath='{.items[*].endpoints[*].addresses[*]}')" ] && break
  sleep 1
done
if out=$(fetch "$svc_ip" 80 /host-to-service) && grep -q 'hostname: echo' <<<"$out"; then
  ok "host -> ClusterIP $svc_ip:80 through kube-proxy"
else bad "host -> ClusterIP: $out"; fi

if out=$(fetch "$NODE_IP" "$node_port" /host-to-nodeport) && grep -q 'hostname: echo' <<<"$out"; then
  ok "host -> NodePort $NODE_IP:$node_port"
else bad "host -> NodePort: $out"; fi

local_target "$echo_ip"
if out=$(k -n "$NS" exec client -- /echo -get "http://$echo_ip:8080/pod-to-pod" 2>&1) &&
  grep -q "remote: $client_ip:" <<<"$out"; then
  ok "pod -> pod IP $echo_ip:8080 over the bridge (seen from $client_ip)"
else bad "pod -> pod: $out"; fi

local_target "$svc_ip"
if out=$(k -n "$NS" exec client -- /echo -get "http://$svc_ip/pod-to-service" 2>&1) &&
  grep -q 'hostname: echo' <<<"$out"; then
  ok "pod -> ClusterIP $svc_ip:80 -> pod"
else bad "pod -> ClusterIP: $out"; fi

local_target "$kube_ip"
if out=$(k -n "$NS" exec client -- /echo -k -get "https://$kube_ip/readyz" 2>&1) && grep -q '^ok' <<<"$out"; then
  ok "pod -> kubernetes Service $kube_ip:443 -> kube-apiserver"
else bad "pod -> apiserver: $out"; fi

if [ -n "${CLUSTER_DNS:-}" ]; then
  if out=$(k -n "$NS" exec client -- /echo -resolve echo 2>&1) && [ "$out" = "$svc_ip" ]; then
    ok "pod resolves the Service name echo to $svc_ip (CoreDNS at $CLUSTER_DNS, search domains)"
  else bad "pod -> DNS echo: $out"; fi
  if out=$(k -n "$NS" exec client -- /echo -resolve kubernetes.default.svc.cluster.local 2>&1) && [ "$out" = "$kube_ip" ]; then
    ok "pod resolves kubernetes.default.svc.cluster.local to $kube_ip"
  else bad "pod -> DNS kubernetes: $out"; fi
  if out=$(k -n "$NS" exec client -- /echo -resolve dossierguard.example. 2>&1); then
    bad "pod resolved a name outside the cluster: $out"
  else
    ok "a name outside the cluster does not resolve ($(tail -n 1 <<<"$out" | head -c 100))"
  fi
fi

# An image that is not imported: the pull must fail against the loopback.
k apply -n "$NS" -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: missing-image
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: missing
    image: local/not-imported:dev
    imagePullPolicy: IfNotPresent
EOF
msg=""
for _ in $(seq 60); do
  msg=$(k -n "$NS" get events --field-selector involvedObject.name=missing-image -o jsonpath='{.items[*].message}' 2>/dev/null)
  grep -q '127.0.0.1:9' <<<"$msg" && break
  sleep 1
done
if grep -q '127.0.0.1:9' <<<"$msg"; then
  ok "a missing image is pulled from nowhere but the loopback (127.0.0.1:9)"
else bad "pull of a missing image: ${msg:-no event}"; fi

say "$pass passed, $fail failed"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
