#!/usr/bin/env bash
# lib_test.sh tests what `down` relies on in lib.sh: state_mounts finds every
# mount under the state folder, also when the state folder is reached
# through a symlink (the mount table holds resolved paths), deepest first and
# nothing outside it; unmount_state removes them all, stacked ones too; stop
# leaves a pid file that names a process started meanwhile; and, of cni.sh,
# that cni_config points the conflist containerd rendered at an earlier `up`
# (naming another checkout's state folder) at this one's physical path,
# while containerd is stopped, and leaves it alone while it runs. Real tmpfs and bind mounts, in
# a user and mount namespace of its own (unshare), so it needs no root and
# touches nothing of the host's. Run by `make test-local-cluster-tools`.
set -euo pipefail

if [ "${LC_TEST_IN_NS:-}" != 1 ]; then
  LC_TEST_IN_NS=1 exec unshare --user --map-root-user --mount --propagation private bash ${LC_TEST_TRACE:+-x} "$0" "$@"
fi

T=$(mktemp -d)
cleanup() {
  local i m
  for i in 1 2 3 4 5; do
    for m in $(findmnt -rn -o TARGET | awk -v p="$T/" 'index($0, p) == 1' | sort -r); do umount "$m" 2>/dev/null || true; done
  done
  rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$T/real" "$T/other"
ln -s real "$T/link"

fails=0
check() { # check WHAT WANT GOT
  if [ "$2" = "$3" ]; then
    echo "ok   $1"
  else
    echo "FAIL $1"
    echo "  want: $(tr '\n' ' ' <<<"$2")"
    echo "  got:  $(tr '\n' ' ' <<<"$3")"
    fails=$((fails + 1))
  fi
}

# The state folder's mounts: a pod volume inside another mount, and the
# kubelet's bind mount of its root folder onto itself, twice (one more each
# time the kubelet starts). One mount outside it, which must stay.
mkdir -p "$T/real/kubelet" "$T/real/pods"
mount -t tmpfs lc-test "$T/real/pods"
mkdir -p "$T/real/pods/p1/volume"
mount -t tmpfs lc-test "$T/real/pods/p1/volume"
mount --bind "$T/real/kubelet" "$T/real/kubelet"
mount --bind "$T/real/kubelet" "$T/real/kubelet"
mount -t tmpfs lc-test "$T/other"

# shellcheck source=hack/local-cluster/lib.sh
LOCAL_CLUSTER_DIR="$T/link" . "$(dirname "$0")/lib.sh"

check "state_mounts through the symlink: every mount under the state folder, deepest first, nothing outside" \
  "$(printf '%s\n' "$T/real/pods/p1/volume" "$T/real/pods" "$T/real/kubelet" "$T/real/kubelet")" \
  "$(state_mounts)"

check "state_mounts by the physical path: the same" \
  "$(printf '%s\n' "$T/real/pods/p1/volume" "$T/real/pods" "$T/real/kubelet" "$T/real/kubelet")" \
  "$(STATE="$T/real" state_mounts)"

unmount_state 2>/dev/null
check "unmount_state leaves no mount under the state folder" "" "$(findmnt -rn -o TARGET | awk -v p="$T/real/" 'index($0, p) == 1')"
check "unmount_state leaves the mount outside it" "$T/other" "$(findmnt -rn -o TARGET | awk -v p="$T/other" '$0 == p')"

# stop while another `up` starts the same component: the pid file then
# names the new process, and must stay. The first process ignores SIGTERM
# for three seconds, so the second one starts while stop waits.
mkdir -p "$T/real/logs" "$T/real/run"
start sleep /bin/sh -c 'trap "" TERM; exec sleep 3' 2>/dev/null
first=$(pid_of sleep)
stop sleep 10 2>/dev/null &
stopping=$!
sleep 0.3
# shellcheck disable=SC2016 # $$ and $0 belong to the inner shell, as in start.
setsid sh -c 'echo $$ >"$0"; exec sleep 30' "$(pidfile sleep)" &
second=""
for _ in $(seq 50); do
  second=$(cat "$(pidfile sleep)" 2>/dev/null || true)
  [ -z "$second" ] || [ "$second" = "$first" ] || break
  sleep 0.1
done
check "stop: the first process still runs while the second starts" "$first" "$(ps -o pid= -p "$first" | tr -d ' ')"
wait "$stopping"
check "stop: the first process is gone" "" "$(ps -o pid= -p "$first" || true)"
check "stop: the pid file of the process started meanwhile stays" "$second" "$(cat "$(pidfile sleep)" 2>/dev/null)"
kill "$second"
wait 2>/dev/null || true
stop sleep 1 2>/dev/null
check "stop: a stale pid file goes" "no" "$([ -e "$(pidfile sleep)" ] && echo yes || echo no)"

# cni_config and the conflist containerd rendered at an earlier `up`, from
# another checkout whose state folder was reached by another path.
# shellcheck source=hack/local-cluster/cni.sh
. "$(dirname "$0")/cni.sh"
NODE_IP=192.0.2.1 NODE_NAME=lc-test
conflist=$T/real/cni/net.d/10-containerd-net.conflist
mkdir -p "$(dirname "$conflist")"
rendered() { # rendered DATADIR: a conflist as containerd renders it
  printf '{\n  "plugins": [\n    {\n      "type": "bridge",\n      "ipam": {\n        "type": "host-local",\n        "dataDir": "%s",\n        "ranges": [[{"subnet": "10.244.0.0/24"}]]\n      }\n    }\n  ]\n}\n' "$1"
}
rendered /work/gone-checkout/bin/local-cluster/cni/networks >"$conflist"
cp /bin/sleep "$T/containerd"
start containerd "$T/containerd" 30 2>/dev/null
cni_config 2>/dev/null
check "cni_config leaves the conflist alone while containerd runs (pods may hold addresses)" \
  "$(rendered /work/gone-checkout/bin/local-cluster/cni/networks)" "$(cat "$conflist")"
stop containerd 5 2>/dev/null
cni_config 2>/dev/null
check "cni_config points the conflist's dataDir at this state folder's physical path, the rest unchanged" \
  "$(rendered "$T/real/cni/networks")" "$(cat "$conflist")"
check "cni_config renders the template with that dataDir" \
  "1" "$(grep -c "\"dataDir\": \"$T/real/cni/networks\"" "$T/real/cni/conflist.tmpl")"
cni_config 2>/dev/null
check "cni_config again: nothing to change" "$(rendered "$T/real/cni/networks")" "$(cat "$conflist")"
check "cni_config leaves no temporary file" "10-containerd-net.conflist" "$(ls "$T/real/cni/net.d")"
check "cni_config leaves the rest of the template as rendered" "" \
  "$(diff <(grep -v dataDir "$T/real/cni/conflist.tmpl") <(grep -v dataDir "$(dirname "$0")/cni.conflist.tmpl.in" | sed "s|@BRIDGE@|$BRIDGE|"))"

[ "$fails" = 0 ] || { echo "lib_test.sh: $fails failed"; exit 1; }
echo "lib_test.sh: all passed"
