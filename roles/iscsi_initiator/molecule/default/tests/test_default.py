# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""iscsi_target (tgt in the container xlmol-san) and iscsi_initiator (open-iscsi on the QEMU VM
xlmol-ini) after converge: CHAP-protected session, stable disk path, data that reaches the
target's backing file, login at boot, and a wrong secret refused.

Names and secrets are the scenario's test values (molecule.yml, group_vars all).
"""

import hashlib
import os
import time

import pytest
import testinfra
import yaml

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
with open(os.environ["MOLECULE_FILE"]) as _f:
    _CONF = yaml.safe_load(_f)
PLATFORMS = dict((p["name"], p) for p in _CONF["platforms"])
VARS = _CONF["provisioner"]["inventory"]["group_vars"]["all"]
SAN = next(n for n, p in PLATFORMS.items() if "iscsi_targets" in p["groups"])
INI = next(n for n, p in PLATFORMS.items() if "xen_hosts" in p["groups"])
PORTAL = "%s:3260" % PLATFORMS[SAN]["lab_address"]
IQN = "%s:%s" % (VARS["xlmol_iqn_prefix"], VARS["xlmol_lun"]["name"])
BY_PATH = "/dev/disk/by-path/ip-%s-iscsi-%s-lun-1" % (PORTAL, IQN)
BACKING = "/srv/xenlab/iscsi/%s.img" % VARS["xlmol_lun"]["name"]
LUN_BYTES = 64 << 20
MIB = 1 << 20
# Where the data test writes: 4 MiB at 8 MiB into the LUN.
DATA_OFFSET_MIB, DATA_MIB = 8, 4


@pytest.fixture(scope="module")
def san():
    return testinfra.get_host("ansible://" + SAN, ansible_inventory=INVENTORY)


@pytest.fixture(scope="module")
def ini():
    return testinfra.get_host("ansible://" + INI, ansible_inventory=INVENTORY)


def sessions(ini):
    out = ini.run("iscsiadm -m session")
    # rc 21: no active sessions
    assert out.rc in (0, 21), out.stderr
    return [line.split() for line in out.stdout.splitlines() if line.strip()]


def wait_for(check, timeout=60):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out after %d s" % timeout
        time.sleep(1)


def read_sha256(host, path, direct):
    cmd = "dd if=%s bs=1M skip=%s count=%s status=none" + (" iflag=direct" if direct else "") + " | sha256sum"
    return host.check_output(cmd, path, str(DATA_OFFSET_MIB), str(DATA_MIB)).split()[0]


@pytest.fixture(scope="module")
def written(ini):
    """Writes DATA_MIB MiB of fresh random data to the LUN, bypassing the page cache; returns its SHA-256."""
    tmp = "/root/xlmol-data.bin"
    ini.check_output("head -c %s /dev/urandom > %s", str(DATA_MIB * MIB), tmp)
    sha = ini.check_output("sha256sum %s", tmp).split()[0]
    ini.check_output("dd if=%s of=%s bs=1M seek=%s oflag=direct conv=notrunc,fsync status=none",
                     tmp, BY_PATH, str(DATA_OFFSET_MIB))
    ini.check_output("rm -f %s", tmp)
    assert len(sha) == 64 and sha != hashlib.sha256(b"\0" * DATA_MIB * MIB).hexdigest()
    return sha


def test_target_daemon_serves_the_lun_with_chap_and_acl(san):
    tgt = san.service("tgt")
    assert tgt.is_enabled and tgt.is_running
    conf = san.file("/etc/tgt/conf.d/xenlab.conf")
    assert conf.user == "root" and conf.mode == 0o600
    assert "incominguser %s %s" % (VARS["xlmol_chap_user"], VARS["xlmol_chap_password"]) in conf.content_string
    show = san.check_output("tgtadm --lld iscsi --mode target --op show")
    assert "Target 1: %s" % IQN in show
    assert "Backing store path: %s" % BACKING in show
    account = show.split("Account information:")[1].split("ACL information:")
    assert account[0].split() == [VARS["xlmol_chap_user"]]
    assert account[1].split() == [PLATFORMS[INI]["lab_address"]]


def test_backing_file_is_sparse_and_private(san):
    assert san.file(os.path.dirname(BACKING)).mode == 0o700
    backing = san.file(BACKING)
    assert backing.size == LUN_BYTES


def test_initiator_has_its_own_name(ini):
    name = ini.file("/etc/iscsi/initiatorname.iscsi")
    assert name.mode == 0o600
    assert name.content_string == "InitiatorName=iqn.2004-10.com.debian:%s\n" % INI


def test_initiator_services(ini):
    assert ini.service("iscsid").is_running
    assert ini.service("iscsid").is_enabled
    assert ini.service("open-iscsi").is_enabled


def test_one_session_to_the_target(ini):
    # tcp: [1] 192.168.77.60:3260,1 iqn.2012-06.com.xen.san:xlmol (non-flash)
    assert [s[2:4] for s in sessions(ini)] == [[PORTAL + ",1", IQN]]


def test_lun_has_its_stable_path(ini):
    link = ini.file(BY_PATH)
    assert link.is_symlink
    dev = ini.check_output("readlink -f %s", BY_PATH)
    assert dev.startswith("/dev/sd")
    assert int(ini.check_output("blockdev --getsize64 %s", dev)) == LUN_BYTES


def test_data_reads_back_and_reaches_the_target(ini, san, written):
    assert read_sha256(ini, BY_PATH, direct=True) == written
    assert read_sha256(san, BACKING, direct=False) == written


def test_node_logs_in_at_boot_with_chap(ini):
    rec = dict(line.split(" = ", 1) for line in ini.check_output(
        "iscsiadm -m node -T %s -p %s -o show", IQN, PORTAL).splitlines() if " = " in line)
    assert rec["node.startup"] == "automatic"
    assert rec["node.session.auth.authmethod"] == "CHAP"
    assert rec["node.session.auth.username"] == VARS["xlmol_chap_user"]
    assert "node.startup = automatic" in ini.file("/etc/iscsi/iscsid.conf").content_string.splitlines()


def test_boot_time_login_brings_the_disk_back(ini, written):
    """Log out, then run what boot runs (open-iscsi.service: iscsiadm -m node --loginall=automatic)."""
    ini.check_output("iscsiadm -m node -T %s -p %s --logout", IQN, PORTAL)
    wait_for(lambda: not ini.file(BY_PATH).exists, 30)
    assert sessions(ini) == []
    ini.check_output("systemctl restart open-iscsi")
    wait_for(lambda: ini.file(BY_PATH).exists, 60)
    assert [s[2:4] for s in sessions(ini)] == [[PORTAL + ",1", IQN]]
    assert read_sha256(ini, BY_PATH, direct=True) == written


def test_wrong_chap_secret_is_refused(ini):
    """A second node record for the target (through its own iface) with a wrong secret: rc 24."""
    iface = "xlmolbad"
    node = "iscsiadm -m node -T %s -p %s -I %s" % (IQN, PORTAL, iface)
    ini.check_output("iscsiadm -m iface -I %s -o new", iface)
    try:
        ini.check_output(node + " -o new")
        for key, value in (("node.startup", "manual"), ("node.session.auth.authmethod", "CHAP"),
                           ("node.session.auth.username", VARS["xlmol_chap_user"]),
                           ("node.session.auth.password", "wrong-" + VARS["xlmol_chap_password"])):
            ini.check_output(node + " -o update -n %s -v %s", key, value)
        login = ini.run(node + " --login")
        assert login.rc == 24, (login.rc, login.stdout, login.stderr)
        assert "authorization failure" in login.stderr.lower()
    finally:
        ini.run(node + " --logout")
        ini.run(node + " -o delete")
        ini.run("iscsiadm -m iface -I %s -o delete", iface)
    # Only the good session is left, and the extra record and iface are gone.
    assert [s[2:4] for s in sessions(ini)] == [[PORTAL + ",1", IQN]]
    assert ini.run("iscsiadm -m iface -I %s", iface).rc != 0
