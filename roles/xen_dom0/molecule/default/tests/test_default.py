# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the role xen_dom0 promises (README), checked on the scenario's QEMU Xen dom0(s).

The expected values come from the scenario's inventory (molecule.yml, group xen_hosts), which
uses the settings of inventories/lab.
"""

import os
import re

import pytest
import testinfra.utils.ansible_runner
import yaml

RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"])
testinfra_hosts = RUNNER.get_hosts("xen_hosts")

with open(os.environ["MOLECULE_FILE"]) as _f:
    PLATFORMS = dict((p["name"], p) for p in yaml.safe_load(_f)["platforms"])
DOM0S = sorted(n for n, p in PLATFORMS.items() if "xen_hosts" in p.get("groups", []))


def expected(host, name):
    return host.ansible.get_variables()[name]


def xl_info(host):
    out = host.check_output("xl info")
    return dict((k.strip(), v.strip()) for k, _sep, v in (line.partition(":") for line in out.splitlines()) if k.strip())


def test_xen_417_runs_with_the_requested_scheduler(host):
    info = xl_info(host)
    assert (info["xen_major"], info["xen_minor"]) == ("4", "17")
    assert info["xen_scheduler"] == expected(host, "xen_dom0_scheduler") == "credit"
    assert "sched=credit" in info["xen_commandline"].split()


def test_dom0_has_the_requested_memory(host):
    mb = int(expected(host, "xen_dom0_memory_mb"))
    assert "dom0_mem=%dM,max:%dM" % (mb, mb) in xl_info(host)["xen_commandline"].split()
    # Name ID Mem VCPUs State Time(s)
    fields = host.check_output("xl list Domain-0").splitlines()[1].split()
    assert fields[:3] == ["Domain-0", "0", str(mb)]


def test_credit_caps_can_be_set(host):
    """The thesis's experiments cap a domain with the credit scheduler: set one and put it back."""
    def dom0_cap():
        row = host.check_output("xl sched-credit -d Domain-0").splitlines()[-1].split()
        return row[0], int(row[2]), int(row[3])

    assert dom0_cap() == ("Domain-0", 256, 0)
    host.check_output("xl sched-credit -d Domain-0 -c 90")
    try:
        assert dom0_cap() == ("Domain-0", 256, 90)
    finally:
        host.check_output("xl sched-credit -d Domain-0 -c 0")
    assert dom0_cap() == ("Domain-0", 256, 0)


@pytest.mark.parametrize("name", ["xen-hypervisor-4.17-amd64", "xen-utils-4.17", "openssh-client", "openssh-server"])
def test_packages_installed(host, name):
    assert host.package(name).is_installed


def test_package_lists_refreshed(host):
    """Images made by mmdebstrap carry no package lists: the role fetched them."""
    assert host.run("ls /var/lib/apt/lists/ | grep -q '_Packages'").rc == 0


@pytest.mark.parametrize("name", ["xen", "xendomains"])
def test_xen_services_enabled_and_running(host, name):
    svc = host.service(name)
    assert svc.is_enabled
    assert svc.is_running


def test_xenstore_and_console_daemons_run(host):
    # Debian starts the OCaml xenstored (oxenstored) by default.
    assert host.process.filter(comm="oxenstored") or host.process.filter(comm="xenstored")
    assert host.process.filter(comm="xenconsoled")
    assert host.check_output("xenstore-read /local/domain/0/name") == "Domain-0"


def test_dom0_does_not_balloon(host):
    """xen_dom0_autoballoon "off" (the role's default): dom0 keeps its memory."""
    xl_conf = host.file("/etc/xen/xl.conf")
    assert xl_conf.user == "root" and xl_conf.mode == 0o644
    lines = [line for line in xl_conf.content_string.splitlines() if re.match(r"^#?\s*autoballoon\s*=", line)]
    assert lines == ['autoballoon="off"']


def test_no_boot_loader_changes_in_the_lab(host):
    """xen_dom0_manage_bootloader is false: the role leaves GRUB alone (QEMU boots Xen)."""
    assert expected(host, "xen_dom0_manage_bootloader") is False
    assert not host.file("/etc/default/grub.d/xen.cfg").exists


def peers(host):
    """The other dom0s of the scenario, as (name, lab address, testinfra host)."""
    me = host.backend.get_hostname()
    return [(name, PLATFORMS[name]["lab_address"],
             testinfra.get_host("ansible://" + name, ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"]))
            for name in DOM0S if name != me]


def key_blob(line):
    """'ssh-ed25519 AAAA...' of a public key line (type and key, without options or comment)."""
    words = line.split()
    i = next(n for n, w in enumerate(words) if w.startswith("ssh-"))
    return " ".join(words[i:i + 2])


def test_two_dom0s_for_migration():
    assert len(DOM0S) >= 2, "the scenario needs two dom0s to check the migration ssh set-up"


def test_root_has_a_migration_key(host):
    key = host.file("/root/.ssh/id_ed25519")
    assert key.is_file and key.user == "root" and key.mode == 0o600
    pub = host.file("/root/.ssh/id_ed25519.pub").content_string.split()
    assert pub[0] == "ssh-ed25519"
    assert pub[2] == "xenlab-migration@" + host.backend.get_hostname()


def test_peers_root_may_log_in(host):
    authorized = host.file("/root/.ssh/authorized_keys").content_string.splitlines()
    for name, _address, peer in peers(host):
        blob = key_blob(peer.file("/root/.ssh/id_ed25519.pub").content_string)
        lines = [line for line in authorized if line.strip() and key_blob(line) == blob]
        assert lines == ["%s xenlab-migration@%s" % (blob, name)]


def test_peers_host_keys_trusted_under_their_address(host):
    for _name, address, peer in peers(host):
        blob = key_blob(peer.file("/etc/ssh/ssh_host_ed25519_key.pub").content_string)
        found = host.check_output("ssh-keygen -F %s -f /root/.ssh/known_hosts", address).splitlines()
        assert [key_blob(line) for line in found if not line.startswith("#")] == [blob]


def test_xl_can_reach_each_peer_over_ssh(host):
    """What `xl migrate GUEST ADDRESS` runs first: ssh to the peer's root, no prompt, strict host keys."""
    for name, address, _peer in peers(host):
        out = host.check_output(
            "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=30 root@%s xl info", address)
        assert re.search(r"^host\s*:\s*%s$" % re.escape(name), out, re.M)
