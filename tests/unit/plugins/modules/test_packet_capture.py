# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""packet_capture: packet counting and dumpcap's messages on real captures (tests/fixtures/sipp),
inputs and errors (fakes only where dumpcap cannot be asked), and real captures on loopback (marker
``tools``, root): the RTP of a real SIPp uac_pcap call, fed into module_utils.rtp."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.xenlab.migration.plugins.module_utils import results, rtp
from ansible_collections.xenlab.migration.plugins.modules import packet_capture, sipp_load

MODULE_FILE = os.path.abspath(packet_capture.__file__)
ROOT = MODULE_FILE[:MODULE_FILE.rindex(os.sep + "plugins" + os.sep)]
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "sipp")
RTP_FIXTURES = os.path.join(ROOT, "tests", "fixtures", "rtp")
DUMPCAP = shutil.which("dumpcap")
SIPP = shutil.which("sipp")

tools = pytest.mark.tools
needs_dumpcap = pytest.mark.skipif(DUMPCAP is None, reason="dumpcap is not installed (Debian package tshark; the Makefile installs it)")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="capturing needs root")
needs_sipp = pytest.mark.skipif(SIPP is None, reason="sipp is not installed (Debian package sip-tester)")


class _Exit(Exception):
    pass


def _module_runner(monkeypatch, module, state_dir):
    warnings = []

    def exit_json(self, **kwargs):
        raise _Exit(dict(kwargs, warnings=list(warnings)))

    def fail_json(self, msg, **kwargs):
        raise _Exit(dict(kwargs, msg=msg, failed=True, warnings=list(warnings)))

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, msg: warnings.append(msg))

    def call(check_mode=False, **args):
        args.setdefault("state_dir", state_dir)
        if check_mode:
            args["_ansible_check_mode"] = True
        del warnings[:]
        with patch_module_args(args):
            try:
                module.main()
            except _Exit as done:
                return done.args[0]
        raise AssertionError("the module returned without exit_json or fail_json")

    return call


@pytest.fixture
def run(monkeypatch, tmp_path):
    return _module_runner(monkeypatch, packet_capture, str(tmp_path / "captures"))


def alive(pid):
    stat = packet_capture.read_proc_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def dpkt_count(path):
    with open(path, "rb") as handle:
        return sum(1 for _frame in rtp.iter_frames(handle.read(), path))


# --- counting packets, dumpcap's messages ---------------------------------------------------------

@pytest.mark.parametrize("path", [
    os.path.join(FIXTURES, "uac-auth-lo.pcap"),
    os.path.join(FIXTURES, "uac-auth-lo.pcapng"),
    os.path.join(RTP_FIXTURES, "impaired.pcap"),
    os.path.join(RTP_FIXTURES, "edge_cases.pcap"),
])
def test_count_packets_agrees_with_dpkt(path):
    packets, truncated = packet_capture.count_packets(path)
    assert truncated is False
    assert packets == dpkt_count(path) > 0


@pytest.mark.parametrize("name", ["uac-auth-lo.pcap", "uac-auth-lo.pcapng"])
def test_count_packets_of_a_cut_off_file(tmp_path, name):
    data = open(os.path.join(FIXTURES, name), "rb").read()
    whole = packet_capture.count_packets(os.path.join(FIXTURES, name))[0]
    cut = tmp_path / name
    cut.write_bytes(data[:-7])  # dumpcap killed while writing its last block
    # pcap ends with the last packet; dumpcap ends a pcapng with an interface statistics block.
    assert packet_capture.count_packets(str(cut)) == (whole - 1 if name.endswith(".pcap") else whole, True)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert packet_capture.count_packets(str(empty)) == (0, False)
    junk = tmp_path / "junk"
    junk.write_bytes(b"GIF89a" + b"\0" * 40)
    with pytest.raises(ValueError, match="neither a pcap nor a pcapng file"):
        packet_capture.count_packets(str(junk))


