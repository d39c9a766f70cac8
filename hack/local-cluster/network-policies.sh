# shellcheck shell=bash
# network-policies.sh: NetworkPolicy enforcement for the local cluster, with
# SIG Network's reference implementation, sigs.k8s.io/kube-network-policies.
# Sourced by hack/local-cluster.sh (it uses log, die, start, stop, pid_of,
# wait_for, kubectl_ and the settings of lib.sh); not run on its own.
#
#   netpol_build   build the binary into bin/local-cluster/tools when missing
#                  (from the Go module proxy; about 2 minutes cold on two cores)
#   netpol_up      its ServiceAccount and RBAC, its token, the process, the packet hook
#   netpol_down    the hook first, then the process
#   netpol_status  one line for `status`
#
# How it runs here. kube-network-policies watches pods, namespaces and
# NetworkPolicies and decides every new connection of a pod that it gets from
# the kernel's NFQUEUE (queue NETPOL_QUEUE). It is meant to hand those packets
# to itself with an nftables table whose rules end in the `queue` statement,
# but this kernel is built without CONFIG_NFT_QUEUE: the `queue` expression
# does not exist (`nft add rule ... queue num 100` fails with "No such file or
# directory") and its table is refused as a whole. The kernel does have the
# NFQUEUE queue itself (CONFIG_NETFILTER_NETLINK_QUEUE) and the xtables NFQUEUE
# target (CONFIG_NETFILTER_XT_TARGET_NFQUEUE), which iptables-nft uses. So this
# script installs the same hook with iptables, in the chain NETPOL_CHAIN of the
# mangle table's POSTROUTING (before the bridge plugin's SNAT, where the
# upstream chain sits too): traffic of the node's root user and packets of
# established connections pass, every other packet from or to the pod CIDR
# goes to the queue. Its rules match the upstream table's, except that they
# queue every pod's packets rather than only those of pods some policy
# selects (kube-network-policies accepts the others itself). The queue has no
# bypass: when kube-network-policies is not listening, new pod connections are
# dropped (fail closed), as upstream's default (--fail-open=false).
#
# The binary reads its API credentials in-cluster only (the ServiceAccount
# token file under /var/run/secrets): it runs in a mount namespace of its
# own, where a tmpfs over /run holds the token of ServiceAccount
# kube-system/kube-network-policies; the host's /run is untouched.
#
# On by default; LC_NETWORK_POLICIES=0 switches it off, and policies are then
# stored, not enforced (the e2e's network cases fail then; docs/e2e.md).

NETPOL_VERSION=${LC_NETPOL_VERSION:-v0.8.0}
NETPOL=${LC_NETWORK_POLICIES:-1}
NETPOL_QUEUE=${LC_NETPOL_QUEUE:-100}
NETPOL_CHAIN=LOCAL-CLUSTER-NETPOL
NETPOL_METRICS=${LC_NETPOL_METRICS:-127.0.0.1:10281}

netpol_build() {
  [ "$NETPOL" = 1 ] || return 0
  if [ -x "$TOOLS/kube-network-policies" ] && [ -f "$TOOLS/.kube-network-policies-$NETPOL_VERSION" ]; then
    return 0
  fi
  log "building kube-network-policies $NETPOL_VERSION from the Go module proxy (about 2 minutes the first time)"
  local out
  out=$(mktemp -d)
  GOBIN="$out" GOWORK=off CGO_ENABLED=0 GOFLAGS=-mod=mod go install -trimpath -ldflags "-s -w" \
    "sigs.k8s.io/kube-network-policies/cmd@$NETPOL_VERSION" >"$LOGS/kube-network-policies-build.log" 2>&1 ||
    { tail -n 20 "$LOGS/kube-network-policies-build.log" >&2; rm -rf "$out"; die "building kube-network-policies failed"; }
  mv "$out/cmd" "$TOOLS/kube-network-policies"
  rm -rf "$out"
  rm -f "$TOOLS"/.kube-network-policies-*
  touch "$TOOLS/.kube-network-policies-$NETPOL_VERSION"
}

# netpol_token writes the ServiceAccount's token (a service-account-token
# Secret, filled by kube-controller-manager) to $STATE/network-policies.
netpol_token() {
  local dir="$STATE/network-policies" tok
  mkdir -p "$dir"
  chmod 700 "$dir"
  kubectl_ apply -f - >/dev/null <<'EOF' || die "could not apply the RBAC of kube-network-policies"
apiVersion: v1
kind: ServiceAccount
metadata: {name: kube-network-policies, namespace: kube-system}
---
apiVersion: v1
kind: Secret
type: kubernetes.io/service-account-token
metadata:
  name: kube-network-policies-token
  namespace: kube-system
  annotations: {kubernetes.io/service-account.name: kube-network-policies}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: kube-network-policies}
rules:
- apiGroups: [""]
  resources: [pods, namespaces]
  verbs: [list, watch]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: kube-network-policies}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kube-network-policies}
