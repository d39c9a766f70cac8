# shellcheck shell=bash
# dns.sh: the local cluster's DNS, CoreDNS as a pod in kube-system behind the
# Service kube-dns at CLUSTER_DNS (10.96.0.10, the kubelet's clusterDNS).
# Sourced by hack/local-cluster.sh (it uses log, die, wait_for, kubectl_ and
# the settings of lib.sh, ctr_ and import_image of containerd.sh,
# build_module_tools of build.sh); not run on its own.
#
#   dns_build    build CoreDNS (hack/local-cluster/coredns, pinned in its
#                go.mod, from the Go module proxy) and its image when missing
#   dns_up       import the image; RBAC, Corefile, Deployment and Service;
#                wait until it answers for kubernetes.default
#   dns_status   one line for `status`
#
# `down` needs nothing of its own: CoreDNS is a pod, stopped with the others.
#
# What it answers. The binary holds only the plugins errors, health, ready,
# kubernetes and cache (hack/local-cluster/coredns/main.go): no forward
# plugin, so no query can leave this machine. The only server block is for
# cluster.local and the reverse zones, from the API (Services, their
# EndpointSlices, headless Services' pods); a name in any other zone gets
# REFUSED (CoreDNS answers so for a zone it has no block for), a name in
# cluster.local that does not exist NXDOMAIN.
#
# Why a pod and not a host process. With NetworkPolicy enforced, a store's
# workload may send to port 53 only (the operator's isolation policy: egress
# to UDP and TCP 53, to any peer). kube-proxy turns 10.96.0.10:53 into the
# CoreDNS pod's address and port 53, which that rule admits, as in a real
# cluster. A host process would have had to listen on the node's address
# (another port, since 53 may be the host's), which a policy-enforcing
# network plugin would treat differently. The pod listens on 53 as a
# non-root user: net.ipv4.ip_unprivileged_port_start=0, a namespaced sysctl
# the kubelet allows by default.

DNS_COREDNS_VERSION=$(awk '$1 == "require" && $2 == "github.com/coredns/coredns" {print $3}' "$HERE/coredns/go.mod")
DNS_IMAGE=docker.io/local/coredns:dev

dns_enabled() { [ -n "$CLUSTER_DNS" ]; }

dns_build() {
  dns_enabled || return 0
  if [ ! -x "$TOOLS/coredns" ]; then
    log "building CoreDNS $DNS_COREDNS_VERSION (kubernetes plugin, no forwarding) from the Go module proxy (2.5 min of CPU the first time; 9 min under load)"
  fi
  build_module_tools "$HERE/coredns" coredns
  if [ ! -f "$TOOLS/images/coredns.tar" ] || [ "$TOOLS/coredns" -nt "$TOOLS/images/coredns.tar" ]; then
    "$TOOLS/mkimage" -binary "$TOOLS/coredns" -tag local/coredns:dev -user 65532:65532 -expose 53/udp -expose 53/tcp \
      -out "$TOOLS/images/coredns.tar" -- -conf /etc/coredns/Corefile
  fi
}

dns_import() {
  if ! ctr_ images ls -q | grep -qx "$DNS_IMAGE" || [ "$TOOLS/images/coredns.tar" -nt "$STATE/containerd/.coredns-imported" ]; then
    import_image "$TOOLS/images/coredns.tar"
    touch "$STATE/containerd/.coredns-imported"
  fi
}

