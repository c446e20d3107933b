# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mail server as the thesis's users see it: real mails from jane to john through the real
Postfix (sent and checked with xenlab.migration.smtp_load inside the container), relaying refused,
and mails sent across a Postfix outage counted as failures with none of the accepted ones lost."""

from __future__ import annotations

import os
import time

import testinfra
import testinfra.utils.ansible_runner

# Commands go straight through podman exec (fast); the module runs through Ansible, as a playbook
# would run it (testinfra's ansible backend, on the same container).
_NAMES = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("all")
testinfra_hosts = ["podman://%s" % name for name in _NAMES]

MODULE = "xenlab.migration.smtp_load"
MAILDIR = "/home/john/Maildir"


def smtp_load(node, **args):
    """Run the module on the container for real (testinfra's default would be check mode)."""
    name = node.backend.name
    runner = testinfra.get_host("ansible://%s?ansible_inventory=%s" % (name, os.environ["MOLECULE_INVENTORY_FILE"]))
    text = " ".join("%s=%s" % (key, ",".join(map(str, value)) if isinstance(value, list) else value)
                    for key, value in args.items())
    result = runner.ansible(MODULE, text, check=False)  # root in the container: no become
    assert not result.get("failed") and "run_id" in result, result
    return result


def test_postfix_runs_and_listens_on_all_addresses(host):
    assert host.package("postfix").is_installed
    service = host.service("postfix")
    assert service.is_running and service.is_enabled
    assert host.socket("tcp://0.0.0.0:25").is_listening


def test_main_cf(host):
    names = ["mydomain", "myhostname", "myorigin", "mynetworks", "smtpd_relay_restrictions", "inet_interfaces",
             "home_mailbox"]
    values = dict(zip(names, host.check_output("postconf -h %s" % " ".join(names)).splitlines()))
    assert values == {
        "mydomain": "xen.com",
        "myhostname": "mail.xen.com",
        "myorigin": "$mydomain",
        "mynetworks": "127.0.0.0/8 [::1]/128",
        "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
        "inet_interfaces": "all",
        "home_mailbox": "Maildir/",
    }
    assert host.run("postfix check").rc == 0


def test_mailbox_users(host):
    for name, full in (("jane", "Jane Doe"), ("john", "John Doe")):
        user = host.user(name)
        assert user.exists and user.shell == "/usr/sbin/nologin" and user.gecos == full
        for sub in ("", "/new", "/cur", "/tmp"):
            maildir = host.file("%s/Maildir%s" % (user.home, sub))
            assert maildir.is_directory and maildir.user == name and maildir.mode == 0o700


def test_jane_to_john_is_delivered(host):
    sent = smtp_load(host, host="127.0.0.1", count=20, rate=20, concurrency=4, run_id="molecule-deliver")
    assert (sent["sent"], sent["accepted"], sent["failed_mails"]) == (20, 20, 0), sent.get("failures")
    assert sent["accepted_seqs"] == list(range(1, 21))
    assert 0 < sent["response_ms"]["min"] <= sent["response_ms"]["median"] <= sent["response_ms"]["p95"] \
        <= sent["response_ms"]["max"] < 5000
    assert all(item["code"] == 250 for item in sent["timeline"])
    checked = smtp_load(host, state="check", run_id="molecule-deliver", mailbox=MAILDIR,
                        expected_seqs=sent["accepted_seqs"], delivery_timeout=30)
    assert checked["delivered"] == 20 and checked["missing_seqs"] == [] and checked["duplicate_seqs"] == []
    assert checked["mailbox_format"] == "maildir" and checked["delivery_delay_ms"]["count"] == 20
    # One of them, as john's mail reader would see it.
    files = host.check_output("grep -l '^X-Xenlab-Run: molecule-deliver$' %s/new/*", MAILDIR).split()
    assert len(files) == 20
    mail = host.file(files[0])
    assert mail.user == "john" and mail.contains("^Delivered-To: john@xen.com$") and mail.contains("^From: jane@xen.com$")
    assert mail.contains(r"^Received: from mail (localhost \[127.0.0.1\])$") and mail.contains("^\tby mail.xen.com (Postfix) with ESMTP")


def test_relay_to_an_outside_domain_is_refused(host):
    # From the container's own eth0 address, which is not in mynetworks; refused at RCPT, so no
    # mail leaves the container.
    address = host.check_output("ip -4 -o addr show eth0").split()[3].split("/")[0]
    result = smtp_load(host, host=address, count=2, rate=0, recipient="someone@example.org", run_id="molecule-relay")
    assert (result["accepted"], result["rejected"], result["errors"]) == (0, 2, 0)
    assert result["failures_by_stage"] == {"rcpt": 2} and result["failures_by_code"] == {"554": 2}
    assert result["failures"][0]["message"] == "5.7.1 <someone@example.org>: Relay access denied"
    assert host.run("mailq").stdout.strip() == "Mail queue is empty"


def test_unknown_local_user_is_refused(host):
    result = smtp_load(host, host="127.0.0.1", count=1, recipient="nosuchuser@xen.com", run_id="molecule-unknown")
    assert result["failures"][0]["code"] == 550 and result["failures"][0]["stage"] == "rcpt"
    assert "User unknown in local recipient table" in result["failures"][0]["message"]


def test_load_across_an_outage_loses_no_accepted_mail(host):
    # The started/stopped pair around a real outage: Postfix stopped for about 2 s (what a guest's
    # migration downtime looks like to the client: connections refused, then service again).
    started = smtp_load(host, state="started", host="127.0.0.1", count=0, rate=20, concurrency=4, timeout=10,
                        max_duration=120, run_id="molecule-outage")
    assert started["changed"] and started["pid"] > 0
    try:
        time.sleep(1.5)
        host.run_expect([0], "systemctl stop postfix")
        time.sleep(2.0)
    finally:
        host.run_expect([0], "systemctl start postfix")
    time.sleep(2.5)
    stopped = smtp_load(host, state="stopped", run_id="molecule-outage", check_delivery=True, mailbox=MAILDIR,
                        delivery_timeout=30)
    assert stopped["sent"] >= 80 and stopped["unfinished"] == 0
    assert stopped["failed_mails"] >= 20, "about 40 mails were due while Postfix was down"
    assert stopped["failures_by_stage"].get("connect", 0) >= 20
    assert "Connection refused" in {f["message"] for f in stopped["failures"]}
    assert stopped["accepted"] >= 40
    # accepted before and after the outage, and every accepted mail is in john's Maildir
    assert stopped["timeline"][0]["ok"] and stopped["timeline"][-1]["ok"]
    assert stopped["delivered"] == stopped["accepted"] and stopped["missing_seqs"] == []
    assert host.socket("tcp://0.0.0.0:25").is_listening
