#!/usr/bin/env bash
# SPDX-License-Identifier: UNLICENSED
# Cross-compiles the TAP addon (native/tap/tap.c, aead.c, udp.c) for linux-arm64 with Debian's gcc-aarch64-linux-gnu
# and checks the result: an AArch64 ELF shared object that needs only the C library and leaves only napi_*,
# uv_* and libc symbols for the loading node to provide (aead.c finds OpenSSL's at run time, with dlsym). N-API keeps it independent of the Node major.
#
#   scripts/build-addon-arm64.sh [OUT]        default OUT: build/arm64/tap.node
#
# Env: CC (default aarch64-linux-gnu-gcc), NODE_INCLUDE (directory holding node_api.h and uv.h; default:
# node-gyp's header cache for the running node, else the include/node directory of the running node).
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-build/arm64/tap.node}
cc=${CC:-aarch64-linux-gnu-gcc}
cross=${cc%gcc}

die() { echo "build-addon-arm64: $*" >&2; exit 1; }

command -v "$cc" >/dev/null || die "$cc not found: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross"

inc=${NODE_INCLUDE:-}
if [ -z "$inc" ]; then
  ver=$(node -p process.versions.node)
  for d in "$HOME/.cache/node-gyp/$ver/include/node" "$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")/include/node"; do
    if [ -f "$d/node_api.h" ]; then inc=$d; break; fi
  done
fi
[ -n "$inc" ] && [ -f "$inc/node_api.h" ] && [ -f "$inc/uv.h" ] \
  || die "no Node headers (node_api.h, uv.h) found; set NODE_INCLUDE to a node include/node directory"

mkdir -p "$(dirname "$out")"
# No fortify and no stack protector: both add glibc-only symbols (__*_chk, __stack_chk_guard) that the
# device's C library may not provide. No _FILE_OFFSET_BITS either: on LP64 open() is already 64-bit. No
# outline atomics: the send threads' counters would call libgcc helpers that need glibc's __getauxval.
"$cc" -std=gnu11 -O2 -Wall -Wextra -Wno-unused-parameter -fvisibility=hidden -fPIC -shared -mno-outline-atomics \
  -U_FORTIFY_SOURCE -fno-stack-protector -I"$inc" -o "$out" native/tap/tap.c native/tap/aead.c native/tap/udp.c native/tap/tx-ring.c
"${cross}strip" --strip-unneeded "$out"

# Check what the device's dynamic loader will see.
machine=$(readelf -h "$out" | sed -n 's/^ *Machine: *//p')
[ "$machine" = AArch64 ] || die "$out: machine is '$machine', want AArch64"
needed=$(readelf -d "$out" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | paste -sd' ')
[ "$needed" = libc.so.6 ] || die "$out: NEEDED is '$needed', want only libc.so.6"
libc='close|free|calloc|malloc|ioctl|memcpy|memset|dlsym|socket|bind|connect|getsockname|recvmsg|sendmmsg|inet_pton|open|read|write|writev|setsockopt|getsockopt|snprintf|strerror|prctl|__errno_location'
weak='__cxa_finalize|__gmon_start__|_ITM_deregisterTMCloneTable|_ITM_registerTMCloneTable'
stray=$(readelf --dyn-syms -W "$out" | awk '$7 == "UND" && $8 != "" { sub(/@.*/, "", $8); print $8 }' \
  | grep -Ev "^(napi_[a-z0-9_]+|uv_[a-z0-9_]+|$libc|$weak)$" || true)
[ -z "$stray" ] || die "$out: unexpected undefined symbols: $stray"
echo "build-addon-arm64: $out ($(stat -c %s "$out") bytes, AArch64, NEEDED $needed, headers $inc)"
