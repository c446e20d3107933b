#!/bin/sh
# mmdebstrap customize hook for an image profile: `guest-profile.sh install|finalize ROOT PROFILE_DIR`.
# `install` runs before guest-customize.sh, while the chroot's apt still points at the build
# mirror; `finalize` runs after it (guest-customize.sh rewrites the apt sources for the guest).
# PROFILE_DIR, written by the role's image entry point from the profile:
#   debconf                 debconf-set-selections lines, answered before any profile package
#   packages                package names, one a line, from the guest's own suite
#   sources/NAME.build.list an extra apt source as the build sees it (build mirror)
#   sources/NAME.list       the same source as the guest sees it (guest mirror)
#   sources/NAME.pref       its apt preferences (pin, packages held at the guest's suite)
#   sources/NAME.suite      the target release its packages come from (apt-get -t)
#   sources/NAME.packages   packages installed from that suite, one a line
#   files.list, files/N     more files for the guest: line N of files.list is "MODE PATH" of files/N
# Packages are installed inside the chroot by its own apt and dpkg at native speed; mmdebstrap
# keeps services from starting while hooks run, and removes the package lists afterwards.
set -eu
action=$1 root=$2 dir=$3

apt_install() {
    chroot "$root" apt-get install --yes --quiet --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"
}

case $action in
install)
    if [ -s "$dir/debconf" ]; then
        chroot "$root" debconf-set-selections < "$dir/debconf"
    fi
    extra=
    for src in "$dir"/sources/*.build.list; do
        [ -e "$src" ] || continue
        name=$(basename "$src" .build.list)
        install -m 0644 "$src" "$root/etc/apt/sources.list.d/$name.list"
        if [ -e "$dir/sources/$name.pref" ]; then
            install -m 0644 "$dir/sources/$name.pref" "$root/etc/apt/preferences.d/$name"
        fi
        extra=yes
    done
    if [ -n "$extra" ]; then
        echo "xenlab: reading the package lists of the profile's apt sources"
        chroot "$root" apt-get update --quiet
    fi
    if [ -s "$dir/packages" ]; then
        echo "xenlab: installing the profile's packages: $(tr '\n' ' ' < "$dir/packages")"
        # shellcheck disable=SC2046 # one package name a line
        apt_install $(cat "$dir/packages")
    fi
    for list in "$dir"/sources/*.packages; do
        [ -s "$list" ] || continue
        name=$(basename "$list" .packages)
        suite=$(cat "$dir/sources/$name.suite")
        echo "xenlab: installing from $suite: $(tr '\n' ' ' < "$list")"
        # Mixing suites: a newer suite's package may ship a file that an older one, replaced in the
        # same transaction, also has (sid's openssl-provider-legacy and bookworm's libssl3).
        # shellcheck disable=SC2046 # one package name a line
        apt_install -o Dpkg::Options::=--force-overwrite -t "$suite" $(cat "$list")
    done
    chroot "$root" apt-get clean
    ;;
finalize)
    for src in "$dir"/sources/*.list; do
        case $src in *.build.list) continue ;; esac
        [ -e "$src" ] || continue
        install -m 0644 "$src" "$root/etc/apt/sources.list.d/$(basename "$src")"
    done
    if [ -s "$dir/files.list" ]; then
        n=0
        while read -r mode path; do
            n=$((n + 1))
            install -D -m "$mode" "$dir/files/$n" "$root$path"
        done < "$dir/files.list"
    fi
    ;;
*)
    echo "usage: $0 install|finalize ROOT PROFILE_DIR" >&2
    exit 2
    ;;
esac
