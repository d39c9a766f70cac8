# shellcheck shell=bash
# build.sh: everything `up` needs before it starts a process. It owns the
# Debian packages (installed when missing) and the cached builds under
# bin/local-cluster/tools, one function per component, each rebuilt only when
# its binary is missing or was built from other sources:
#
#   build_runc          runc (LC_RUNC_VERSION, with seccomp) from the Go module proxy
#   build_images        pause, echo, mkimage, volume-helper (hack/local-cluster/images)
#                       and the images local/pause:dev and local/echo:dev
#   build_cri           the CRI client `cri` (hack/local-cluster/cri)
#   build_kubernetes    kube-controller-manager, kube-scheduler, kubelet, kube-proxy,
#                       kubectl (and etcd, kube-apiserver) from hack/envtest-assets.sh,
#                       cached under bin/k8s; sets ASSETS
#
# The add-ons' builds are their own files' (netpol_build, dns_build,
# volumes_build); ensure_tools runs them all. Sourced by
# hack/local-cluster.sh after lib.sh; runs nothing on its own.

RUNC_VERSION=${LC_RUNC_VERSION:-v1.5.2}

ensure_packages() {
  local need=()
  command -v openssl >/dev/null || need+=(openssl)
  command -v curl >/dev/null || need+=(curl)
  command -v ip >/dev/null || need+=(iproute2)
  command -v iptables >/dev/null || need+=(iptables)
  command -v conntrack >/dev/null || need+=(conntrack)
  command -v findmnt >/dev/null || need+=(util-linux)
  command -v ss >/dev/null || need+=(iproute2)
  command -v containerd >/dev/null && command -v ctr >/dev/null && command -v containerd-shim-runc-v2 >/dev/null || need+=(containerd)
  [ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/portmap ] && [ -x /usr/lib/cni/loopback ] || need+=(containernetworking-plugins)
  if [ ! -x "$TOOLS/runc" ]; then
    command -v gcc >/dev/null || need+=(gcc libc6-dev)
    command -v pkg-config >/dev/null || need+=(pkg-config)
    pkg-config --exists libseccomp 2>/dev/null || need+=(libseccomp-dev)
  fi
  [ ${#need[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "missing packages (${need[*]}) and no apt-get to install them"
  log "installing Debian packages: ${need[*]}"
  apt-get update >"$LOGS/apt.log" 2>&1 || { tail -n 20 "$LOGS/apt.log" >&2; die "apt-get update failed"; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >>"$LOGS/apt.log" 2>&1 ||
    { tail -n 20 "$LOGS/apt.log" >&2; die "apt-get install failed; see $LOGS/apt.log"; }
}

# build_module_tools DIR OUT... builds the packages of a small Go module under
# hack/local-cluster when a binary is missing or was built from other
# sources: the digest of the module's Go files, go.mod and go.sum is kept
# beside each binary (.NAME.src). A digest rather than file times, so that a
# tools folder shared by two checkouts never keeps the other one's build.
build_module_tools() {
  local dir=$1 stale=0 b sum
  shift
  sum=$(cd "$dir" && find . -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \) -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
  for b in "$@"; do
    if [ ! -x "$TOOLS/$b" ] || [ "$(cat "$TOOLS/.$b.src" 2>/dev/null)" != "$sum" ]; then
      stale=1
    fi
  done
  [ $stale = 1 ] || return 0
  log "building $* from ${dir#"$ROOT"/}"
  (cd "$dir" && GOWORK=off CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "-s -w -buildid=" -o "$TOOLS/" ./...) ||
    die "building $dir failed"
  for b in "$@"; do echo "$sum" >"$TOOLS/.$b.src"; done
}

build_runc() {
  if [ ! -x "$TOOLS/runc" ]; then
    log "building runc $RUNC_VERSION with seccomp (Debian's runc 1.1 fails on this kernel; about 1 minute)"
    GOBIN="$TOOLS" GOWORK=off CGO_ENABLED=1 GOFLAGS=-mod=mod go install -tags seccomp "github.com/opencontainers/runc@$RUNC_VERSION" >"$LOGS/runc-build.log" 2>&1 ||
      { tail -n 20 "$LOGS/runc-build.log" >&2; die "building runc failed"; }
  fi
  "$TOOLS/runc" --version | grep -q libseccomp || die "$TOOLS/runc was built without seccomp; delete it and run up again"
}

# build_images builds the standard-library programs of hack/local-cluster/images
# and makes the pause and echo images (again when their binary is newer).
build_images() {
  build_module_tools "$HERE/images" pause echo mkimage volume-helper
  local img
  for img in pause echo; do
    if [ ! -f "$TOOLS/images/$img.tar" ] || [ "$TOOLS/$img" -nt "$TOOLS/images/$img.tar" ]; then
      case $img in
        pause) "$TOOLS/mkimage" -binary "$TOOLS/pause" -tag local/pause:dev -user 65535:65535 -out "$TOOLS/images/pause.tar" ;;
        echo) "$TOOLS/mkimage" -binary "$TOOLS/echo" -tag local/echo:dev -user 65532:65532 -expose 8080 -out "$TOOLS/images/echo.tar" ;;
      esac
    fi
  done
}

build_cri() {
  build_module_tools "$HERE/cri" cri
}

build_kubernetes() {
  log "Kubernetes binaries (hack/envtest-assets.sh; about 12 minutes the first time on two cores)"
  # shellcheck disable=SC2034 # the components' files start what it names
  ASSETS=$("$ROOT/hack/envtest-assets.sh" kube-controller-manager kube-scheduler kubelet kube-proxy kubectl) ||
    die "hack/envtest-assets.sh failed"
}

# ensure_tools runs every build: the node's own tools first (the add-ons'
# images need mkimage), then the add-ons, then Kubernetes.
ensure_tools() {
  mkdir -p "$TOOLS/images"
  build_runc
  build_images
  build_cri
  netpol_build
  dns_build
  volumes_build
  build_kubernetes
}
