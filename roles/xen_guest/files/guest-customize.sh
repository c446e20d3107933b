#!/bin/sh
# mmdebstrap customize hook for PV guest images: `guest-customize.sh ROOT MIRROR SUITE PUBKEYS DIRTY`.
# Per-guest settings come from Xen's `extra` kernel command line at boot (systemd.hostname=,
# xenlab.ip=), so one image serves every guest.
set -eu
root=$1 mirror=$2 suite=$3 pubkeys=$4 dirty=$5

rm -f "$root"/etc/apt/sources.list.d/*
printf 'deb %s %s main\n' "$mirror" "$suite" > "$root/etc/apt/sources.list"
printf 'Acquire::Check-Valid-Until "false";\nAPT::Install-Recommends "false";\n' \
    > "$root/etc/apt/apt.conf.d/90xenlab"

install -d -m 0700 "$root/root/.ssh"
install -m 0600 "$pubkeys" "$root/root/.ssh/authorized_keys"
printf 'PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n' \
    > "$root/etc/ssh/sshd_config.d/xenlab.conf"
rm -f "$root"/etc/ssh/ssh_host_*
install -d "$root/etc/systemd/system/ssh.service.d"
printf '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n' \
    > "$root/etc/systemd/system/ssh.service.d/xenlab-hostkeys.conf"
: > "$root/etc/machine-id"
rm -f "$root/etc/hostname"
printf '/dev/xvda / ext4 defaults,noatime 0 1\n' > "$root/etc/fstab"

# Routed Xen networking: the guest holds its address as a /32 and sends everything to its vif;
# dom0 answers ARP for it (proxy ARP) and routes.
cat > "$root/usr/local/sbin/xenlab-guest-net" <<'EOS'
#!/bin/sh
set -eu
ip=
for arg in $(cat /proc/cmdline); do
    case $arg in xenlab.ip=*) ip=${arg#xenlab.ip=} ;; esac
done
ip link set lo up
[ -n "$ip" ] || exit 0
ip link set eth0 up
ip addr replace "${ip%%/*}/32" dev eth0
ip route replace default dev eth0
EOS
chmod 0755 "$root/usr/local/sbin/xenlab-guest-net"
cat > "$root/etc/systemd/system/xenlab-guest-net.service" <<'EOS'
[Unit]
Description=xenlab: routed guest address from the kernel command line
DefaultDependencies=no
Before=network-pre.target ssh.service
Wants=network-pre.target
After=systemd-udevd.service sys-subsystem-net-devices-eth0.device
Requires=sys-subsystem-net-devices-eth0.device
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/xenlab-guest-net
[Install]
WantedBy=multi-user.target
EOS
ln -sf /etc/systemd/system/xenlab-guest-net.service \
    "$root/etc/systemd/system/multi-user.target.wants/xenlab-guest-net.service"

# The dirty-page workload: off until /etc/default/xenlab-dirty sets a rate.
install -m 0755 "$dirty" "$root/usr/local/bin/xenlab-dirty"
printf 'XENLAB_DIRTY_RATE=0\nXENLAB_DIRTY_WSS_MB=16\n' > "$root/etc/default/xenlab-dirty"
cat > "$root/etc/systemd/system/xenlab-dirty.service" <<'EOS'
[Unit]
Description=xenlab: dirty memory at a set rate (migration experiments)
[Service]
EnvironmentFile=/etc/default/xenlab-dirty
ExecStart=/usr/local/bin/xenlab-dirty ${XENLAB_DIRTY_RATE} ${XENLAB_DIRTY_WSS_MB}
Restart=on-failure
[Install]
WantedBy=multi-user.target
EOS

# Under emulation these only slow the guest down.
for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer man-db.timer \
    getty@tty1.service; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
done

# Drop kernel modules a PV guest never loads (hardware drivers); keeps the image small.
for kdir in "$root"/lib/modules/*; do
    [ -d "$kdir" ] || continue
    for sub in sound drivers/gpu drivers/media drivers/net/wireless drivers/net/ethernet \
        drivers/infiniband drivers/staging drivers/usb drivers/bluetooth drivers/scsi \
        drivers/iio drivers/hid drivers/input drivers/mtd drivers/isdn drivers/platform \
        net/wireless net/mac80211 net/bluetooth; do
        rm -rf "$kdir/kernel/$sub"
    done
    chroot "$root" depmod "$(basename "$kdir")"
done

# A small initrd: the guest only needs its Xen block and network frontends and ext4 to mount
# /dev/xvda (Debian's default MODULES=most unpacks to more than a 256 MiB guest can hold).
install -d "$root/etc/initramfs-tools/conf.d"
printf 'MODULES=list\n' > "$root/etc/initramfs-tools/conf.d/xenlab.conf"
printf 'xen-blkfront\nxen-netfront\next4\n' >> "$root/etc/initramfs-tools/modules"
chroot "$root" update-initramfs -u -k all
