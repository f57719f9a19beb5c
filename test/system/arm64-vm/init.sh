#!/bin/busybox sh
# SPDX-License-Identifier: UNLICENSED
# /init of the arm64 test VM (static busybox only). Parameters come from the kernel command line (ck.*).
# Console protocol (ttyAMA0), read by vm.ts:
#   @@CK <name> <guest uptime s> [details]         markers: init-start, modules-loaded, 9p, net-up, ready, poweroff
#   @@CK-BEGIN <n> ... output ... @@CK-END <n> <rc>  one framed result per command line read from the console
# "poweroff", EOF or ck.idle seconds without a command power the VM off (PSCI: qemu exits).
/bin/busybox mkdir -p /proc /sys /dev /tmp /run /bin /sbin /usr/bin /usr/sbin /usr/lib /mnt/host /etc /var/lib
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs -o mode=1777 tmpfs /tmp

up() { cut -d' ' -f1 /proc/uptime; }
mark() { echo "@@CK $1 $(up) ${2:-}"; }
mark init-start "kernel=$(uname -r) mem_kb=$(awk '/MemTotal/{print $2}' /proc/meminfo) epoch=$(date +%s)"

for w in $(cat /proc/cmdline); do
  case "$w" in
    ck.*=*) k=${w%%=*}; k=${k#ck.}; eval "CK_$k=\${w#*=}" ;;
  esac
done
: "${CK_idle:=300}"

fail=0
while read -r m; do
  [ -n "$m" ] || continue
  insmod "/lib/modules/$m" 2>/tmp/insmod.err || { fail=1; echo "insmod $m: $(cat /tmp/insmod.err)"; }
done < /lib/modules/load-order
mark modules-loaded "failed=$fail"

# The host's share (9p, cache=loose: each file is read over virtio once) holds the agent binary, its
# /usr/lib/connector runtime and the agent's config, in the image's layout.
if [ -n "${CK_9p:-}" ]; then
  if mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=loose "$CK_9p" /mnt/host 2>/tmp/9p.err; then
    [ -d /mnt/host/usr/lib/connector ] && ln -s /mnt/host/usr/lib/connector /usr/lib/connector
    for f in /mnt/host/usr/bin/*; do [ -e "$f" ] && ln -s "$f" "/usr/bin/${f##*/}"; done
    [ -d /mnt/host/etc ] && cp -a /mnt/host/etc/. /etc/
    mark 9p "ok"
  else
    mark 9p "failed $(cat /tmp/9p.err)"
  fi
fi

# NICs by MAC (PCI probe order decides ethN): eth0 is the WAN, eth1 the LAN port of br-lan.
ifbymac() { for d in /sys/class/net/*; do [ "$(cat "$d/address")" = "$1" ] && { basename "$d"; return; }; done; }
for t in $(seq 1 30); do
  w=$(ifbymac "$CK_wanmac"); l=$(ifbymac "$CK_lanmac")
  [ -n "$w" ] && [ -n "$l" ] && break
  sleep 0.1
done
if [ "$w" != eth0 ] || [ "$l" != eth1 ]; then
  ip link set "$w" name ckwan; ip link set "$l" name cklan
  ip link set ckwan name eth0; ip link set cklan name eth1
fi
ip link set lo up
ip link set eth0 up
ip addr add "$CK_wan" dev eth0
[ -n "${CK_gw:-}" ] && ip route add default via "$CK_gw"
ip link add br-lan type bridge
echo 0 > /sys/class/net/br-lan/bridge/forward_delay
ip link set eth1 master br-lan
ip link set eth1 up
ip link set br-lan up
[ -n "${CK_lan:-}" ] && ip addr add "$CK_lan" dev br-lan
for t in $(seq 1 50); do
  [ "$(cat /sys/class/net/eth0/operstate)" = up ] && [ "$(cat /sys/class/net/br-lan/operstate)" = up ] && break
  sleep 0.1
done
mark net-up "eth0=$(cat /sys/class/net/eth0/operstate) br-lan=$(cat /sys/class/net/br-lan/operstate)"

stty -echo 2>/dev/null
mark ready
n=0
while :; do
  if ! read -r -t "$CK_idle" line; then mark idle-or-eof; break; fi
  line=$(echo "$line" | tr -d '\r')
  [ -n "$line" ] || continue
  [ "$line" = poweroff ] && break
  n=$((n + 1))
  echo "@@CK-BEGIN $n $(up)"
  sh -c "$line" 2>&1
  echo "@@CK-END $n $? $(up)"
done
mark poweroff
sync
poweroff -f
