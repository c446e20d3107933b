# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The asterisk role's behaviour, tested with real SIP calls placed by sipp inside the container.

Every call goes to 127.0.0.1 inside the container (its own network namespace). The credentials
and the trusted source are the ones converge.yml sets.
"""

from __future__ import annotations

import re
import sys
import uuid
from pathlib import Path

import pytest

# sipp's statistics CSV is parsed by the collection's own parser (by column name).
sys.path.insert(0, str(Path(__file__).resolve().parents[5] / ".collections"))
from ansible_collections.xenlab.migration.plugins.module_utils.parsers import (  # noqa: E402
    parse_sipp_stat,
    sipp_column,
)

# Straight through podman: the ansible backend costs seconds per command.
testinfra_hosts = ["podman://xlast-voip"]

SCENARIOS = "/root/scenarios"
LOADGEN = ("loadgen", "molecule-loadgen")
MESSAGES = "/var/log/asterisk/messages.log"
QUALITY = re.compile(r"xenlab-call-quality: exten=(?P<exten>\S*) channel=(?P<channel>\S+) "
                     r"callid=(?P<callid>\S+) billsec=(?P<billsec>\d*) (?P<rtcp>\S+)")


def _sipp(host, *args, source="127.0.0.1", port=5071, media_port=6100, timeout=60):
    """Run sipp once inside the container; returns (rc, call-id prefix, work directory)."""
    tag = uuid.uuid4().hex[:12]
    work = "/tmp/sipp-" + tag
    host.run_test("mkdir -p %s", work)
    cmd = ["cd", work, "&&", "sipp", "127.0.0.1:5060", "-i", source, "-bind_local", "-p", str(port),
           "-mp", str(media_port), "-m", "1", "-l", "1", "-nostdin", "-timeout", "%ds" % timeout,
           "-timeout_error", "-cid_str", "xl-%s-%%u@%%s" % tag, "-trace_stat", "-stf", "stat.csv",
           "-trace_err", "-error_file", "err.log", "-trace_logs", "-log_file", "log.log"]
    cmd += list(args)
    result = host.run(" ".join(cmd) + " > screen.log 2>&1")
    return result.rc, "xl-" + tag, work


def _stat(host, work):
    return parse_sipp_stat(host.file(work + "/stat.csv").content_string)


def _quality(host, callid_prefix):
    """The call-quality line Asterisk logged for the call whose Call-ID starts with the prefix."""
    for line in host.file(MESSAGES).content_string.splitlines():
        # The NOTICE line itself, not the verbose trace of the Log() that wrote it.
        match = QUALITY.search(line) if " NOTICE[" in line else None
        if match and match.group("callid").startswith(callid_prefix):
            fields = dict(item.split("=", 1) for item in match.group("rtcp").split(";") if "=" in item)
            return match.groupdict(), fields
    raise AssertionError("no xenlab-call-quality line for %s in %s" % (callid_prefix, MESSAGES))


def test_asterisk_is_running_and_enabled(host):
    service = host.service("asterisk")
    assert service.is_running
    assert service.is_enabled
    assert host.socket("udp://0.0.0.0:5060").is_listening


def test_asterisk_comes_from_sid_and_systemd_stays_at_bookworm(host):
    policy = host.check_output("apt-cache policy asterisk")
    installed = re.search(r"Installed: (\S+)", policy).group(1)
    assert installed.split(":")[-1].startswith("22.")
    assert re.search(r"\*\*\* %s 100\n\s+100 \S+ sid/main" % re.escape(installed), policy), policy
    assert host.package("systemd").version.startswith("252.")
    assert "Asterisk 22." in host.check_output("asterisk -V")


def test_pjsip_endpoints_are_configured(host):
    endpoints = host.check_output("asterisk -rx 'pjsip show endpoints'")
    for name in ("2000", "2001", "loadgen", "xenlab-trusted"):
        assert re.search(r"Endpoint:\s+%s[/\s]" % name, endpoints), endpoints
    john = host.check_output("asterisk -rx 'pjsip show endpoint 2000'")
    assert re.search(r"callerid\s+:\s+\"John Doe\" <2000>", john)
    assert re.search(r"allow\s+:\s+\(ulaw\|alaw\)", john)
    assert re.search(r"context\s+:\s+xenlab-users", john)
    jane = host.check_output("asterisk -rx 'pjsip show endpoint 2001'")
    assert re.search(r"callerid\s+:\s+\"Jane Doe\" <2001>", jane)
    loadgen = host.check_output("asterisk -rx 'pjsip show endpoint loadgen'")
    assert re.search(r"context\s+:\s+xenlab-loadtest", loadgen)
    transport = host.check_output("asterisk -rx 'pjsip show transports'")
    assert "transport-udp" in transport and "0.0.0.0:5060" in transport
    # The secrets are in a file only Asterisk can read.
    conf = host.file("/etc/asterisk/pjsip_xenlab.conf")
    assert conf.mode == 0o640 and conf.user == "asterisk" and conf.group == "asterisk"


def test_dialplan_has_the_thesis_extensions(host):
    playback = host.check_output("asterisk -rx 'dialplan show 2002@xenlab-loadtest'")
    assert "Answer()" in playback and "Playback(demo-congrats)" in playback
    echo = host.check_output("asterisk -rx 'dialplan show 600@xenlab-loadtest'")
    assert "Echo()" in echo
    users = host.check_output("asterisk -rx 'dialplan show xenlab-users'")
    assert "Dial(PJSIP/2000,30)" in users and "Dial(PJSIP/2001,30)" in users
    assert "Include =>        'xenlab-loadtest'" in users
    assert "rtpstart=10000" in host.file("/etc/asterisk/rtp.conf").content_string


def test_authenticated_call_to_2002_plays_audio(host):
    rc, callid, work = _sipp(host, "-sf", SCENARIOS + "/uac_auth_pcap.xml", "-s", "2002",
                             "-set", "user", LOADGEN[0], "-au", LOADGEN[0], "-ap", LOADGEN[1],
                             "-d", "5000")
    assert rc == 0, host.file(work + "/screen.log").content_string
    stat = _stat(host, work)
    assert sipp_column(stat, "SuccessfulCall(C)")[-1] == 1
    assert sipp_column(stat, "FailedCall(C)")[-1] == 0
    # The call lasted the 5 s pause plus set-up and tear-down.
    assert 5.0 <= sipp_column(stat, "CallLength(C)")[-1] < 7.0
    call, rtcp = _quality(host, callid)
    assert call["exten"] == "2002" and call["channel"].startswith("PJSIP/loadgen-")
    assert int(call["billsec"]) >= 4
    # Asterisk received sipp's PCMA (7 s pcap, 30 ms packets: 5 s ~ 166) and sent its playback
    # (20 ms packets: 5 s ~ 250).
    assert int(rtcp["rxcount"]) > 120, rtcp
    assert int(rtcp["txcount"]) > 200, rtcp
    assert "Playing 'demo-congrats" in host.file(MESSAGES).content_string


def test_echo_extension_answers_and_echoes(host):
    rc, callid, work = _sipp(host, "-sf", SCENARIOS + "/uac_auth_pcap.xml", "-s", "600",
                             "-set", "user", LOADGEN[0], "-au", LOADGEN[0], "-ap", LOADGEN[1],
                             "-d", "3000", port=5072, media_port=6200)
    assert rc == 0, host.file(work + "/screen.log").content_string
    call, rtcp = _quality(host, callid)
    assert call["exten"] == "600"
    rx, tx = int(rtcp["rxcount"]), int(rtcp["txcount"])
    # Echo() sends back what it receives.
    assert rx > 60 and tx >= 0.9 * rx, rtcp


def test_unauthenticated_invite_is_refused(host):
    rc, callid, work = _sipp(host, "-sf", SCENARIOS + "/uac_unauth_refused.xml", "-s", "2002",
                             "-set", "user", "2000", port=5073)
    assert rc == 0, host.file(work + "/screen.log").content_string
    refused = re.search(r"xenlab-refused: %s\S* (\d{3})" % re.escape(callid),
                        host.file(work + "/log.log").content_string)
    assert refused and refused.group(1) == "401"
    # sipp's built-in UAC (no authentication at all) fails: no call was answered.
    rc, callid, work = _sipp(host, "-sn", "uac", "-s", "2002", port=5074, timeout=15)
    assert rc != 0
    assert sipp_column(_stat(host, work), "SuccessfulCall(C)")[-1] == 0


def test_wrong_password_is_refused(host):
    rc, callid, work = _sipp(host, "-sf", SCENARIOS + "/uac_auth_pcap.xml", "-s", "2002",
                             "-set", "user", LOADGEN[0], "-au", LOADGEN[0], "-ap", "not-the-password",
                             "-d", "1000", port=5075, timeout=15)
    assert rc != 0
    assert sipp_column(_stat(host, work), "SuccessfulCall(C)")[-1] == 0
    assert re.search(r"Request 'INVITE' from '<sip:loadgen@127\.0\.0\.1>' failed for '127\.0\.0\.1:5075' "
                     r"\(callid: %s\S*\) - Failed to authenticate" % re.escape(callid),
                     host.file(MESSAGES).content_string)


@pytest.mark.parametrize("service,answered", [("2002", True), ("2000", False)])
def test_trusted_source_reaches_only_the_load_test_context(host, service, answered):
    # 127.0.0.2 is in asterisk_trusted_sources: no credentials needed, but only for 2002/600.
    rc, callid, work = _sipp(host, "-sn", "uac", "-s", service, "-d", "2000", source="127.0.0.2",
                             port=5076, timeout=20)
    successful = sipp_column(_stat(host, work), "SuccessfulCall(C)")[-1]
    if answered:
        assert rc == 0 and successful == 1
    else:
        assert rc != 0 and successful == 0
