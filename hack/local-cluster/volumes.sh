# shellcheck shell=bash
# volumes.sh: dynamic volume provisioning for the local cluster, with
# Rancher's local-path-provisioner: a PersistentVolumeClaim on a class whose
# provisioner is rancher.io/local-path gets a directory of its own under
# VOLUMES_DIR (bin/local-cluster/volumes) as a hostPath PersistentVolume.
# Sourced by hack/local-cluster.sh (it uses log, die, kubectl_ and the
# settings of lib.sh, ctr_ and import_image of containerd.sh,
# build_module_tools of build.sh); not run on its own.
#
#   volumes_build    build local-path-provisioner (pinned, from the Go module
#                    proxy) and the images of it and of volume-helper
#   volumes_up       import the images; namespace local-path-storage, RBAC,
#                    config and Deployment; wait until it runs
#   volumes_status   one line for `status`
#   volumes_purge    for `down --purge`: delete every volume's directory
#
# `down` needs nothing else: the provisioner is a pod, stopped with the
# others; the volumes' directories stay (like etcd) until `down --purge`.
#
# How it runs here. Upstream makes and removes a volume's directory in a
# helper pod running busybox's shell; there is no busybox image here, so the
# config's setupCommand and teardownCommand name /volume-helper, a static
# program (hack/local-cluster/images/volume-helper) that makes the directory
# (mode 0777, as upstream's script) or removes it, and refuses any path but a
# pvc-... directory right under the mounted parent. VOLUMES_DIR itself is
# root's and 0700, so no other user of this machine reaches the volumes.
# The volumes are not encrypted: a StorageClass that attests encryption at
# rest for them (test/e2e/storageclass.yaml) is a test's stand-in for the
# platform team's attestation, not a fact about this disk.

VOLUMES_PROVISIONER_VERSION=${LC_LOCAL_PATH_VERSION:-v0.0.30}
VOLUMES_DIR=${LC_VOLUMES_DIR:-$STATE/volumes}
VOLUMES_PROVISIONER_IMAGE=docker.io/local/local-path-provisioner:dev
VOLUMES_HELPER_IMAGE=docker.io/local/volume-helper:dev
VOLUMES_PROVISIONER_NAME=rancher.io/local-path

volumes_build() {
  if [ ! -x "$TOOLS/local-path-provisioner" ] || [ ! -f "$TOOLS/.local-path-provisioner-$VOLUMES_PROVISIONER_VERSION" ]; then
    log "building local-path-provisioner $VOLUMES_PROVISIONER_VERSION from the Go module proxy (2.3 min of CPU the first time; 6 min under load)"
    local out
    out=$(mktemp -d)
    GOBIN="$out" GOWORK=off CGO_ENABLED=0 GOFLAGS=-mod=mod go install -trimpath -ldflags "-s -w" \
      "github.com/rancher/local-path-provisioner@$VOLUMES_PROVISIONER_VERSION" >"$LOGS/local-path-provisioner-build.log" 2>&1 ||
      { tail -n 20 "$LOGS/local-path-provisioner-build.log" >&2; rm -rf "$out"; die "building local-path-provisioner failed"; }
    mv "$out/local-path-provisioner" "$TOOLS/local-path-provisioner"
    rm -rf "$out"
    rm -f "$TOOLS"/.local-path-provisioner-*
    touch "$TOOLS/.local-path-provisioner-$VOLUMES_PROVISIONER_VERSION"
  fi
  if [ ! -f "$TOOLS/images/local-path-provisioner.tar" ] || [ "$TOOLS/local-path-provisioner" -nt "$TOOLS/images/local-path-provisioner.tar" ]; then
    "$TOOLS/mkimage" -binary "$TOOLS/local-path-provisioner" -tag local/local-path-provisioner:dev -user 65532:65532 \
      -out "$TOOLS/images/local-path-provisioner.tar"
  fi
  if [ ! -f "$TOOLS/images/volume-helper.tar" ] || [ "$TOOLS/volume-helper" -nt "$TOOLS/images/volume-helper.tar" ]; then
    "$TOOLS/mkimage" -binary "$TOOLS/volume-helper" -tag local/volume-helper:dev -out "$TOOLS/images/volume-helper.tar"
  fi
}

volumes_import() {
  local img ref
  for img in local-path-provisioner volume-helper; do
    case $img in
      local-path-provisioner) ref=$VOLUMES_PROVISIONER_IMAGE ;;
      volume-helper) ref=$VOLUMES_HELPER_IMAGE ;;
    esac
    if ! ctr_ images ls -q | grep -qx "$ref" || [ "$TOOLS/images/$img.tar" -nt "$STATE/containerd/.$img-imported" ]; then
      import_image "$TOOLS/images/$img.tar"
      touch "$STATE/containerd/.$img-imported"
    fi
  done
}

