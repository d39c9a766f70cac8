# shellcheck shell=bash
# kubelet.sh: the node. It owns the kubelet as a host process (configuration
# bin/local-cluster/kubelet.yaml from kubelet.yaml.in: cgroupfs driver,
# failCgroupV1: false, client-CA authentication, webhook authorization,
# clusterDNS LC_CLUSTER_DNS, image garbage collection off; root folder
# bin/local-cluster/kubelet, container logs in bin/local-cluster/pod-logs),
# the pods' cgroup /local-cluster in every hierarchy, waiting for the node
# to be Ready, the smoke-test pod, and on `down` what the kubelet leaves
# outside the state folder: the empty pod cgroups, the log links in
# /var/log/containers, its device-plugin socket in
# /var/lib/kubelet/device-plugins and its iptables chains (KUBE-FIREWALL,
# KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT; both only when no other kubelet
# runs on this machine). Its log is bin/local-cluster/logs/kubelet.log.
#
#   kubelet_up          the cgroups, the configuration; start it unless it runs
#   kubelet_wait_ready  wait up to LC_TIMEOUT seconds for the node to be Ready
#   smoke_test          a pause pod runs and gets an IP; then it is deleted
#   kubepods_pids       the processes in this cluster's pod cgroups
#   kubelet_down        stop it
#   kubelet_cleanup     after the pods are gone: cgroups, log links, device plugin
#   kubelet_iptables_down  its iptables chains
#
# Sourced by hack/local-cluster.sh after lib.sh; runs nothing on its own.

# Processes in this cluster's pod cgroups (/local-cluster in every hierarchy).
kubepods_pids() {
  local d
  for d in /sys/fs/cgroup/*/"$CGROUP_ROOT" /sys/fs/cgroup/"$CGROUP_ROOT"; do
    if [ -d "$d" ]; then find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null || true; fi
  done | sort -un
}

# cgroups_up makes the kubelet's cgroupRoot in every cgroup v1 hierarchy (the
# kubelet refuses a cgroupRoot that does not exist); a new cpuset cgroup needs
# the parent's cpus and mems before anything can join it.
cgroups_up() {
  local h
  for h in /sys/fs/cgroup/*/; do
    [ -f "$h/cgroup.procs" ] || continue
    mkdir -p "$h$CGROUP_ROOT"
    if [ -f "$h/cpuset.cpus" ]; then
      [ -n "$(cat "$h$CGROUP_ROOT/cpuset.cpus")" ] || cat "$h/cpuset.cpus" >"$h$CGROUP_ROOT/cpuset.cpus"
      [ -n "$(cat "$h$CGROUP_ROOT/cpuset.mems")" ] || cat "$h/cpuset.mems" >"$h$CGROUP_ROOT/cpuset.mems"
    fi
  done
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then mkdir -p "/sys/fs/cgroup/$CGROUP_ROOT"; fi
}

kubelet_up() {
  mkdir -p "$STATE/kubelet" "$STATE/pod-logs"
  cgroups_up
  render "$HERE/kubelet.yaml.in" "$STATE/kubelet.yaml"
  PATH="$TOOLS:$PATH" start kubelet "$ASSETS/kubelet" \
    --config "$STATE/kubelet.yaml" --kubeconfig "$KCFG/kubelet.kubeconfig" \
    --root-dir "$STATE/kubelet" --cert-dir "$STATE/kubelet/pki" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --v=1
}

node_ready() {
  [ "$(kubectl_ get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

kubelet_wait_ready() {
  log "waiting for node $NODE_NAME to be Ready"
  wait_for "node $NODE_NAME Ready" "$TIMEOUT" node_ready || {
    kubectl_ describe node "$NODE_NAME" 2>&1 | tail -n 30 >&2
    die "the node is not Ready; see $LOGS/kubelet.log"
  }
  log "node $NODE_NAME is Ready (pod CIDR $(kubectl_ get node "$NODE_NAME" -o jsonpath='{.spec.podCIDR}'))"
}

# smoke_test runs a pause pod in kube-system, which admission webhooks leave
# alone (the chart's pod webhook excludes it, as webhooks should): a webhook
# kept in etcd from an earlier install, whose pods have not started yet,
# would refuse the pod in any other namespace, with failurePolicy Fail.
smoke_test() {
  local pod=local-cluster-smoke ns=kube-system ip
  wait_for "the default ServiceAccount" 120 kubectl_ -n "$ns" get serviceaccount default || die "no default ServiceAccount in $ns (kube-controller-manager?)"
  kubectl_ -n "$ns" delete pod "$pod" --ignore-not-found --wait=true >/dev/null
  kubectl_ apply -f - >/dev/null <<EOF || die "could not create the test pod $ns/$pod (the apiserver's answer is above)"
apiVersion: v1
kind: Pod
metadata:
  name: $pod
  namespace: $ns
  labels: {app.kubernetes.io/name: local-cluster-smoke}
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 2
  containers:
  - name: pause
    image: local/pause:dev
    imagePullPolicy: Never
EOF
  log "waiting for the test pod $ns/$pod to run"
  if ! kubectl_ -n "$ns" wait pod "$pod" --for=condition=Ready --timeout=180s >/dev/null; then
    kubectl_ -n "$ns" describe pod "$pod" | tail -n 20 >&2
    die "the test pod did not start; see $LOGS/kubelet.log and $LOGS/containerd.log"
  fi
  ip=$(kubectl_ -n "$ns" get pod "$pod" -o jsonpath='{.status.podIP}')
  [ -n "$ip" ] || die "the test pod has no IP"
  log "test pod $ns/$pod is Running with IP $ip"
  kubectl_ -n "$ns" delete pod "$pod" --wait=false >/dev/null
}

kubelet_down() {
  stop kubelet
}

kubelet_cleanup() {
  # The (now empty) pod cgroups.
  local d
  for d in /sys/fs/cgroup/*/"$CGROUP_ROOT" /sys/fs/cgroup/"$CGROUP_ROOT"; do
    if [ -d "$d" ]; then find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true; fi
  done
  find /var/log/containers -maxdepth 1 -type l -lname "$STATE/*" -delete 2>/dev/null || true
  # The kubelet's device-plugin socket has a fixed path (not under --root-dir).
  if ! pgrep -x kubelet >/dev/null; then
    rm -f /var/lib/kubelet/device-plugins/kubelet.sock /var/lib/kubelet/device-plugins/kubelet_internal_checkpoint
    rmdir /var/lib/kubelet/device-plugins /var/lib/kubelet 2>/dev/null || true
  fi
  rmdir /var/log/containers 2>/dev/null || true
}

# The kubelet's own chains, unless another kubelet on this machine uses them.
kubelet_iptables_down() {
  pgrep -x kubelet >/dev/null && return 0
  local table chain rule
  for table in filter nat mangle; do
    for chain in KUBE-FIREWALL KUBE-KUBELET-CANARY KUBE-IPTABLES-HINT; do
      iptables -w -t "$table" -S "$chain" >/dev/null 2>&1 || continue
      while read -r rule; do
        [ -z "$rule" ] || eval "iptables -w -t $table ${rule/#-A/-D}" || true
      done < <(iptables -w -t "$table" -S 2>/dev/null | grep -- "-j $chain\$" || true)
      iptables -w -t "$table" -F "$chain" 2>/dev/null || true
      iptables -w -t "$table" -X "$chain" 2>/dev/null || true
    done
  done
}