def test_dumpcap_messages_of_a_real_capture():
    text = open(os.path.join(FIXTURES, "uac-auth-lo.pcap.log"), encoding="utf-8").read()
    figures = packet_capture.parse_dumpcap_messages(text)
    packets = packet_capture.count_packets(os.path.join(FIXTURES, "uac-auth-lo.pcap"))[0]
    assert figures == {"packets_captured": packets, "packets_received": packets, "packets_dropped": 0}
    assert "Packets: " not in packet_capture.message_tail(text)  # the in-place counter is left out
    # as dumpcap writes it: the counter redrawn with carriage returns on one line
    raw = text.replace("\nPackets: ", "\rPackets: ").replace("\nPackets captured", "\rPackets captured")
    assert "\r" in raw and packet_capture.parse_dumpcap_messages(raw) == figures
    assert packet_capture.parse_dumpcap_messages("Capturing on 'lo'\n") == {
        "packets_captured": None, "packets_received": None, "packets_dropped": None}


def test_the_fixture_capture_holds_the_rtp_of_the_calls():
    # What voip_quality will read: the four authenticated calls each played RTP.
    analysis = rtp.analyze_pcap(os.path.join(FIXTURES, "uac-auth-lo.pcap"))
    assert analysis["summary"]["streams"] == 4 and analysis["summary"]["lost"] == 0
    assert all(stream["packets"] >= 10 and stream["payload_type"] == 8 for stream in analysis["streams"])  # PCMA


# --- inputs and errors ---------------------------------------------------------------------------

@needs_dumpcap
def test_check_mode_start_runs_nothing(run, tmp_path):
    result = run(check_mode=True, state="started", interface="lo", capture_filter="udp", capture_id="c1", snaplen=200)
    assert result["changed"] is True and "failed" not in result, result
    path = str(tmp_path / "captures" / "c1" / "capture.pcap")
    assert result["cmd"][1:] == ["-i", "lo", "-f", "udp", "-s", "200", "-P", "-w", path, "-a", "filesize:1048576",
                                 "-a", "duration:3600"]
    assert result["capture_path"] == path and result["msg"].startswith("check mode: would start")
    assert not (tmp_path / "captures").exists()
    ring = run(check_mode=True, state="started", interface="lo", format="pcapng", max_size_kb=100, ring_files=3,
               max_duration=0, capture_id="c2")
    assert ring["cmd"][3:] == ["-n", "-w", str(tmp_path / "captures" / "c2" / "capture.pcapng"), "-b", "filesize:100",
                               "-b", "files:3"]


@needs_dumpcap
@pytest.mark.parametrize("args, message", [
    (dict(interface="lo", capture_filter="udpx port"), "dumpcap refuses interface 'lo' with filter 'udpx port': "
                                                       "dumpcap: Invalid capture filter \"udpx port\" for interface 'lo'."),
    (dict(interface="xlclnosuch0"), "dumpcap refuses interface 'xlclnosuch0' with filter None: dumpcap: There is no "
                                    "device named \"xlclnosuch0\"."),
    (dict(interface="lo", ring_files=1), "ring_files must be 0 (one file) or at least 2"),
    (dict(interface="lo", ring_files=3, max_size_kb=0), "ring_files needs max_size_kb"),
    (dict(interface="lo", snaplen=0), "snaplen must be between 1 and 262144"),
    (dict(interface="lo", max_duration=-1), "max_duration must not be negative"),
    (dict(interface="lo", path="/nonexistent/dir/x.pcap"), "the directory of path /nonexistent/dir/x.pcap does not exist"),
    (dict(interface="lo", capture_id="a/b"), "capture_id 'a/b' is invalid"),
    (dict(interface="lo", result_file="/tmp/x.json"), "result_file is only used with state=stopped"),
    (dict(), "state is started but all of the following are missing: interface"),
])
def test_bad_inputs(run, args, message):
    result = run(state="started", **args)
    assert result.get("failed") is True, result
    assert message in result["msg"]


@needs_dumpcap
def test_an_existing_capture_is_never_overwritten(run, tmp_path):
    existing = tmp_path / "keep.pcap"
    existing.write_bytes(b"precious")
    result = run(state="started", interface="lo", path=str(existing))
    assert result["failed"] and "path %s exists; the module does not overwrite captures" % existing in result["msg"]
    assert existing.read_bytes() == b"precious"