subjects:
- {kind: ServiceAccount, name: kube-network-policies, namespace: kube-system}
EOF
  wait_for "the token of kube-network-policies" 60 \
    bash -c "[ -n \"\$(\"$ASSETS/kubectl\" --kubeconfig \"$ADMIN_KUBECONFIG\" -n kube-system get secret kube-network-policies-token -o jsonpath='{.data.token}')\" ]" ||
    die "kube-controller-manager did not fill Secret kube-system/kube-network-policies-token"
  tok=$(kubectl_ -n kube-system get secret kube-network-policies-token -o jsonpath='{.data.token}' | base64 -d)
  (umask 077 && printf '%s' "$tok" >"$dir/token.tmp" && mv "$dir/token.tmp" "$dir/token")
  cp "$PKI/ca.crt" "$dir/ca.crt"
  printf kube-system >"$dir/namespace"
}

netpol_listening() { awk -v q="$NETPOL_QUEUE" '$1 == q && $2 != 0 {found = 1} END {exit !found}' /proc/net/netfilter/nfnetlink_queue; }

netpol_hook_up() {
  iptables -w -t mangle -N "$NETPOL_CHAIN" 2>/dev/null || iptables -w -t mangle -F "$NETPOL_CHAIN"
  iptables -w -t mangle -A "$NETPOL_CHAIN" -m owner --uid-owner 0 -j RETURN
  iptables -w -t mangle -A "$NETPOL_CHAIN" -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
  iptables -w -t mangle -A "$NETPOL_CHAIN" -s "$POD_CIDR" -j NFQUEUE --queue-num "$NETPOL_QUEUE"
  iptables -w -t mangle -A "$NETPOL_CHAIN" -d "$POD_CIDR" -j NFQUEUE --queue-num "$NETPOL_QUEUE"
  iptables -w -t mangle -C POSTROUTING -j "$NETPOL_CHAIN" 2>/dev/null || iptables -w -t mangle -I POSTROUTING 1 -j "$NETPOL_CHAIN"
}

netpol_hook_down() {
  while iptables -w -t mangle -C POSTROUTING -j "$NETPOL_CHAIN" 2>/dev/null; do
    iptables -w -t mangle -D POSTROUTING -j "$NETPOL_CHAIN" || break
  done
  if iptables -w -t mangle -F "$NETPOL_CHAIN" 2>/dev/null; then iptables -w -t mangle -X "$NETPOL_CHAIN" 2>/dev/null || true; fi
}

netpol_up() {
  if [ "$NETPOL" != 1 ]; then
    log "NetworkPolicy enforcement is off (LC_NETWORK_POLICIES=$NETPOL): policies are stored, not enforced"
    # One an earlier `up` started goes too, so that status tells the truth.
    netpol_down
    return 0
  fi
  netpol_token
  local dir="$STATE/network-policies"
  # The inner shell runs in the new mount namespace and becomes the binary.
  # shellcheck disable=SC2016 # expanded by the inner shell
  start kube-network-policies "$(command -v unshare)" --mount --propagation private bash -c '
      set -e
      mount -t tmpfs -o mode=0755,size=1m local-cluster-netpol /run
      mkdir -p /run/secrets/kubernetes.io/serviceaccount
      cp "$1"/token "$1"/ca.crt "$1"/namespace /run/secrets/kubernetes.io/serviceaccount/
      export KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT="$2"
      shift 2
      exec "$@"' netpol "$dir" "$APISERVER_PORT" "$TOOLS/kube-network-policies" \
    --hostname-override "$NODE_NAME" --nfqueue-id "$NETPOL_QUEUE" --disable-nri \
    --netfilter-bug-1766-fix=false --metrics-bind-address "$NETPOL_METRICS" --v=1
  wait_for "kube-network-policies on NFQUEUE $NETPOL_QUEUE" 60 netpol_listening ||
    { tail -n 30 "$LOGS/kube-network-policies.log" >&2; die "kube-network-policies does not listen on its queue; see $LOGS/kube-network-policies.log"; }
  netpol_hook_up
  log "NetworkPolicy enforced by kube-network-policies $NETPOL_VERSION (NFQUEUE $NETPOL_QUEUE, iptables chain $NETPOL_CHAIN)"
}

netpol_down() {
  netpol_hook_down
  stop kube-network-policies 15
}

netpol_status() {
  local pid
  if pid=$(pid_of kube-network-policies); then
    printf '%-24s running (pid %s)%s\n' kube-network-policies "$pid" "$(iptables -w -t mangle -C POSTROUTING -j "$NETPOL_CHAIN" 2>/dev/null && echo ', hook installed' || echo ', NO HOOK')"
  elif [ "$NETPOL" = 1 ]; then
    printf '%-24s stopped\n' kube-network-policies
    return 1
  else
    printf '%-24s off (LC_NETWORK_POLICIES=%s: policies are stored, not enforced)\n' kube-network-policies "$NETPOL"
  fi
}
