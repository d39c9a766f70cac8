# shellcheck shell=bash
# cni.sh: the pod network on the host. It owns the CNI configuration
# (bridge LC_BRIDGE + host-local + portmap from /usr/lib/cni, rendered by
# containerd from bin/local-cluster/cni/conflist.tmpl once the node has a
# pod CIDR; host-local's data in bin/local-cluster/cni/networks); the
# sysctls net.ipv4.ip_forward=1 and net.bridge.bridge-nf-call-iptables=1
# (old values kept in run/sysctl.saved and restored by `down`); the egress
# guard (LC_EGRESS_GUARD): the bridge LC_GUARD_BRIDGE holding the service
# and pod ranges' routes, and the iptables chain LOCAL-CLUSTER-EGRESS, first
# in FORWARD, which rejects whatever a pod sends off the pod bridge; and on
# `down` what the CNI plugins leave: the result cache in /var/lib/cni/results,
# the bridges, the plugins' CNI-* NAT chains.
#
#   cni_up        the sysctls and the egress guard
#   cni_config    the CNI configuration containerd reads (called by containerd_up); its
#                 dataDir, and that of a conflist an earlier `up` left, is the state
#                 folder's physical path
#   cni_cleanup   the result cache entries and host-local's data, after the pods are gone
#   cni_down      the guard, the bridges, leftover CNI-* chains; restores the sysctls
#
# Sourced by hack/local-cluster.sh after lib.sh; runs nothing on its own.

GUARD_CHAIN=LOCAL-CLUSTER-EGRESS

sysctl_set() { # sysctl_set KEY VALUE, remembering the old value for down
  local key=$1 val=$2 path old
  path="/proc/sys/${key//.//}"
  [ -f "$path" ] || { log "note: $key does not exist on this kernel"; return 0; }
  old=$(cat "$path")
  grep -q "^$key=" "$RUN/sysctl.saved" 2>/dev/null || echo "$key=$old" >>"$RUN/sysctl.saved"
  [ "$old" = "$val" ] || echo "$val" >"$path"
}

cni_up() {
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

# containerd renders the conflist into cni/net.d once, at the first `up`
# (it keeps a configuration it finds there), with the state folder's path
# as it was then: perhaps another checkout's (bin/local-cluster may be a
# symlink several share), one that may be gone, whose path host-local would
# then recreate, so that `down` cleans the wrong folder. So host-local's
# dataDir names the state folder's physical path, in the template and,
# while containerd is stopped (no pod holds an address), in a conflist an
# earlier `up` left.
cni_config() {
  mkdir -p "$STATE/cni/net.d" "$STATE/cni/networks"
  render "$HERE/cni.conflist.tmpl.in" "$STATE/cni/conflist.tmpl"
  cni_follow_state "$STATE/cni/conflist.tmpl"
  pid_of containerd >/dev/null && return 0
  local f
  for f in "$STATE"/cni/net.d/*.conflist; do
    [ ! -f "$f" ] || cni_follow_state "$f"
  done
}

# cni_follow_state FILE sets host-local's dataDir in FILE to the physical
# path of $STATE/cni/networks, leaving the rest as it is.
cni_follow_state() {
  local want
  want="$(cd "$STATE" && pwd -P)/cni/networks"
  grep -Fq "\"dataDir\": \"$want\"" "$1" && return 0
  case "$1" in *.conflist) log "pointing host-local's dataDir in ${1#"$STATE"/} at $want" ;; esac
  sed -E "s|(\"dataDir\": *)\"[^\"]*\"|\1\"$want\"|" "$1" >"$1.tmp"
  mv "$1.tmp" "$1"
}

cni_cleanup() {
  rm -f /var/lib/cni/results/local-cluster-* 2>/dev/null || true
  local sb
  for sb in "$STATE"/containerd/root/io.containerd.grpc.v1.cri/sandboxes/*; do
    if [ -d "$sb" ]; then rm -f /var/lib/cni/results/*-"$(basename "$sb")"-* 2>/dev/null || true; fi
  done
  rmdir /var/lib/cni/results /var/lib/cni 2>/dev/null || true
  rm -rf "$STATE/cni/networks"
}

cni_down() {
  if iptables -w -C FORWARD -j "$GUARD_CHAIN" 2>/dev/null; then
    iptables -w -D FORWARD -j "$GUARD_CHAIN" || true
  fi
  if iptables -w -F "$GUARD_CHAIN" 2>/dev/null; then iptables -w -X "$GUARD_CHAIN" 2>/dev/null || true; fi
  local dev
  for dev in "$BRIDGE" "$GUARD"; do
    if ip link show "$dev" >/dev/null 2>&1; then
      log "deleting network interface $dev"
      ip link del "$dev" || true
    fi
  done
  # Chains the bridge plugin's ipMasq and portmap leave when a pod's CNI DEL
  # never ran (containers killed without the runtime).
  local chain rule
  for chain in $(iptables -w -t nat -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^CNI-/ {print $2}' || true); do
    if iptables -w -t nat -S "$chain" 2>/dev/null | grep -q 'name: \\"local-cluster\\"\|name: "local-cluster"'; then
      while read -r rule; do
        [ -z "$rule" ] || eval "iptables -w -t nat ${rule/#-A/-D}" || true
      done < <(iptables -w -t nat -S POSTROUTING 2>/dev/null | grep -- "-j $chain\$" || true)
      iptables -w -t nat -F "$chain" || true
      iptables -w -t nat -X "$chain" || true
    fi
  done
  if [ -f "$RUN/sysctl.saved" ]; then
    local kv
    while IFS= read -r kv; do
      [ -n "$kv" ] || continue
      echo "${kv#*=}" >"/proc/sys/$(echo "${kv%%=*}" | tr . /)" 2>/dev/null || true
    done <"$RUN/sysctl.saved"
    rm -f "$RUN/sysctl.saved"
  fi
}
