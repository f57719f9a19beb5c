#!/usr/bin/env bash
# Installs the Debian packages the tests and the lab need. Idempotent: packages already present are
# skipped, so a second run costs one dpkg query. Needs root (CI runs as root).
set -euo pipefail

PACKAGES=(
  iproute2 iptables nftables procps # lab: namespaces, veth, bridges, NAT in the isp/router nodes
  iputils-ping iputils-arping        # lab and tests: ping (DF, RTT), gratuitous ARP
  tshark tcpdump                    # interop: capture and dissect our VXLAN and frames
  ethtool                           # interop: a fabric veth that segments in software, as a wire's NIC does
  openssl curl                      # interop: TLS and EST peers we did not write
  mosquitto mosquitto-clients       # OTA broker and its CLI clients
  iperf3 openvpn                    # benchmark and its OpenVPN-TAP baselines
  wireguard-go wireguard-tools      # benchmark: userspace WireGuard + kernel VXLAN baseline (no wireguard module here)
  signify-openbsd                   # interop: verifies our usign/signify signatures
  gpgv gnupg                        # image build: OpenWrt 25.12 sha256sums.asc (gpgv); stand-in keys in tests (gpg)
  squashfs-tools fdisk e2fsprogs    # image stand-ins and the factory station
  qemu-user-static gcc-aarch64-linux-gnu libc6-dev-arm64-cross patchelf  # arm64 addon + runtime checks
  qemu-system-arm                   # arm64 system test: qemu-system-aarch64 (test/system/arm64-vm)
  zstd gawk rsync file              # ImageBuilder host prerequisites
  python3 make g++                  # node-gyp for the TAP addon
  chromium                          # the console tested in a real browser (headless)
  postgresql                        # the registry's PostgreSQL backend (tests start their own server)
  frr                               # HA: the EVPN fabric option tested against FRR (zebra + bgpd in namespaces)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-host: all ${#PACKAGES[@]} packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "setup-host: missing packages: ${missing[*]}" >&2
  echo "setup-host: run as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi

echo "setup-host: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup-host: done"
