# SPDX-License-Identifier: UNLICENSED
# The TAP addon (native/tap/tap.c, with the datagram channel's AEAD and UDP socket in aead.c and udp.c): plain C, N-API only, so the binary does not depend on the Node major.
# Built for the host by `node-gyp rebuild` (npm install); the arm64 build is scripts/build-addon-arm64.sh.
{
  "targets": [
    {
      "target_name": "tap",
      "sources": ["native/tap/tap.c", "native/tap/aead.c", "native/tap/udp.c", "native/tap/tx-ring.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fvisibility=hidden"],
      "defines": ["NAPI_DISABLE_CPP_EXCEPTIONS", "CK_MALLOC_TRIM"]
    }
  ]
}
