#!/bin/sh
# build-container-image.sh TAG SUITE MIRROR LAB_MIRROR PACKAGES CUSTOMIZE PUBKEY HOSTS
# Builds a systemd container image with mmdebstrap and imports it into podman as TAG
# (no container registry is needed).
set -eu
tag=$1 suite=$2 mirror=$3 lab_mirror=$4 packages=$5 customize=$6 pubkey=$7 hosts=$8
mmdebstrap --quiet --variant=apt --include="$packages" \
    --customize-hook="sh '$customize' \"\$1\" container '$lab_mirror' '$suite' '$pubkey' '$hosts'" \
    "$suite" - "$mirror" | podman import --quiet --change 'CMD ["/sbin/init"]' - "$tag"
