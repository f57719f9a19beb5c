#!/usr/bin/env python3
# STAND-IN for `fwtool -I <json> <image>`: appends OpenWrt's metadata block
# (header {version=0, flags=0} + JSON + trailer {"FWx0", crc32, type=1, size}, big-endian).
# The CRC is fwtool's: reflected CRC-32 seeded with ~0, no final inversion, over all bytes so far.
import struct, sys, zlib

def raw_crc(state, data):
    return (~zlib.crc32(data, (~state) & 0xFFFFFFFF)) & 0xFFFFFFFF

# With --signature: `fwtool -S`, a signature block (data + trailer type 0, no header).
signature = sys.argv[1] == '--signature'
args = sys.argv[2:] if signature else sys.argv[1:]
image, data = args[0], args[1].encode()
with open(image, 'rb') as f:
    body = f.read()
header = b'' if signature else struct.pack('>II', 0, 0)
crc = raw_crc(raw_crc(raw_crc(0xFFFFFFFF, body), header), data)
trailer = struct.pack('>IIB3xI', 0x46577830, crc, 0 if signature else 1, len(header) + len(data) + 16)
with open(image, 'ab') as f:
    f.write(header + data + trailer)
