#!/bin/bash
# STAND-IN ImageBuilder logic (connector-kit tests). Messages imitate opkg/ImageBuilder wording so the
# build's failure mapping is exercised with the shapes the real tool prints.
set -euo pipefail
export PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C TZ=UTC
here=$(cd "$(dirname "$0")" && pwd)
# stand-in.conf (written when the tests pack this tree) sets VERSION; the series follows from it:
#   24.10: opkg, repositories.conf + Packages, a random usign key-build per unpack that signs every image
#   25.12: apk, repositories + packages.adb, no image signature
. "$here/stand-in.conf"
SERIES=${VERSION%.*}
TARGET=rockchip/armv8
BASE_PACKAGES="base-files ca-bundle dnsmasq dropbear e2fsprogs firewall4 fstools kmod-gpio-button-hotplug kmod-nft-offload libc libgcc libustream-mbedtls logd mkf2fs mtd netifd nftables odhcp6c odhcpd-ipv6only partx-utils ppp ppp-mod-pppoe procd-ujail uboot-envtools uci uclient-fetch urandom-seed urngd"
case $SERIES in
  24.10) KERNEL=6.6.144-1-77d4782035a23e6f19f9c4751451b4e3; PM=opkg; DEFAULT_PACKAGES="$BASE_PACKAGES opkg" ;;
  25.12) KERNEL=6.12.94-1-5fab3a97d147fbf8146094eeebd78fd9; PM=apk; DEFAULT_PACKAGES="$BASE_PACKAGES apk-mbedtls" ;;
  *) echo "STAND-IN: unknown series $SERIES" >&2; exit 2 ;;
esac
PROFILE_PACKAGES="kmod-r8169"
EPOCH=${SOURCE_DATE_EPOCH:-0}

info() {
  cat <<INFO
Current Target: "$TARGET"
Current Architecture: "aarch64"
Current Revision: "STAND-IN-r28xxx"
Default Packages: $DEFAULT_PACKAGES
Available Profiles:

friendlyarm_nanopi-r3s:
    FriendlyARM NanoPi R3S (STAND-IN)
    Packages: $PROFILE_PACKAGES
    hasImageMetadata: 1
    SupportedDevices: friendlyarm,nanopi-r3s
INFO
}

check_profile() {
  if [ "$PROFILE" != friendlyarm_nanopi-r3s ]; then
    echo "Profile \"$PROFILE\" does not exist!" >&2
    echo "Use \"make info\" to get a list of available profile names." >&2
    exit 1
  fi
}

