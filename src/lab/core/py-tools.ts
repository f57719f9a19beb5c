// SPDX-License-Identifier: UNLICENSED
// Small traffic tools for the lab, run with `python3 -c` inside a node's namespace: an ICMP echo client
// with DF and payload patterns (iputils ping is not always installed), a hashed TCP sender/receiver and a
// gratuitous-ARP sender. They exist so tests depend only on python3, which the build host has anyway.
// Each prints one JSON object on stdout.

/** argv: dst count size(payload bytes) df(0|1) interval_s timeout_s pattern_hex */
export const PY_PING = String.raw`
import json, os, socket, struct, sys, time
dst, count, size, df, interval, timeout, pattern = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == '1', float(sys.argv[5]), float(sys.argv[6]), bytes.fromhex(sys.argv[7] or 'ab')
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return (~s) & 0xffff
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.setsockopt(socket.IPPROTO_IP, 10, 2 if df else 0)  # IP_MTU_DISCOVER: DO / DONT
ident = (os.getpid() * 7919) & 0xffff
payload = (pattern * (size // len(pattern) + 1))[:size]
rtts, errors = [], []
for seq in range(1, count + 1):
    hdr = struct.pack('!BBHHH', 8, 0, 0, ident, seq)
    pkt = struct.pack('!BBHHH', 8, 0, csum(hdr + payload), ident, seq) + payload
    t0 = time.monotonic()
    try:
        s.sendto(pkt, (dst, 0))
    except OSError as e:
        errors.append(e.strerror); time.sleep(interval); continue
    deadline = t0 + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0: break
        s.settimeout(left)
        try:
            data, addr = s.recvfrom(65535)
        except socket.timeout:
            break
        except OSError as e:
            errors.append(e.strerror); break
        ihl = (data[0] & 0x0f) * 4
        t, c, _, i, q = struct.unpack('!BBHHH', data[ihl:ihl + 8])
        if t == 0 and i == ident and q == seq and addr[0] == dst:
            rtts.append((time.monotonic() - t0) * 1000); break
    if seq < count:
        rest = interval - (time.monotonic() - t0)
        if rest > 0: time.sleep(rest)
print(json.dumps({'sent': count, 'received': len(rtts), 'rttMs': rtts, 'errors': errors, 'ipBytes': size + 28}))
`;

/** argv: bind_addr port -> prints {bytes, sha256} after the sender closes. */
export const PY_TCP_RECV = String.raw`
import hashlib, json, socket, sys
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((sys.argv[1], int(sys.argv[2]))); ls.listen(1)
print(json.dumps({'listening': True}), flush=True)
c, _ = ls.accept(); h = hashlib.sha256(); n = 0
while True:
    b = c.recv(1 << 16)
    if not b: break
    h.update(b); n += len(b)
c.close(); ls.close()
print(json.dumps({'bytes': n, 'sha256': h.hexdigest()}), flush=True)
`;

/** argv: dst port bytes seed -> prints {bytes, sha256, seconds}. Data is a SHA-256 counter stream. */
export const PY_TCP_SEND = String.raw`
import hashlib, json, socket, sys, time
dst, port, total, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].encode()
c = socket.create_connection((dst, port), timeout=30); h = hashlib.sha256(); n = 0; i = 0; t0 = time.monotonic()
block = b''
while n < total:
    chunk = b''.join(hashlib.sha256(seed + (i * 256 + k).to_bytes(8, 'big')).digest() for k in range(256))[: total - n]
    i += 1; c.sendall(chunk); h.update(chunk); n += len(chunk)
c.shutdown(socket.SHUT_WR)
while c.recv(4096): pass
c.close()
print(json.dumps({'bytes': n, 'sha256': h.hexdigest(), 'seconds': time.monotonic() - t0}))
`;

/** argv: ifname mac ip count interval_s -> gratuitous ARP requests (sender = target = ip). */
export const PY_GARP = String.raw`
import json, socket, sys, time
ifname, mac, ip, count, interval = sys.argv[1], bytes.fromhex(sys.argv[2].replace(':', '')), socket.inet_aton(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind((ifname, 0))
frame = b'\xff' * 6 + mac + b'\x08\x06' + b'\x00\x01\x08\x00\x06\x04\x00\x01' + mac + ip + b'\x00' * 6 + ip
frame += b'\x00' * (60 - len(frame))
for k in range(count):
    s.send(frame)
    if k + 1 < count: time.sleep(interval)
print(json.dumps({'sent': count}))
`;

/** The SIOCETHTOOL call both scripts below make (ethtool may not be installed). */
const PY_ETHTOOL = String.raw`
import array, fcntl, json, socket, struct, sys
SIOCETHTOOL = 0x8946
ETHTOOL_GTXCSUM, ETHTOOL_STXCSUM, ETHTOOL_GGRO, ETHTOOL_SGRO = 0x16, 0x17, 0x2b, 0x2c
def ethtool(ifname, cmd, value=0):
    buf = array.array('B', struct.pack('II', cmd, value))
    ifr = struct.pack('16sP', ifname.encode(), buf.buffer_info()[0])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s.fileno(), SIOCETHTOOL, ifr)
    return struct.unpack('II', buf.tobytes())[1]
`;

/** argv: ifname... -> turns transmit checksum offload off (ETHTOOL_STXCSUM). */
export const PY_TX_CSUM_OFF =
  PY_ETHTOOL +
  String.raw`
for ifname in sys.argv[1:]:
    ethtool(ifname, ETHTOOL_STXCSUM, 0)
print(json.dumps({ifname: ethtool(ifname, ETHTOOL_GTXCSUM) for ifname in sys.argv[1:]}))
`;

/** argv: ifname... -> turns GRO on (ETHTOOL_SGRO), as a physical NIC has it; a veth's default is off. */
export const PY_GRO_ON =
  PY_ETHTOOL +
  String.raw`
for ifname in sys.argv[1:]:
    ethtool(ifname, ETHTOOL_SGRO, 1)
print(json.dumps({ifname: ethtool(ifname, ETHTOOL_GGRO) for ifname in sys.argv[1:]}))
`;