def test_dumpcap_missing(run, monkeypatch):
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, *a, **k: None)
    result = run(state="started", interface="lo")
    assert result["failed"] and result["msg"].startswith("dumpcap is not installed (dumpcap not found): install tshark")
    result = run(state="started", interface="lo", executable="/nonexistent/dumpcap")
    assert result["failed"] and result["msg"] == "dumpcap executable /nonexistent/dumpcap does not exist or is not executable"


def test_stop_unknown_and_broken_captures(run, tmp_path):
    result = run(state="stopped", capture_id="nope")
    assert result["failed"] and result["msg"] == "unknown capture_id 'nope': its state file %s is missing" % (
        tmp_path / "captures" / "nope" / "state.json")
    directory = tmp_path / "captures" / "c1"
    directory.mkdir(parents=True)
    (directory / "state.json").write_text("{broken")
    result = run(state="stopped", capture_id="c1")
    assert result["failed"] and "unreadable state file" in result["msg"]
    (directory / "state.json").write_text('{"pid": 1, "cmd": "dumpcap"}')
    result = run(state="stopped", capture_id="c1")
    assert result["failed"] and "lacks start_ticks, capture_dir, path" in result["msg"]


def test_stop_never_signals_a_pid_that_runs_something_else(run, tmp_path):
    other = subprocess.Popen(["sleep", "30"])
    try:
        deadline = time.monotonic() + 5
        while packet_capture.read_cmdline(other.pid) != ["sleep", "30"] and time.monotonic() < deadline:
            time.sleep(0.01)
        directory = tmp_path / "captures" / "c1"
        directory.mkdir(parents=True)
        (directory / "dumpcap.log").write_text("Capturing on 'lo'\n")
        state = {"pid": other.pid, "start_ticks": packet_capture.read_proc_stat(other.pid)[1],
                 "cmd": ["/usr/bin/dumpcap", "-i", "lo"], "capture_id": "c1", "capture_dir": str(directory),
                 "path": str(directory / "capture.pcap"), "ring": False, "log_file": str(directory / "dumpcap.log"),
                 "params": {"interface": "lo"}, "started_s": time.time(), "started_utc": results.utc_iso()}
        (directory / "state.json").write_text(json.dumps(state))
        result = run(state="stopped", capture_id="c1")
        assert alive(other.pid), "the module signalled a process that is not its dumpcap"
        assert not result.get("failed"), result
        assert result["stop_signals"] == [] and result["files"] == [] and result["packets_captured"] is None
        assert any("PID %d now runs ['sleep', '30']" % other.pid in w for w in result["warnings"])
        assert any("dumpcap wrote no capture file" in w for w in result["warnings"])
    finally:
        other.kill()
        other.wait()


# --- real captures on loopback -------------------------------------------------------------------

def send_udp(port, count, size=200):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _number in range(count):
            sock.sendto(b"x" * size, ("127.0.0.1", port))


@tools
@needs_dumpcap
@needs_root
def test_started_and_stopped_counts_the_packets_sent(run, tmp_path):
    port = free_udp_port()
    fact = tmp_path / "facts.d" / "xenlab_capture.fact"
    started = run(state="started", interface="lo", capture_filter="udp dst port %d" % port, capture_id="c1",
                  record_params={"experiment": "unit"})
    assert started["changed"] and not started.get("failed"), started
    assert alive(started["pid"])
    again = run(state="started", interface="lo", capture_id="c1")
    assert again["failed"] and again["msg"].startswith("capture 'c1' is running (pid %d" % started["pid"])
    send_udp(port, 25)
    check = run(check_mode=True, state="stopped", capture_id="c1")
    assert check["running"] is True
    stopped = run(state="stopped", capture_id="c1", result_file=str(fact), create_dirs=True)
    assert not stopped.get("failed"), stopped
    assert not alive(started["pid"])
    assert stopped["stop_signals"] == ["SIGINT"] and stopped["truncated"] is False
    assert stopped["packets_captured"] == stopped["packets_in_files"] == stopped["packets_received"] == 25
    assert stopped["packets_dropped"] == 0 and stopped["file"] == started["capture_path"]
    assert stopped["size_bytes"] == os.path.getsize(stopped["file"]) == 24 + 25 * (16 + 14 + 20 + 8 + 200)
    assert dpkt_count(stopped["file"]) == 25
    record = results.read_fact(str(fact), kind="packet_capture")
    assert record["results"]["packets_in_files"] == 25 and record["params"]["experiment"] == "unit"
    assert record["params"]["capture_filter"] == "udp dst port %d" % port
    twice = run(state="stopped", capture_id="c1")
    assert twice["changed"] is False and twice["packets_captured"] == 25 and "already stopped" in twice["msg"]