# Reads the package feeds. opkg: repositories.conf "src/gz NAME URL" with "Package:/Version:/Depends:"
# stanzas in <feed>/Packages. apk: repositories, one <feed>/packages.adb per line (a STAND-IN text index
# "name version [kernel-dep]", not the real binary ADB). Only local feeds can be read here; anything
# else fails the way the real package manager does offline.
load_index() {
  : > "$here/tmp.index"
  if [ $PM = opkg ]; then
    local kind name url dir
    while read -r kind name url; do
      case $kind in src/gz) ;; *) continue ;; esac
      case $url in
        file://*) dir=${url#file://} ;;
        *) echo " * opkg_download: Failed to download $url/Packages.gz, wget returned 4." >&2
           echo " * opkg_update_cmd: Failed to download the package list from $url/Packages.gz." >&2
           return 1 ;;
      esac
      if [ ! -f "$dir/Packages" ]; then
        echo " * opkg_update_cmd: Failed to download the package list from $url/Packages.gz." >&2
        return 1
      fi
      awk '/^Package:/ {p=$2} /^Version:/ {v=$2} /^Depends:/ {d=$0} /^$/ {if (p) print p, v, d; p=""; v=""; d=""} END {if (p) print p, v, d}' "$dir/Packages" >> "$here/tmp.index"
    done < "$here/repositories.conf"
  else
    local line bad=0
    while read -r line; do
      case $line in ''|'#'*) continue ;; esac
      case $line in
        /*) if [ -f "$line" ]; then grep -v '^#' "$line" >> "$here/tmp.index"; continue; fi
            echo "WARNING: updating and opening $line: No such file or directory" >&2 ;;
        *) echo "WARNING: updating and opening $line: network error" >&2 ;;
      esac
      bad=1
    done < "$here/repositories"
    [ $bad = 0 ] || { echo "ERROR: unable to select packages:" >&2; return 1; }
  fi
}

# Resolves DEFAULT + profile + PACKAGES ("-name" removes) against the feeds; prints "name - version".
resolve() {
  load_index || { echo "make[2]: *** [Makefile:210: package_reload] Error 255" >&2; exit 1; }
  local want=() removed=() p
  for p in $DEFAULT_PACKAGES $PROFILE_PACKAGES $PACKAGES; do
    case $p in -*) removed+=("${p#-}") ;; *) want+=("$p") ;; esac
  done
  local fail=0 out=() apk_errors=()
  for p in $(printf '%s\n' "${want[@]}" | sort -u); do
    if printf '%s\n' "${removed[@]:-}" | grep -qx "$p"; then continue; fi
    local line
    line=$(grep -E "^$p " "$here/tmp.index" | head -n1 || true)
    if [ -z "$line" ]; then
      if [ $PM = opkg ]; then echo " * opkg_install_cmd: Cannot install package $p." >&2
      else apk_errors+=("  $p (no such package):" "    required by: world[$p]"); fi
      fail=1
      continue
    fi
    local kdep
    kdep=$(printf '%s\n' "$line" | sed -n 's/.*kernel (= \([^)]*\)).*/\1/p')
    if [ -n "$kdep" ] && [ "$kdep" != "$KERNEL" ]; then
      if [ $PM = opkg ]; then
        echo " * satisfy_dependencies_for: Cannot satisfy the following dependencies for $p:" >&2
        echo " * 	kernel (= $kdep)" >&2
      else
        set -- $line
        apk_errors+=("  kernel-$KERNEL:" "    breaks: $1-$2[kernel=$kdep]" "    satisfies: world[kernel]")
      fi
      fail=1
      continue
    fi
    set -- $line
    out+=("$1 - $2")
  done
  if [ ${#apk_errors[@]} -gt 0 ]; then
    echo "ERROR: unable to select packages:" >&2
    printf '%s\n' "${apk_errors[@]}" >&2
  fi
  [ $fail = 0 ] || { echo "make[2]: *** [Makefile:218: package_install] Error 255" >&2; exit 1; }
  printf '%s\n' "${out[@]}"
}

# Like the real _check_keys: 24.10 makes a random usign key-build (+ ucert) on the first run after an
# unpack; 25.12 makes only an apk key for the local index, which never reaches the image.
check_keys() {
  if [ $PM = opkg ]; then
    [ -s "$here/key-build" ] || head -c 64 /dev/urandom > "$here/key-build"
  else
    mkdir -p "$here/keys"
    [ -s "$here/keys/local-private-key.pem" ] || head -c 32 /dev/urandom > "$here/keys/local-private-key.pem"
  fi
}

image() {
  check_profile
  check_keys
  local pkgs work root name
  pkgs=$(resolve)
  mkdir -p "$BIN_DIR"
  work=$here/build_dir/stand-in
  rm -rf "$work"; mkdir -p "$work/root" "$work/boot"
  root=$work/root
  # fake base rootfs
  mkdir -p "$root"/{bin,sbin,lib,tmp,overlay,rom,proc,sys,dev,root,etc/init.d,etc/rc.d,etc/config,etc/uci-defaults,usr/lib/opkg,lib/apk/db,lib/upgrade/keep.d}
  printf 'STAND-IN busybox\n' > "$root/bin/busybox"
  printf "DISTRIB_ID='OpenWrt'\nDISTRIB_RELEASE='%s'\nDISTRIB_TARGET='%s'\nDISTRIB_DESCRIPTION='STAND-IN'\n" "$VERSION" "$TARGET" > "$root/etc/openwrt_release"
  printf '#!/bin/sh /etc/rc.common\nSTART=10\n' > "$root/etc/init.d/boot"
  printf 'config system\n\toption hostname OpenWrt\n' > "$root/etc/config/system"
  if [ $PM = opkg ]; then printf '%s\n' "$pkgs" | sed 's/ - /\t/' > "$root/usr/lib/opkg/status"
  else printf '%s\n' "$pkgs" | sed 's/ - /\t/' > "$root/lib/apk/db/installed"; fi
  if [ -n "$FILES" ]; then cp -a "$FILES"/. "$root"/; fi
  # like rootfs.mk: enable every procd/rc.common init script unless disabled
  for f in "$root"/etc/init.d/*; do
    [ -f "$f" ] || continue
    n=$(basename "$f")
    [ "$(head -n1 "$f")" = '#!/bin/sh /etc/rc.common' ] || continue
    case " $DISABLED_SERVICES " in *" $n "*) continue ;; esac
    s=$(sed -n 's/^START=\([0-9]*\).*/\1/p' "$f" | head -n1)
    [ -n "$s" ] && ln -sf "../init.d/$n" "$root/etc/rc.d/S$s$n"
  done
  find "$root" -exec touch -h -d "@$EPOCH" {} +
  SOURCE_DATE_EPOCH=$EPOCH mksquashfs "$root" "$work/root.squashfs" -noappend -all-root -comp gzip -quiet -no-progress >/dev/null
  local limit=$((ROOTFS_PARTSIZE * 1048576)) size
  size=$(stat -c %s "$work/root.squashfs")
  name="openwrt-$VERSION-${EXTRA_IMAGE_NAME:+$EXTRA_IMAGE_NAME-}rockchip-armv8-$PROFILE-squashfs-sysupgrade.img.gz"
  if [ "$size" -gt "$limit" ]; then
    # the real ImageBuilder only warns here and make still succeeds
    echo "WARNING: Image file $work/root.squashfs is too big: $size > $limit"
  else
    head -c 4194304 /dev/zero | tr '\0' 'K' > "$work/boot/kernel.img"
    printf 'STAND-IN boot.scr\n' > "$work/boot/boot.scr"
    touch -d "@$EPOCH" "$work/boot"/*
    E2FSPROGS_FAKE_TIME=$EPOCH mkfs.ext4 -q -F -L kernel -U 6b2a1c3e-0000-4000-8000-000000000001 \
      -E hash_seed=6b2a1c3e-0000-4000-8000-000000000002,root_owner=0:0 -d "$work/boot" "$work/kernel.ext4" 16M
    # mke2fs -d copies each file's ctime, which touch cannot set; pin it so equal inputs give equal bytes
    for f in / /lost+found /kernel.img /boot.scr; do
      E2FSPROGS_FAKE_TIME=$EPOCH debugfs -w -R "sif $f ctime @$EPOCH" "$work/kernel.ext4" >/dev/null 2>&1
    done
    local img=$work/disk.img
    truncate -s $(( (64 + ROOTFS_PARTSIZE) * 1048576 )) "$img"
    printf 'label: dos\nlabel-id: 0x5354414e\nunit: sectors\n\nstart=65536, size=32768, type=83\nstart=131072, size=%d, type=83\n' \
      $((ROOTFS_PARTSIZE * 2048)) | sfdisk -q --no-reread --no-tell-kernel "$img" >/dev/null
    printf 'STAND-IN idbloader' | dd of="$img" bs=512 seek=64 conv=notrunc status=none
    printf 'STAND-IN u-boot.itb' | dd of="$img" bs=512 seek=16384 conv=notrunc status=none
    dd if="$work/kernel.ext4" of="$img" bs=512 seek=65536 conv=notrunc status=none
    dd if="$work/root.squashfs" of="$img" bs=512 seek=131072 conv=notrunc status=none
    gzip -n -9 -c "$img" > "$BIN_DIR/$name"
    python3 "$here/fwtool-trailer.py" "$BIN_DIR/$name" \
      "{\"metadata_version\":\"1.1\",\"compat_version\":\"1.0\",\"supported_devices\":[\"friendlyarm,nanopi-r3s\"],\"version\":{\"dist\":\"OpenWrt\",\"version\":\"$VERSION\",\"revision\":\"STAND-IN-r28xxx\",\"target\":\"$TARGET\",\"board\":\"$PROFILE\"}}"
    # append-metadata then signs with key-build when it exists (24.10): a fwtool signature block
    # (stand-in ucert + usign signature) that differs on every unpack.
    if [ -s "$here/key-build" ]; then
      python3 "$here/fwtool-trailer.py" --signature "$BIN_DIR/$name" "$(sha256sum "$here/key-build" | cut -c1-64)"
    fi
  fi
  printf '%s\n' "$pkgs" > "$BIN_DIR/openwrt-$VERSION-${EXTRA_IMAGE_NAME:+$EXTRA_IMAGE_NAME-}rockchip-armv8-$PROFILE.manifest"
  printf '{"target":"%s","version_number":"%s","profiles":{"%s":{"images":[{"name":"%s","type":"sysupgrade"}]}}}\n' \
    "$TARGET" "$VERSION" "$PROFILE" "$name" > "$BIN_DIR/profiles.json"
  (cd "$BIN_DIR" && find . -maxdepth 1 -type f ! -name sha256sums -printf '%P\n' | sort | xargs -r sha256sum -b > sha256sums)
  rm -rf "$work" "$here/tmp.index"
}

case ${1:-} in
  info) info ;;
  manifest) check_profile; check_keys; resolve ;;
  image) image ;;
  *) echo "usage: make info|manifest|image (STAND-IN)" >&2; exit 2 ;;
esac