# dns_manifest [DIGEST] prints the objects: upstream's RBAC for CoreDNS
# (system:coredns), the Corefile, one replica and the kube-dns Service.
dns_manifest() {
  cat <<EOF
apiVersion: v1
kind: ServiceAccount
metadata: {name: coredns, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:coredns"}
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:coredns"}
subjects:
- {kind: ServiceAccount, name: coredns, namespace: kube-system}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: coredns, namespace: kube-system}
data:
  Corefile: |
    # cluster.local and the reverse zones only; every other zone: REFUSED.
    # This build has no forward plugin (hack/local-cluster/coredns).
    cluster.local:53 in-addr.arpa:53 ip6.arpa:53 {
        errors
        health :8080 {
            lameduck 2s
        }
        ready :8181
        kubernetes cluster.local in-addr.arpa ip6.arpa {
            ttl 30
        }
        cache 30
    }
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: coredns
  namespace: kube-system
  labels: {k8s-app: kube-dns}
spec:
  replicas: 1
  selector:
    matchLabels: {k8s-app: kube-dns}
  template:
    metadata:
      labels: {k8s-app: kube-dns}
      # The Corefile's and the image's digest: a change rolls the pod.
      annotations: {local-cluster/config: "${1:-}"}
    spec:
      serviceAccountName: coredns
      priorityClassName: system-cluster-critical
      # Its own resolv.conf does not matter: it forwards nowhere.
      dnsPolicy: Default
      terminationGracePeriodSeconds: 5
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        seccompProfile: {type: RuntimeDefault}
        sysctls:
        - {name: net.ipv4.ip_unprivileged_port_start, value: "0"}
      containers:
      - name: coredns
        image: local/coredns:dev
        imagePullPolicy: Never
        args: [-conf, /etc/coredns/Corefile]
        ports:
        - {name: dns, containerPort: 53, protocol: UDP}
        - {name: dns-tcp, containerPort: 53, protocol: TCP}
        readinessProbe:
          httpGet: {path: /ready, port: 8181}
          periodSeconds: 2
        livenessProbe:
          httpGet: {path: /health, port: 8080}
          periodSeconds: 10
          failureThreshold: 5
        resources:
          requests: {cpu: 20m, memory: 32Mi}
          limits: {memory: 128Mi}
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities: {drop: [ALL]}
        volumeMounts:
        - {name: config, mountPath: /etc/coredns, readOnly: true}
      volumes:
      - name: config
        configMap: {name: coredns}
---
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns, kubernetes.io/name: CoreDNS}
spec:
  clusterIP: $CLUSTER_DNS
  selector: {k8s-app: kube-dns}
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: 53}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
EOF
}

# dns_answers asks the kube-dns Service itself (through kube-proxy, from the
# node) for the kubernetes Service's name; it must be KUBERNETES_SVC_IP.
dns_answers() {
  [ "$("$TOOLS/echo" -resolve kubernetes.default.svc.cluster.local. -dns "$CLUSTER_DNS:53" -timeout 2s 2>/dev/null)" = "$KUBERNETES_SVC_IP" ]
}

dns_up() {
  if ! dns_enabled; then
    log "no cluster DNS (LC_CLUSTER_DNS is empty)"
    return 0
  fi
  dns_import
  local sum
  sum=$({ dns_manifest; cat "$TOOLS/images/coredns.tar"; } | sha256sum | cut -c1-16)
  dns_manifest "$sum" | kubectl_ apply -f - >/dev/null || die "could not apply CoreDNS (kube-system/coredns, Service kube-dns)"
  log "waiting for CoreDNS to answer at $CLUSTER_DNS"
  kubectl_ -n kube-system rollout status deployment coredns --timeout=120s >/dev/null ||
    { kubectl_ -n kube-system describe pods -l k8s-app=kube-dns | tail -n 20 >&2; die "CoreDNS did not become Ready"; }
  wait_for "kubernetes.default.svc.cluster.local from $CLUSTER_DNS" 60 dns_answers ||
    die "CoreDNS runs, but $CLUSTER_DNS does not resolve kubernetes.default.svc.cluster.local to $KUBERNETES_SVC_IP"
  log "cluster DNS: CoreDNS $DNS_COREDNS_VERSION at $CLUSTER_DNS (cluster.local only; other zones REFUSED)"
}

dns_status() {
  if ! dns_enabled; then
    printf '%-24s off (LC_CLUSTER_DNS is empty)\n' coredns
    return 0
  fi
  if ! pid_of kube-apiserver >/dev/null; then
    printf '%-24s stopped\n' coredns
    return 1
  fi
  local ready
  ready=$(kubectl_ -n kube-system get deployment coredns -o jsonpath='{.status.readyReplicas}' 2>/dev/null || true)
  if [ "${ready:-0}" -ge 1 ] 2>/dev/null; then
    printf '%-24s running (pod in kube-system, Service kube-dns %s)%s\n' coredns "$CLUSTER_DNS" \
      "$(dns_answers && echo ', answers' || echo ', NOT ANSWERING')"
  else
    printf '%-24s not ready\n' coredns
    return 1
  fi
}
