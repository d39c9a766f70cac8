#!/usr/bin/env bash
# envtest-assets.sh makes kube-apiserver and etcd (and, on request, the other
# Kubernetes node components) available for envtest, the demo control plane and
# the local cluster, and prints the folder that holds them (KUBEBUILDER_ASSETS).
#
#   hack/envtest-assets.sh                      kube-apiserver + etcd
#   hack/envtest-assets.sh kubelet kube-proxy   add more Kubernetes components
#
# Order of attempts:
#   1. the cache under bin/k8s/<version>-<os>-<arch>/ (nothing to do);
#   2. the normal setup-envtest download (prebuilt binaries, needs internet);
#   3. a build from source through the Go module proxy (about 10 minutes cold
#      on two cores), cached for next time.
# Progress goes to stderr; the only line on stdout is the assets folder.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
K8S_VERSION=${ENVTEST_K8S_VERSION:-1.37.1}
ETCD_VERSION=${ETCD_VERSION:-3.6.16}
SETUP_ENVTEST_VERSION=${SETUP_ENVTEST_VERSION:-v0.25.1}
GOOS=$(go env GOOS)
GOARCH=$(go env GOARCH)
ASSETS="$ROOT/bin/k8s/${K8S_VERSION}-${GOOS}-${GOARCH}"
WORK="$ROOT/bin/.envtest-build"

log() { printf 'envtest-assets: %s\n' "$*" >&2; }

components=("kube-apiserver" "$@")
want=(etcd)
for c in "${components[@]}"; do
  case "$c" in
    kube-apiserver|kube-controller-manager|kube-scheduler|kubelet|kube-proxy|kubectl) want+=("$c") ;;
    etcd) ;;
    *) log "unknown component '$c' (known: kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl etcd)"; exit 2 ;;
  esac
done

missing() {
  local out=()
  for c in "${want[@]}"; do [ -x "$ASSETS/$c" ] || out+=("$c"); done
  echo "${out[@]:-}"
}

mkdir -p "$ASSETS"
if [ -z "$(missing)" ]; then
  log "cached: $ASSETS"
  echo "$ASSETS"
  exit 0
fi

# 2. The normal download. It only provides kube-apiserver, etcd and kubectl.
try_download() {
  local tool="$ROOT/bin/setup-envtest"
  if [ ! -x "$tool" ]; then
    log "installing setup-envtest@$SETUP_ENVTEST_VERSION into bin/"
    GOBIN="$ROOT/bin" go install "sigs.k8s.io/controller-runtime/tools/setup-envtest@$SETUP_ENVTEST_VERSION" >&2 || return 1
  fi
  log "trying the setup-envtest download of $K8S_VERSION"
  local dir
  dir=$(timeout 60 "$tool" use "$K8S_VERSION" --bin-dir "$ROOT/bin/setup-envtest-cache" -p path 2>/dev/null) || return 1
  [ -x "$dir/kube-apiserver" ] && [ -x "$dir/etcd" ] || return 1
  cp "$dir/kube-apiserver" "$dir/etcd" "$ASSETS/"
  if [ -x "$dir/kubectl" ]; then cp "$dir/kubectl" "$ASSETS/"; fi
}

if [ "${ENVTEST_SKIP_DOWNLOAD:-}" != "1" ] && [[ " $(missing) " =~ " kube-apiserver " || " $(missing) " =~ " etcd " ]]; then
  if try_download; then
    log "downloaded prebuilt binaries"
  else
    log "download unavailable; building from the Go module proxy instead"
  fi
fi

# 3. Build from source. k8s.io/kubernetes cannot be 'go install'ed because its
# go.mod replaces the staging modules with local paths; a throwaway module that
# replaces each of them with the published module of the same minor works.
build_kubernetes() {
  local dir="$WORK/kubernetes-$K8S_VERSION" staging="0.${K8S_VERSION#1.}"
  mkdir -p "$dir"
  if [ ! -f "$dir/go.sum" ]; then
    log "preparing a build module for k8s.io/kubernetes v$K8S_VERSION"
    local gomod
    gomod=$(cd "$dir" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    if [ -z "$gomod" ] || [ ! -d "$(go env GOMODCACHE)/k8s.io/kubernetes@v$K8S_VERSION" ]; then
      log "k8s.io/kubernetes@v$K8S_VERSION is not available from the Go module proxy; set ENVTEST_K8S_VERSION to another release"
      exit 1
    fi
    {
      echo "module envtest-build"
      echo "go $(go env GOVERSION | sed 's/^go//; s/\.[0-9]*$//')"
      echo "require k8s.io/kubernetes v$K8S_VERSION"
      grep -E '^\s*k8s.io/[a-z0-9-]+ => \./staging/' "$gomod" | awk -v v="v$staging" '{print "replace " $1 " => " $1 " " v}'
    } >"$dir/go.mod"
    cat >"$dir/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO
    (cd "$dir" && GOFLAGS=-mod=mod go mod tidy -e >&2)
  fi
  local minor=${K8S_VERSION#1.}; minor=${minor%%.*}
  local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  for c in "$@"; do
    log "building $c v$K8S_VERSION$([ "$c" = kube-apiserver ] && echo " (about 9 minutes cold on two cores)")"
    (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -ldflags "$ldflags" -o "$ASSETS/$c" "k8s.io/kubernetes/cmd/$c" >&2)
  done
}

build_etcd() {
  local dir="$WORK/etcd-$ETCD_VERSION"
  mkdir -p "$dir"
  if [ ! -f "$dir/go.sum" ]; then
    log "preparing a build module for etcd v$ETCD_VERSION"
    cat >"$dir/go.mod" <<MOD
module etcd-build
go $(go env GOVERSION | sed 's/^go//; s/\.[0-9]*$//')
require go.etcd.io/etcd/server/v3 v$ETCD_VERSION
replace go.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 v$ETCD_VERSION
replace go.etcd.io/etcd/client/pkg/v3 => go.etcd.io/etcd/client/pkg/v3 v$ETCD_VERSION
replace go.etcd.io/etcd/client/v3 => go.etcd.io/etcd/client/v3 v$ETCD_VERSION
replace go.etcd.io/etcd/pkg/v3 => go.etcd.io/etcd/pkg/v3 v$ETCD_VERSION
MOD
    cat >"$dir/tools.go" <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
    (cd "$dir" && GOFLAGS=-mod=mod go mod tidy -e >&2)
  fi
  log "building etcd v$ETCD_VERSION (about 1 minute)"
  (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -ldflags "-s -w" -o "$ASSETS/etcd" go.etcd.io/etcd/server/v3 >&2)
}

read -r -a todo <<<"$(missing)"
k8s=()
for c in "${todo[@]}"; do
  if [ "$c" = etcd ]; then build_etcd; else k8s+=("$c"); fi
done
[ ${#k8s[@]} -eq 0 ] || build_kubernetes "${k8s[@]}"

if [ -n "$(missing)" ]; then
  log "still missing: $(missing)"
  exit 1
fi
log "ready: $ASSETS"
echo "$ASSETS"
