#!/usr/bin/env bash
# Build Citus from a source tarball (and an optional patch) and install it into the PostgreSQL
# that pg_config names. For machines where Citus' own packages or image cannot be used.
#   shared/citus/install.sh SOURCE.tar.gz [PATCH] [PG_CONFIG]
set -euo pipefail
source_tarball=${1:?usage: install.sh SOURCE.tar.gz [PATCH] [PG_CONFIG]}
patch_file=${2:-}
pg_config=${3:-}
if [ -z "$pg_config" ]; then
    pg_config=$(command -v pg_config || true)
    [ -n "$pg_config" ] || pg_config=$(ls /usr/lib/postgresql/*/bin/pg_config 2>/dev/null | sort -V | tail -n1 || true)
fi
[ -f "$source_tarball" ] || { echo "error: no Citus source at $source_tarball" >&2; exit 2; }
[ -z "$patch_file" ] || [ -f "$patch_file" ] || { echo "error: no patch at $patch_file" >&2; exit 2; }
source_tarball=$(realpath "$source_tarball")
[ -z "$patch_file" ] || patch_file=$(realpath "$patch_file")

if [ -n "$pg_config" ] && [ -x "$pg_config" ]; then
    major=$("$pg_config" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
else
    major=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sed -E 's#.*/([0-9]+)/bin#\1#' | sort -n | tail -n1)
fi
[ -n "$major" ] || { echo "error: no PostgreSQL found to build Citus against" >&2; exit 2; }

packages=(build-essential "postgresql-server-dev-$major" libkrb5-dev liblz4-dev libzstd-dev libcurl4-openssl-dev libssl-dev)
echo "citus-install: build dependencies from Debian: ${packages[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
pg_config=/usr/lib/postgresql/$major/bin/pg_config

work=$(mktemp -d /tmp/citus-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "citus-install: unpacking $(basename "$source_tarball") in $work"
tar xzf "$source_tarball" -C "$work"
src=$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -n1)
if [ -n "$patch_file" ]; then
    echo "citus-install: applying $(basename "$patch_file")"
    (cd "$src" && patch -p1 --quiet < "$patch_file")
fi
echo "citus-install: configure and build against $pg_config (about 2 minutes on 2 cores)"
cd "$src"
./configure --quiet PG_CONFIG="$pg_config" >/dev/null
make -s -j"$(nproc)" >/dev/null 2>"$work/build.log" || { tail -n 40 "$work/build.log" >&2; exit 1; }
make -s install >/dev/null
echo "citus-install: installed $("$pg_config" --pkglibdir)/citus.so"
