#!/bin/sh
# build-vm-image.sh OUT SUITE MIRROR LAB_MIRROR PACKAGES CUSTOMIZE PUBKEY HOSTS SIZE
# Builds a dom0 image directory OUT: root.img (ext4, no partition table), vmlinuz, initrd.img and
# xen.elf (Xen unpacked: QEMU boots it as a multiboot kernel). OUT appears only when complete.
set -eu
out=$1 suite=$2 mirror=$3 lab_mirror=$4 packages=$5 customize=$6 pubkey=$7 hosts=$8 size=$9
tmp=$(mktemp -d "$out.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mmdebstrap --quiet --variant=apt --include="$packages" \
    --customize-hook="sh '$customize' \"\$1\" vm '$lab_mirror' '$suite' '$pubkey' '$hosts'" \
    --customize-hook='printf "# xenlab: no DNS server in the lab; names are in /etc/hosts.\n" > "$1/etc/resolv.conf"' \
    --customize-hook="copy-out /boot '$tmp/'" \
    "$suite" "$tmp/root" "$mirror"
mke2fs -q -t ext4 -L xenlab-root -d "$tmp/root" -F "$tmp/root.img" "$size"
set -- "$tmp"/boot/vmlinuz-*;    cp "$1" "$tmp/vmlinuz"
set -- "$tmp"/boot/initrd.img-*; cp "$1" "$tmp/initrd.img"
set -- "$tmp"/boot/xen-*-amd64.gz; zcat "$1" > "$tmp/xen.elf"
rm -rf "$tmp/root" "$tmp/boot"
mv "$tmp" "$out"
trap - EXIT
