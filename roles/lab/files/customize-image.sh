#!/bin/sh
# mmdebstrap customize hook for lab images: `customize-image.sh ROOT KIND MIRROR SUITE PUBKEY HOSTS`.
# KIND is `vm` (QEMU dom0: boots a kernel, network from the kernel command line) or
# `container` (podman: the lab's network namespace is already configured).
# Per-host settings come at boot (hostname and address on the kernel command line), so one
# image serves every host of its kind.
set -eu
root=$1 kind=$2 mirror=$3 suite=$4 pubkey=$5 hosts=$6

# apt inside the lab talks only to the lab gateway's package cache.
rm -f "$root"/etc/apt/sources.list.d/*
printf 'deb %s %s main\n' "$mirror" "$suite" > "$root/etc/apt/sources.list"
printf 'Acquire::Check-Valid-Until "false";\nAPT::Install-Recommends "false";\n' \
    > "$root/etc/apt/apt.conf.d/90xenlab"

# root logs in with the lab's key only.
install -d -m 0700 "$root/root/.ssh"
install -m 0600 "$pubkey" "$root/root/.ssh/authorized_keys"
printf 'PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n' \
    > "$root/etc/ssh/sshd_config.d/xenlab.conf"

# Host keys are made on each host's first boot, not shared through the image.
rm -f "$root"/etc/ssh/ssh_host_*
install -d "$root/etc/systemd/system/ssh.service.d"
printf '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n' \
    > "$root/etc/systemd/system/ssh.service.d/xenlab-hostkeys.conf"

cat "$hosts" >> "$root/etc/hosts"
: > "$root/etc/machine-id"
rm -f "$root/etc/hostname"

if [ "$kind" = vm ]; then
    printf '/dev/vda / ext4 defaults,noatime 0 1\n' > "$root/etc/fstab"
    # xenlab.ip=ADDR/PREFIX xenlab.gw=ADDR on the kernel command line configure eth0.
    cat > "$root/usr/local/sbin/xenlab-cmdline-net" <<'EOF'
#!/bin/sh
set -eu
ip=; gw=
for arg in $(cat /proc/cmdline); do
    case $arg in
        xenlab.ip=*) ip=${arg#xenlab.ip=} ;;
        xenlab.gw=*) gw=${arg#xenlab.gw=} ;;
    esac
done
ip link set lo up
[ -n "$ip" ] || exit 0
ip link set eth0 up
ip addr replace "$ip" dev eth0
if [ -n "$gw" ]; then ip route replace default via "$gw" dev eth0; fi
EOF
    chmod 0755 "$root/usr/local/sbin/xenlab-cmdline-net"
    cat > "$root/etc/systemd/system/xenlab-cmdline-net.service" <<'EOF'
[Unit]
Description=xenlab: address eth0 from the kernel command line
DefaultDependencies=no
Before=network-pre.target ssh.service
Wants=network-pre.target
After=systemd-udevd.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/xenlab-cmdline-net
[Install]
WantedBy=multi-user.target
EOF
    ln -sf /etc/systemd/system/xenlab-cmdline-net.service \
        "$root/etc/systemd/system/multi-user.target.wants/xenlab-cmdline-net.service"
    # QEMU boots the dom0 with the image's initrd as built: later package triggers need not
    # rebuild it (minutes under software emulation).
    sed -i 's/^update_initramfs=.*/update_initramfs=no/' "$root/etc/initramfs-tools/update-initramfs.conf"
    # Under software emulation these only slow the boot down.
    for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer man-db.timer; do
        ln -sf /dev/null "$root/etc/systemd/system/$unit"
    done
fi