# volumes_manifest [DIGEST] prints upstream's deploy/local-path-storage.yaml of the
# pinned version, less its StorageClass (the cluster's users bring their
# own), with this cluster's images, path and helper.
volumes_manifest() {
  cat <<EOF
apiVersion: v1
kind: Namespace
metadata: {name: local-path-storage}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: local-path-provisioner-service-account, namespace: local-path-storage}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: local-path-provisioner-role, namespace: local-path-storage}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, create, patch, update, delete]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: local-path-provisioner-role}
rules:
- apiGroups: [""]
  resources: [nodes, persistentvolumeclaims, configmaps, pods, pods/log]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [persistentvolumes]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [storage.k8s.io]
  resources: [storageclasses]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: local-path-provisioner-bind, namespace: local-path-storage}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: local-path-provisioner-role}
subjects:
- {kind: ServiceAccount, name: local-path-provisioner-service-account, namespace: local-path-storage}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: local-path-provisioner-bind}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: local-path-provisioner-role}
subjects:
- {kind: ServiceAccount, name: local-path-provisioner-service-account, namespace: local-path-storage}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: local-path-config, namespace: local-path-storage}
data:
  config.json: |-
    {
      "nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": ["$VOLUMES_DIR"]}],
      "setupCommand": "/volume-helper",
      "teardownCommand": "/volume-helper"
    }
  helperPod.yaml: |-
    apiVersion: v1
    kind: Pod
    metadata:
      name: helper-pod
    spec:
      priorityClassName: system-node-critical
      automountServiceAccountToken: false
      tolerations:
      - {key: node.kubernetes.io/disk-pressure, operator: Exists, effect: NoSchedule}
      containers:
      - name: helper-pod
        image: local/volume-helper:dev
        imagePullPolicy: Never
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities: {drop: [ALL], add: [DAC_OVERRIDE]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: local-path-provisioner, namespace: local-path-storage}
spec:
  replicas: 1
  selector:
    matchLabels: {app: local-path-provisioner}
  template:
    metadata:
      labels: {app: local-path-provisioner}
      # The config's and the images' digest: a change rolls the pod.
      annotations: {local-cluster/config: "${1:-}"}
    spec:
      serviceAccountName: local-path-provisioner-service-account
      terminationGracePeriodSeconds: 5
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        seccompProfile: {type: RuntimeDefault}
      containers:
      - name: local-path-provisioner
        image: local/local-path-provisioner:dev
        imagePullPolicy: Never
        command: [/local-path-provisioner, start, --config, /etc/config/config.json,
          --provisioner-name, $VOLUMES_PROVISIONER_NAME, --helper-image, local/volume-helper:dev,
          --helper-pod-file, /etc/config/helperPod.yaml]
        env:
        - name: POD_NAMESPACE
          valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
        - {name: CONFIG_MOUNT_PATH, value: /etc/config/}
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities: {drop: [ALL]}
        volumeMounts:
        - {name: config-volume, mountPath: /etc/config/, readOnly: true}
      volumes:
      - name: config-volume
        configMap: {name: local-path-config}
EOF
}

volumes_up() {
  mkdir -p "$VOLUMES_DIR"
  chmod 700 "$VOLUMES_DIR"
  volumes_import
  local sum
  sum=$({ volumes_manifest; cat "$TOOLS/images/local-path-provisioner.tar" "$TOOLS/images/volume-helper.tar"; } | sha256sum | cut -c1-16)
  volumes_manifest "$sum" | kubectl_ apply -f - >/dev/null || die "could not apply local-path-provisioner (namespace local-path-storage)"
  kubectl_ -n local-path-storage rollout status deployment local-path-provisioner --timeout=120s >/dev/null ||
    { kubectl_ -n local-path-storage describe pods | tail -n 20 >&2; die "local-path-provisioner did not start"; }
  log "volumes: local-path-provisioner $VOLUMES_PROVISIONER_VERSION (provisioner $VOLUMES_PROVISIONER_NAME) in ${VOLUMES_DIR#"$ROOT"/}"
}

volumes_status() {
  if ! pid_of kube-apiserver >/dev/null; then
    printf '%-24s stopped\n' local-path-provisioner
    return 1
  fi
  local ready
  ready=$(kubectl_ -n local-path-storage get deployment local-path-provisioner -o jsonpath='{.status.readyReplicas}' 2>/dev/null || true)
  if [ "${ready:-0}" -ge 1 ] 2>/dev/null; then
    printf '%-24s running (pod in local-path-storage; %s volumes in %s)\n' local-path-provisioner \
      "$(find "$VOLUMES_DIR" -mindepth 1 -maxdepth 1 -name 'pvc-*' 2>/dev/null | wc -l)" "${VOLUMES_DIR#"$ROOT"/}"
  else
    printf '%-24s not ready\n' local-path-provisioner
    return 1
  fi
}

volumes_purge() {
  [ -d "$VOLUMES_DIR" ] || return 0
  log "deleting the volumes' directories in ${VOLUMES_DIR#"$ROOT"/}"
  rm -rf "$VOLUMES_DIR"
}
