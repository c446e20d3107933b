#!/bin/sh
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Build libxenguest (and the libraries it needs) from an unpacked Xen 4.17 source package,
# with patches, and the xl progress shim; run inside the xen_build role's bookworm chroot
# (or on any Debian 12 with the packages of roles/xen_build/vars/main.yml).
#
#   build-libxenguest.sh SRC WORK OUT [PATCH...]
#
# SRC: the tree `apt-get source xen` unpacked (left untouched), WORK: a scratch copy (made
# anew), OUT: where the results go (made anew): libxenguest.so.<ver> (stripped like
# Debian's), libxenlab-xlprogress.so, build-info.txt. XENLAB_SHIM_SRC names the shim's C
# file (default: xlprogress-shim.c beside this script). Takes ~15 s on 2 cores.
set -eu

if [ $# -lt 3 ]; then
    echo "usage: $0 SRC WORK OUT [PATCH...]" >&2
    exit 2
fi
src=$1 work=$2 out=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
shim=${XENLAB_SHIM_SRC:-$here/xlprogress-shim.c}
jobs=${XENLAB_BUILD_JOBS:-$(nproc)}

[ -f "$src/xen/Makefile" ] && [ -f "$src/tools/libs/guest/xg_sr_save.c" ] || {
    echo "$src does not look like a Xen source tree" >&2; exit 2; }
[ -f "$shim" ] || { echo "shim source $shim not found" >&2; exit 2; }

rm -rf "$work" "$out.tmp"
cp -a "$src" "$work"
for p in "$@"; do
    echo "=== applying $(basename "$p")"
    patch -d "$work" -p1 --forward --fuzz=0 --no-backup-if-mismatch < "$p"
done

cd "$work"
# Debian's delta removes configure and the autotools helpers (debian/rules puts them back).
cp /usr/share/misc/config.sub /usr/share/misc/config.guess .
./autogen.sh >/dev/null

export DEB_BUILD_MAINT_OPTIONS="hardening=+all"
cflags="$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)"
ldflags=$(dpkg-buildflags --get LDFLAGS)
unset CFLAGS CPPFLAGS LDFLAGS CXXFLAGS
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
leaf=xen-$(make -s -C xen xenversion 2>/dev/null | sed 's/^\([0-9]*\.[0-9]*\).*/\1/')
export WGET=/bin/false GIT=/bin/false

# Debian's paths and everything optional off: only the tools' libraries are built.
IASL=/bin/true ./configure \
    --prefix=/usr --includedir=/usr/include --libdir="/usr/lib/$multiarch" \
    --with-libexec-libdir-suffix="/$multiarch" --sysconfdir=/etc --localstatedir=/var \
    --with-libexec-leaf-dir="$leaf" \
    --disable-xen --disable-docs --disable-stubdom --disable-qemu-traditional \
    --disable-rombios --disable-ipxe --disable-ocamltools --disable-golang \
    --disable-xsmpolicy --disable-pvshim --disable-monitors \
    --with-system-qemu=/usr/libexec/xen-qemu-system-i386 \
    ac_cv_header_bzlib_h=no ac_cv_header_lzo_lzo1x_h=no \
    ac_cv_header_valgrind_memcheck_h=no >configure.log 2>&1 || {
        tail -30 configure.log >&2; exit 1; }

make -s -j"$jobs" -C tools/include "XEN_TARGET_ARCH=x86_64" >/dev/null
for lib in toolcore toollog evtchn gnttab call foreignmemory devicemodel ctrl guest; do
    make -s -j"$jobs" -C "tools/libs/$lib" XEN_TARGET_ARCH=x86_64 \
        "EXTRA_CFLAGS_XEN_TOOLS=$cflags" "PREPEND_LDFLAGS_XEN_TOOLS=$ldflags" >/dev/null
done

lib=$(cd tools/libs/guest && ls libxenguest.so.*.*.* | head -1)
mkdir -p "$out.tmp"
cp "tools/libs/guest/$lib" "$out.tmp/$lib"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$out.tmp/$lib"
# The shim only needs xentoollog.h; it is linked to nothing but libdl (part of libc).
gcc $cflags -shared -fPIC -Wall -Wextra -Werror -Itools/include -o \
    "$out.tmp/libxenlab-xlprogress.so" "$shim" $ldflags -ldl
strip --strip-unneeded "$out.tmp/libxenlab-xlprogress.so"

{
    echo "library=$lib"
    echo "soname=$(objdump -p "$out.tmp/$lib" | sed -n 's/^ *SONAME *//p')"
    echo "source=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version 2>/dev/null || echo unknown)"
    echo "patches=$(for p in "$@"; do basename "$p"; done | tr '\n' ' ' | sed 's/ $//')"
    echo "gcc=$(gcc -dumpfullversion)"
    echo "exports=$(nm -D --defined-only "$out.tmp/$lib" | grep -c ' T ')"
} > "$out.tmp/build-info.txt"
rm -rf "$out"
mv "$out.tmp" "$out"
cat "$out/build-info.txt"
