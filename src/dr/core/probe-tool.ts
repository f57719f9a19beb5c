// SPDX-License-Identifier: UNLICENSED
// The reachability probe of a drill, run with `python3 -c` on the side it checks from (the Connector's
// LAN side, or the drill VM's side toward chosen LAN hosts): an ARP request out of one interface
// (AF_PACKET, so it works without an address on that side) and ICMP echoes. Standard tools would need
// iputils/arping on every host; python3 is what the DC hosts and the lab have. Prints one JSON object.
// argv: ifname target_ip count timeout_s
export const PY_DRILL_PROBE = String.raw`
import json, os, socket, struct, sys, time, fcntl
ifname, target, count, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
out = {'target': target, 'ifname': ifname, 'arp': None, 'icmp': {'sent': 0, 'received': 0, 'rttMs': []}, 'errors': []}
def ifaddr(name, req):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try: return fcntl.ioctl(s.fileno(), req, struct.pack('256s', name.encode()[:15]))
    except OSError: return None
hw = ifaddr(ifname, 0x8927)
ip = ifaddr(ifname, 0x8915)
mac = hw[18:24] if hw else b'\x02\0\0\0\0\x01'
me = ip[20:24] if ip else b'\0\0\0\0'
tgt = socket.inet_aton(target)
try:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
    s.bind((ifname, 0))
    arp = struct.pack('!HHBBH6s4s6s4s', 1, 0x0800, 6, 4, 1, mac, me, b'\0' * 6, tgt)
    t0 = time.monotonic()
    s.send(b'\xff' * 6 + mac + b'\x08\x06' + arp + b'\0' * 18)
    deadline = t0 + timeout
    while out['arp'] is None:
        left = deadline - time.monotonic()
        if left <= 0: break
        s.settimeout(left)
        try: d = s.recv(2048)
        except socket.timeout: break
        if d[12:14] == b'\x08\x06' and d[20:22] == b'\x00\x02' and d[28:32] == tgt:
            out['arp'] = {'mac': d[22:28].hex(':'), 'ms': round((time.monotonic() - t0) * 1000, 2)}
except OSError as e:
    out['errors'].append('arp: ' + e.strerror)
def csum(b):
    if len(b) % 2: b += b'\0'
    t = sum(struct.unpack('!%dH' % (len(b) // 2), b)); t = (t >> 16) + (t & 0xffff); t += t >> 16
    return (~t) & 0xffff
try:
    r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident = (os.getpid() * 7919) & 0xffff
    for seq in range(1, count + 1):
        body = b'connector-drill-probe'
        pkt = struct.pack('!BBHHH', 8, 0, 0, ident, seq) + body
        pkt = pkt[:2] + struct.pack('!H', csum(pkt)) + pkt[4:]
        t0 = time.monotonic(); r.sendto(pkt, (target, 0)); out['icmp']['sent'] += 1
        deadline = t0 + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0: break
            r.settimeout(left)
            try: d, a = r.recvfrom(2048)
            except socket.timeout: break
            h = (d[0] & 15) * 4
            if a[0] == target and d[h] == 0 and struct.unpack('!HH', d[h + 4:h + 8]) == (ident, seq):
                out['icmp']['received'] += 1; out['icmp']['rttMs'].append(round((time.monotonic() - t0) * 1000, 2)); break
        time.sleep(0.2)
except OSError as e:
    out['errors'].append('icmp: ' + e.strerror)
print(json.dumps(out))
`;
