#!/usr/bin/env bash
# image.sh builds the image of the demo application's PostgreSQL from this
# machine's Debian packages (postgresql), without Docker or a registry:
# initdb and postgres with their shared libraries (from ldd), the server's
# share directory and extension modules, the time-zone data, /bin/sh (dash:
# initdb runs postgres through it) and a passwd entry for the server's user
# (65532). hack/e2e.sh imports it into the local cluster as
# local/demo-postgres:dev (test/e2e/demodb/demodb.yaml).
#
#   test/e2e/demodb/image.sh OUT.tar     (needs the postgresql package and
#                                         bin/local-cluster/tools/mkimage)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
OUT=${1:?usage: $0 OUT.tar}
MKIMAGE=${MKIMAGE:-${LOCAL_CLUSTER_DIR:-$ROOT/bin/local-cluster}/tools/mkimage}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$PGBIN" ] || { echo "image.sh: PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }
PGLIB=$(dirname "$PGBIN")/lib
PGSHARE=/usr/share/postgresql/$(basename "$(dirname "$PGBIN")")
[ -x "$MKIMAGE" ] || { echo "image.sh: $MKIMAGE is missing (hack/local-cluster.sh up builds it)" >&2; exit 1; }

RFS=$(mktemp -d)
trap 'rm -rf "$RFS"' EXIT

# copy FILE: into the tree at the same path, symbolic links resolved.
copy() { mkdir -p "$RFS$(dirname "$1")" && cp -L "$1" "$RFS$1"; }

progs=("$PGBIN/postgres" "$PGBIN/initdb" "$PGBIN/pg_isready" /usr/bin/dash)
# Every extension module but llvmjit (JIT stays off: it would bring 130 MB
# of LLVM).
mods=()
for f in "$PGLIB"/*.so; do case $(basename "$f") in llvmjit*) ;; *) mods+=("$f") ;; esac; done
for f in "${progs[@]}" "${mods[@]}"; do copy "$f"; done
# Every library the programs and modules need, and the loader.
for f in $(ldd "${progs[@]}" "${mods[@]}" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\/.*ld-linux/ {print $1}' | sort -u); do
  copy "$f"
done
mkdir -p "$RFS/bin" "$RFS/etc" "$RFS/tmp" "$RFS/var/lib/postgresql" "$RFS/var/run/postgresql" "$RFS/usr/share"
ln -s /usr/bin/dash "$RFS/bin/sh"
chmod 1777 "$RFS/tmp"
mkdir -p "$RFS$(dirname "$PGSHARE")"
cp -a "$PGSHARE" "$RFS$PGSHARE"
rm -rf "$RFS$PGSHARE/man"
cp -a /usr/share/zoneinfo "$RFS/usr/share/zoneinfo"
printf 'root:x:0:0:root:/root:/bin/sh\npostgres:x:65532:65532:PostgreSQL:/var/lib/postgresql:/bin/sh\n' >"$RFS/etc/passwd"
printf 'root:x:0:\npostgres:x:65532:\n' >"$RFS/etc/group"
# Nothing in the image is dated: the tarball depends on the packages only.
find "$RFS" -exec touch -h -d @0 {} +
"$MKIMAGE" -binary "$PGBIN/postgres" -path "$PGBIN/postgres" -root "$RFS" -tag local/demo-postgres:dev \
  -user 65532:65532 -expose 5432 -env "PATH=$PGBIN:/usr/bin:/bin" -env TZ=UTC -env LANG=C.UTF-8 -out "$OUT"
