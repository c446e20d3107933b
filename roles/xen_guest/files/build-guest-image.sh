#!/bin/sh
# build-guest-image.sh OUT SUITE BUILD_MIRROR GUEST_MIRROR PACKAGES PUBKEYS SIZE DIRTY_SRC [PROFILE_DIR]
# Builds a PV guest image directory OUT: root.img.gz (ext4, no partition table; the guest sees it
# as /dev/xvda), vmlinuz and initrd.img (the guest's own kernel, booted by Xen from dom0).
# PROFILE_DIR (optional, see guest-profile.sh) adds an image profile's packages and apt sources.
# OUT appears only when complete.
set -eu
out=$1 suite=$2 mirror=$3 guest_mirror=$4 packages=$5 pubkeys=$6 size=$7 dirty_src=$8 profile=${9:-}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "$out.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "xenlab: compiling the dirty-page workload"
gcc -O2 -Wall -static -o "$tmp/xenlab-dirty" "$dirty_src"
# The customize hooks, in order: the profile's packages (while apt still uses the build mirror),
# the guest's own settings, the profile's apt sources for the guest, the kernel and initrd out.
set --
if [ -n "$profile" ]; then
    set -- "$@" --customize-hook="sh '$here/guest-profile.sh' install \"\$1\" '$profile'"
fi
set -- "$@" --customize-hook="sh '$here/guest-customize.sh' \"\$1\" '$guest_mirror' '$suite' '$pubkeys' '$tmp/xenlab-dirty'"
if [ -n "$profile" ]; then
    set -- "$@" --customize-hook="sh '$here/guest-profile.sh' finalize \"\$1\" '$profile'"
fi
# Last: mmdebstrap copied the controller's resolv.conf in for the build. The lab has no DNS
# server, and a nameserver outside it would only make every lookup (Postfix's smtpd looks up each
# client) wait 5 s for a reply that cannot come: no nameserver, lookups fail at once.
set -- "$@" --customize-hook='printf "# xenlab: no DNS server in the lab; names are in /etc/hosts.\n" > "$1/etc/resolv.conf"'
set -- "$@" --customize-hook="copy-out /boot '$tmp/'"
echo "xenlab: building the guest root file system ($suite${profile:+, profile $(basename "$profile")})"
mmdebstrap --quiet --variant=apt --include="$packages" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    "$@" \
    "$suite" "$tmp/root" "$mirror"
mke2fs -q -t ext4 -L xenlab-guest -d "$tmp/root" -F "$tmp/root.img" "$size"
gzip -1 "$tmp/root.img"
set -- "$tmp"/boot/vmlinuz-*;    cp "$1" "$tmp/vmlinuz"
set -- "$tmp"/boot/initrd.img-*; cp "$1" "$tmp/initrd.img"
rm -rf "$tmp/root" "$tmp/boot" "$tmp/xenlab-dirty"
mv "$tmp" "$out"
trap - EXIT
echo "xenlab: guest image ready in $out"
