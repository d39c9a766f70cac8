# shellcheck shell=bash
# containerd.sh: the container runtime, Debian's containerd with runc from
# build.sh, as a host process with its own configuration
# (bin/local-cluster/containerd/config.toml from containerd.toml.in), socket
# (bin/local-cluster/run/containerd.sock) and root and state folders under
# bin/local-cluster/containerd. It owns the registry redirection (every
# registry is http://127.0.0.1:9, a closed port: hosts.toml.in), the images
# local/pause:dev (the sandbox image) and local/echo:dev, importing image
# tarballs, and on `down` removing every pod (through the CRI, which runs
# each pod's CNI DEL) and whatever shims and container processes are left.
# Its log is bin/local-cluster/logs/containerd.log.
#
#   containerd_up     configure, start unless it runs, import pause and echo
#   containerd_down   remove the pods, stop containerd, kill what is left
#   import_image TAR  import a docker-save or OCI tarball (namespace k8s.io)
#   shim_pids         the shims this containerd started
#
# Sourced by hack/local-cluster.sh after lib.sh; runs nothing on its own.

ctr_() { ctr --address "$SOCK" -n k8s.io "$@"; }

import_image() {
  [ -f "$1" ] || die "no such file: $1"
  log "importing $(basename "$1") into containerd (namespace k8s.io)"
  ctr_ images import --snapshotter overlayfs "$1" >&2 || die "importing $1 failed"
}

containerd_up() {
  mkdir -p "$STATE/containerd/certs.d/_default" "$STATE/containerd/certs.d/docker.io"
  render "$HERE/containerd.toml.in" "$STATE/containerd/config.toml"
  cni_config
  cp "$HERE/hosts.toml.in" "$STATE/containerd/certs.d/_default/hosts.toml"
  cp "$HERE/hosts.toml.in" "$STATE/containerd/certs.d/docker.io/hosts.toml"
  # PATH: containerd finds containerd-shim-runc-v2 there; runc is named in the config.
  PATH="$TOOLS:$PATH" start containerd "$(command -v containerd)" --config "$STATE/containerd/config.toml"
  wait_for "containerd" 60 ctr --address "$SOCK" version || die "containerd did not come up; see $LOGS/containerd.log"
  if ! ctr_ images ls -q | grep -qx "$PAUSE_IMAGE" || [ "$TOOLS/images/pause.tar" -nt "$STATE/containerd/.pause-imported" ]; then
    import_image "$TOOLS/images/pause.tar"
    touch "$STATE/containerd/.pause-imported"
  fi
  if ! ctr_ images ls -q | grep -qx "$ECHO_IMAGE" || [ "$TOOLS/images/echo.tar" -nt "$STATE/containerd/.echo-imported" ]; then
    import_image "$TOOLS/images/echo.tar"
    touch "$STATE/containerd/.echo-imported"
  fi
}

# Processes of the shims this cluster's containerd started (they name its socket).
shim_pids() {
  local p
  for p in $(pgrep containerd-shim 2>/dev/null || true); do
    if tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -q -- "-address $SOCK "; then echo "$p"; fi
  done
  return 0
}

# shim_sockets PID... prints the /run/containerd/s sockets these shims listen on.
shim_sockets() {
  local p inodes=""
  for p in "$@"; do
    inodes="$inodes $(find "/proc/$p/fd" -lname 'socket:*' -printf '%l\n' 2>/dev/null | tr -dc '0-9\n' | tr '\n' ' ')"
  done
  [ -n "${inodes// /}" ] || return 0
  awk -v want="$inodes" 'BEGIN {n = split(want, w, " "); for (i = 1; i <= n; i++) ok[w[i]] = 1}
    ok[$7] && $8 ~ "^/run/containerd/s/" {print $8}' /proc/net/unix | sort -u
}

# containerd_down runs after the kubelet has stopped, so nothing starts new
# pods while they are removed.
containerd_down() {
  if pid_of containerd >/dev/null && [ -x "$TOOLS/cri" ]; then
    log "stopping and removing every pod through the CRI (runs each pod's CNI DEL)"
    "$TOOLS/cri" -endpoint "unix://$SOCK" -timeout 90s stop-all >&2 || log "some pods could not be removed cleanly; killing what is left"
  fi
  if pid_of containerd >/dev/null; then
    local t
    for t in $(ctr_ tasks ls -q 2>/dev/null); do
      ctr_ tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true
      ctr_ tasks delete -f "$t" >/dev/null 2>&1 || true
    done
  fi
  stop containerd
  local pids p i
  pids="$(shim_pids) $(kubepods_pids)"
  if [ -n "${pids// /}" ]; then
    # A shim killed this way leaves its socket in /run/containerd/s (a path
    # containerd 1.6 does not let one move): note which ones are ours.
    local socks
    # shellcheck disable=SC2046 # one pid a word
    socks=$(shim_sockets $(shim_pids))
    log "killing leftover shims and container processes: $(tr -s ' \n' ' ' <<<"$pids")"
    for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
    for ((i = 0; i < 50; i++)); do
      pids="$(shim_pids) $(kubepods_pids)"
      [ -n "${pids// /}" ] || break
      sleep 0.1
    done
    for p in $socks; do rm -f "$p"; done
  fi
}
