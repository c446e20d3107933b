# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The client after converge: the tools run, the scenarios are in place and valid, a non-root user
may capture, and real SIP calls on the container's loopback - SIPp's built-in uac against its uas,
and the installed uac_auth.xml with its RTP captured by dumpcap - placed and captured by the
collection's own modules (xenlab.migration.sipp_load, xenlab.migration.packet_capture) running in
the container as a playbook would run them."""

from __future__ import annotations

import os
import re
import time
import xml.etree.ElementTree as ET

import testinfra
import testinfra.utils.ansible_runner

# Commands go straight through podman exec (fast); the modules run through Ansible (testinfra's
# ansible backend, on the same container).
_NAMES = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("all")
testinfra_hosts = ["podman://%s" % name for name in _NAMES]

SCENARIO_DIR = "/usr/local/share/xenlab/sipp"


def module(node, name, **args):
    """Run a module of the collection on the container for real (testinfra's default is check mode)."""
    runner = testinfra.get_host("ansible://%s?ansible_inventory=%s"
                                % (node.backend.name, os.environ["MOLECULE_INVENTORY_FILE"]))
    text = " ".join("%s=%s" % (key, ",".join(map(str, value)) if isinstance(value, list) else value)
                    for key, value in args.items())
    result = runner.ansible("xenlab.migration." + name, text, check=False)
    assert not result.get("failed"), result
    return result


class SippServer(object):
    """sipp -sn uas in the background (-bg prints its PID), stopped by that PID.

    SIPp's RTP echo takes the media port and the one two above it.
    """

    def __init__(self, node, port, media_port):
        self.node = node
        # The foreground part exits with 99 ("no calls") once the server runs in the background.
        started = node.run("cd /tmp && sipp -sn uas -i 127.0.0.1 -p %s -mp %s -bg", str(port), str(media_port))
        match = re.search(r"PID=\[(\d+)\]", started.stdout)
        assert started.rc == 99 and match, started
        self.pid = int(match.group(1))
        time.sleep(0.3)
        assert node.run("kill -0 %s", str(self.pid)).rc == 0, "the SIPp server exited at once (port in use?)"

    def stop(self):
        self.node.run("kill %s", str(self.pid))
        deadline = time.monotonic() + 10
        while self.node.run("kill -0 %s", str(self.pid)).rc == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert self.node.run("kill -0 %s", str(self.pid)).rc != 0, "SIPp server %d did not stop" % self.pid


def test_the_tools_run(host):
    for package in ("sip-tester", "tshark", "wireshark-common", "swaks", "iputils-ping", "python3"):
        assert host.package(package).is_installed, package
    sipp = host.run("sipp -v")
    assert sipp.rc == 99 and "SIPp v3.6" in sipp.stdout  # sipp -v exits with 99 ("no calls")
    assert host.check_output("tshark --version").startswith("TShark (Wireshark) 4.0")
    assert "lo" in host.check_output("dumpcap -D").split()
    assert re.search(r"swaks version \d", host.check_output("swaks --version"))
    assert "iputils" in host.check_output("ping -V")
    ping = host.run("ping -c 2 -i 0.2 -n 127.0.0.1")
    assert ping.rc == 0 and "2 received" in ping.stdout


def test_the_scenarios_are_in_place_and_valid(host):
    scenario = host.file(SCENARIO_DIR + "/uac_auth.xml")
    assert scenario.is_file and scenario.user == "root" and scenario.mode == 0o644
    root = ET.fromstring(scenario.content)
    assert root.tag == "scenario"
    sends = [element for element in root if element.tag == "send"]
    assert "INVITE" in sends[0].text and "[authentication]" in sends[3].text and "BYE" in sends[-1].text
    assert [element.get("id") for element in root.iter("label")] == ["challenged", "answered"]
    link = host.file(SCENARIO_DIR + "/pcap")
    assert link.is_symlink and link.linked_to == "/usr/share/sip-tester"
    assert host.file(SCENARIO_DIR + "/pcap/g711a.pcap").is_file


def test_non_root_capture_was_answered_and_granted(host):
    assert "wireshark-common/install-setuid: true" in host.check_output("debconf-show wireshark-common")
    dumpcap = host.file("/usr/bin/dumpcap")
    assert dumpcap.group == "wireshark" and dumpcap.mode == 0o754
    assert "wireshark" in host.user("tester").groups
    # as that user, without root: dumpcap may open the interface
    capture = host.run("su tester -c 'dumpcap -i lo -a duration:1 -w /tmp/tester.pcap -q'")
    assert capture.rc == 0, capture.stderr


def test_builtin_uac_against_builtin_uas_on_loopback(host):
    server = SippServer(host, 5070, 16000)
    try:
        calls = module(host, "sipp_load", target="127.0.0.1", port=5070, local_ip="127.0.0.1", calls=5, rate=10,
                       call_length_ms=200)
    finally:
        server.stop()
    assert calls["calls_total"] == calls["calls_successful"] == 5 and calls["calls_failed"] == 0
    assert calls["exit_code"] == 0 and calls["outcome"] == "ok" and calls["response_time_samples"] == 5


def test_uac_auth_call_with_audio_captured_by_dumpcap(host):
    # The builtin uas does not challenge: uac_auth.xml then takes its path without authentication.
    server = SippServer(host, 5072, 16010)
    capture = module(host, "packet_capture", state="started", interface="lo",
                     capture_filter="'udp port 5072 or udp port 16010'", snaplen=200)
    try:
        calls = module(host, "sipp_load", target="127.0.0.1", port=5072, local_ip="127.0.0.1",
                       scenario=SCENARIO_DIR + "/uac_auth.xml", service=2002, caller="tester", calls=2, rate=10,
                       call_length_ms=1000)
    finally:
        stopped = module(host, "packet_capture", state="stopped", capture_id=capture["capture_id"])
        server.stop()
    assert calls["calls_successful"] == calls["calls_total"] == 2
    assert stopped["packets_captured"] == stopped["packets_in_files"] > 40
    # The audio reached the server's media port: sipp's g711a.pcap sends a 20 ms frame every 30 ms,
    # about 33 packets in each 1 s call.
    rtp = host.check_output("tshark -r %s -Y 'udp.dstport == 16010' -T fields -e frame.number", stopped["file"])
    assert 50 <= len(rtp.split()) <= 80