@tools
@needs_dumpcap
@needs_root
def test_a_capture_that_stopped_by_itself_and_a_ring(run):
    port = free_udp_port()
    short = run(state="started", interface="lo", capture_filter="udp dst port %d" % port, max_duration=1)
    ring = run(state="started", interface="lo", capture_filter="udp dst port %d" % port, max_size_kb=1, ring_files=2,
               format="pcapng")
    send_udp(port, 40)
    time.sleep(1.5)
    done = run(state="stopped", capture_id=short["capture_id"])
    assert done["stop_signals"] == [] and any("had already stopped" in w for w in done["warnings"])
    assert done["packets_captured"] == done["packets_in_files"] == 40
    rung = run(state="stopped", capture_id=ring["capture_id"])
    assert rung["packets_captured"] == 40 and len(rung["files"]) == 2
    assert 0 < rung["packets_in_files"] < 40  # the older files of the ring are gone
    assert rung["file"] == rung["files"][-1]["path"] and rung["file"].endswith(".pcapng")


@tools
@needs_dumpcap
@needs_root
@needs_sipp
def test_capture_of_a_real_uac_pcap_call_feeds_the_rtp_analysis(run, monkeypatch, tmp_path):
    sip_port, media_port = free_udp_port(), free_udp_port()
    server = subprocess.Popen([SIPP, "-sn", "uas", "-i", "127.0.0.1", "-p", str(sip_port), "-mp", str(media_port),
                               "-nostdin"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, cwd=str(tmp_path))
    try:
        capture = run(state="started", interface="lo", capture_filter="udp port %d or udp port %d" % (sip_port, media_port),
                      snaplen=200)
        assert not capture.get("failed"), capture
        calls = _module_runner(monkeypatch, sipp_load, str(tmp_path / "sipp"))(
            target="127.0.0.1", port=sip_port, local_ip="127.0.0.1", scenario="uac_pcap", calls=1)
        assert not calls.get("failed"), calls
        assert calls["calls_successful"] == 1
        stopped = run(state="stopped", capture_id=capture["capture_id"])
    finally:
        server.terminate()
        server.wait(10)
    assert not stopped.get("failed"), stopped
    assert stopped["packets_captured"] == stopped["packets_in_files"] > 200
    analysis = rtp.analyze_pcap(stopped["file"], ports=[media_port])
    streams = analysis["streams"]
    # sipp's g711a.pcap: about 4.7 s of PCMA in 20 ms packets, played towards the server's media port
    audio = [stream for stream in streams if stream["payload_type"] == 8]  # PCMA; the DTMF events are PT 101
    assert len(audio) == 1, streams
    assert audio[0]["dst"] == "127.0.0.1:%d" % media_port and audio[0]["lost"] == 0
    # The replay on loopback keeps the sample's packets and, on average, its timing (30 ms between
    # packets of 20 ms frames). The MOS values depend on the replay's jitter (a loaded machine
    # makes the 50 ms buffer of F1 drop packets), so they are only checked to be MOS values.
    source = [s for s in rtp.analyze_pcap(os.path.join(sipp_load.PCAP_DIRS[0], "g711a.pcap"), detect="heuristic")["streams"]
              if s["payload_type"] == 8][0]
    assert audio[0]["packets"] == source["packets"] == 236
    assert abs(audio[0]["delta_mean_ms"] - source["delta_mean_ms"]) < 1.0
    assert all(1.0 <= audio[0][key] <= 4.5 for key in ("mos_f1", "mos_f2", "mos_adaptive"))
