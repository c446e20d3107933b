# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""downtime_probe: inputs and errors (fakes only there), real probes on loopback, and as root a real
outage between two network namespaces."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.xenlab.migration.plugins.module_utils import results
from ansible_collections.xenlab.migration.plugins.modules import downtime_probe

MODULE_FILE = os.path.abspath(downtime_probe.__file__)
COLLECTIONS = MODULE_FILE[:MODULE_FILE.rindex(os.sep + "ansible_collections" + os.sep)]


class _Exit(Exception):
    pass


@pytest.fixture
def run(monkeypatch, tmp_path):
    """Call the module's main() with arguments; returns its result dict (``failed`` on fail_json)."""
    warnings = []

    def exit_json(self, **kwargs):
        raise _Exit(dict(kwargs, warnings=list(warnings)))

    def fail_json(self, msg, **kwargs):
        raise _Exit(dict(kwargs, msg=msg, failed=True, warnings=list(warnings)))

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, msg: warnings.append(msg))

    def call(check_mode=False, **args):
        args.setdefault("state_dir", str(tmp_path / "state"))
        if check_mode:
            args["_ansible_check_mode"] = True
        del warnings[:]
        with patch_module_args(args):
            try:
                downtime_probe.main()
            except _Exit as done:
                return done.args[0]
        raise AssertionError("the module returned without exit_json or fail_json")

    return call


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def alive(pid):
    stat = downtime_probe.read_proc_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


needs_ping = pytest.mark.skipif(not shutil.which("ping"), reason="iputils ping is not installed")


# --- inputs and errors ---------------------------------------------------------------------------

@needs_ping
def test_check_mode_start_runs_nothing(run, tmp_path):
    result = run(check_mode=True, state="started", target="127.0.0.1", interval_ms=10)
    assert result["changed"] is True and "failed" not in result
    assert result["cmd"][1:] == ["-D", "-O", "-n", "-i", "0.01", "-w", "3600", "127.0.0.1"]
    assert result["msg"].startswith("check mode: would start")
    assert not (tmp_path / "state").exists()


def test_check_mode_udp_echo_and_mode_alias(run, tmp_path):
    result = run(check_mode=True, state="started", mode="udp_echo", port=5007, probe_id="echo-1")
    assert result["probe_type"] == "udp_echo" and result["probe_id"] == "echo-1"
    assert result["cmd"][2:] == ["echo", "--bind", "0.0.0.0", "--port", "5007", "--max-duration", "3600"]
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("args, message", [
    (dict(state="started"), "target is required with state=started and probe_type=icmp"),
    (dict(state="run", probe_type="udp", duration=1), "target is required"),
    (dict(state="started", target="127.0.0.1", interval_ms=0.5), "interval_ms must be between 1 and 60000"),
    (dict(state="started", target="127.0.0.1", probe_type="udp", port=0), "port must be between 1 and 65535"),
    (dict(state="run", target="127.0.0.1", duration=0), "duration must be a positive"),
    (dict(state="run", target="127.0.0.1", duration=20, max_duration=10), "exceeds max_duration"),
    (dict(state="started", target="127.0.0.1", probe_id="../etc"), "probe_id '../etc' is invalid"),
    (dict(state="started", target="127.0.0.1", dest="/tmp/x.json"), "dest is only used with state=stopped"),
    (dict(state="stopped"), "missing: probe_id"),
    (dict(state="run", target="127.0.0.1"), "missing: duration"),
])
def test_bad_inputs(run, args, message):
    result = run(**args)
    assert result.get("failed") is True
    assert message in result["msg"]


def test_unknown_target(run, monkeypatch):
    def no_such_host(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(downtime_probe.socket, "getaddrinfo", no_such_host)
    result = run(state="started", target="voip-guest.invalid")
    assert result["failed"] and result["msg"].startswith("unknown target 'voip-guest.invalid': it does not resolve")


def test_ping_not_installed(run, monkeypatch):
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, *a, **k: None)
    result = run(state="started", target="127.0.0.1")
    assert result["failed"] and "ping is not installed" in result["msg"] and "probe_type=udp" in result["msg"]


def test_ping_is_not_iputils(run, monkeypatch):
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, *a, **k: "/bin/ping")
    monkeypatch.setattr(basic.AnsibleModule, "run_command",
                        lambda self, *a, **k: (1, "", "BusyBox v1.36.1 multi-call binary."))
    result = run(state="started", target="127.0.0.1")
    assert result["failed"] and result["msg"] == "/bin/ping is not iputils ping, which the probe needs for -D and -O"


@needs_ping
def test_interval_too_small_for_non_root_icmp(run, monkeypatch):
    monkeypatch.setattr(downtime_probe.os, "geteuid", lambda: 1000)
    result = run(state="started", target="127.0.0.1", interval_ms=1.5)
    assert result["failed"] and "interval_ms 1.5 is too small for ICMP as a non-root user" in result["msg"]
    assert "become: true" in result["msg"]
    # the same interval is fine for UDP
    assert not run(check_mode=True, state="started", target="127.0.0.1", probe_type="udp", interval_ms=1.5).get("failed")


def test_stop_unknown_probe_says_state_file_missing(run, tmp_path):
    result = run(state="stopped", probe_id="nope")
    assert result["failed"]
    assert result["msg"] == ("unknown probe_id 'nope': its state file %s is missing (probes known in %s: none)"
                             % (tmp_path / "state" / "nope" / "state.json", tmp_path / "state"))


@pytest.mark.parametrize("content, message", [
    ("{not json", "unreadable state file"),
    ('{"pid": 1}', "lacks start_ticks, cmd, probe_type"),
    ('{"pid": "1", "start_ticks": 1, "cmd": "x", "probe_type": "icmp", "log_file": "l", "started_s": 1.0, '
     '"started_utc": "2024-01-01T00:00:00Z", "interval_ms": 10}', "no valid pid and cmd"),
])
def test_broken_state_file(run, tmp_path, content, message):
    directory = tmp_path / "state" / "p1"
    directory.mkdir(parents=True)
    (directory / "state.json").write_text(content)
    result = run(state="stopped", probe_id="p1")
    assert result["failed"] and message in result["msg"]


def test_stop_never_signals_a_pid_that_runs_something_else(run, tmp_path):
    # The state file names a live process of ours, but with another command line: it must survive.
    other = subprocess.Popen(["sleep", "30"])
    try:
        # Popen (vfork) returns before the kernel has set up the new argv: wait until it has.
        deadline = time.monotonic() + 5
        while downtime_probe.read_cmdline(other.pid) != ["sleep", "30"] and time.monotonic() < deadline:
            time.sleep(0.01)
        stat = downtime_probe.read_proc_stat(other.pid)
        directory = tmp_path / "state" / "p1"
        directory.mkdir(parents=True)
        (directory / "probe.log").write_text("")
        state = {"pid": other.pid, "start_ticks": stat[1], "cmd": ["/usr/bin/ping", "-D", "10.0.0.1"], "probe_id": "p1",
                 "probe_type": "icmp", "log_file": str(directory / "probe.log"), "started_s": time.time(),
                 "started_utc": results.utc_iso(), "interval_ms": 10.0}
        (directory / "state.json").write_text(json.dumps(state))
        result = run(state="stopped", probe_id="p1")
        assert alive(other.pid), "the module signalled a process that is not its probe"
        assert any("PID %d now runs ['sleep', '30']" % other.pid in w for w in result["warnings"]), result["warnings"]
        assert result["failed"] and "cannot compute the downtime" in result["msg"]
    finally:
        other.kill()
        other.wait()


def test_stop_kills_the_verified_probe_when_sigint_is_ignored(run, tmp_path):
    # A process with exactly the recorded command line and start time is ours: SIGINT, then SIGKILL.
    cmd = [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); print('PING', flush=True); time.sleep(30)"]
    directory = tmp_path / "state" / "stubborn"
    directory.mkdir(parents=True)
    with open(str(directory / "probe.log"), "wb") as log:
        probe = subprocess.Popen(cmd, stdout=log)
    try:
        deadline = time.monotonic() + 5
        while (directory / "probe.log").read_text() != "PING\n" and time.monotonic() < deadline:
            time.sleep(0.01)
        state = {"pid": probe.pid, "start_ticks": downtime_probe.read_proc_stat(probe.pid)[1], "cmd": cmd,
                 "probe_id": "stubborn", "probe_type": "icmp", "log_file": str(directory / "probe.log"),
                 "started_s": time.time(), "started_utc": results.utc_iso(), "interval_ms": 10.0}
        (directory / "state.json").write_text(json.dumps(state))
        started = time.monotonic()
        result = run(state="stopped", probe_id="stubborn", stop_timeout=0.3)
        assert probe.wait(timeout=5) == -9  # SIGKILL
        assert time.monotonic() - started < 3.0
        assert any("did not exit within 0.3 s of SIGINT and was killed" in w for w in result["warnings"])
        # its "log" is no ping output: the analysis fails with the parser's message
        assert result["failed"] and "ping output line 1: expected the header" in result["msg"]
        assert json.loads((directory / "state.json").read_text())["stopped_utc"]
    finally:
        if probe.poll() is None:
            probe.kill()
            probe.wait()


# --- real probes on loopback ---------------------------------------------------------------------

@needs_ping
def test_icmp_run_on_loopback_writes_result_and_fact(run, tmp_path):
    dest = tmp_path / "facts.d" / "xenlab_downtime.fact"
    result = run(state="run", target="127.0.0.1", interval_ms=10, duration=0.6, dest=str(dest), create_dirs=True,
                 record_params={"scenario": "unit"})
    assert not result.get("failed"), result
    assert result["changed"] is True
    assert 10 <= result["sent"] <= 70 and result["lost"] == 0 and result["downtime_ms"] == 0.0
    assert result["received"] == result["sent"] and result["longest_gap_ms"] < 500
    assert result["ping_statistics"]["transmitted"] >= result["sent"]
    assert 0.55 <= result["duration_s"] < 2.0
    assert not alive(result["pid"])
    record = results.read_fact(str(dest), kind="downtime_probe")
    assert record["results"]["sent"] == result["sent"] and record["params"]["scenario"] == "unit"
    assert record["params"]["cmd"] == result["cmd"]
    assert results.read_record(result["result_file"]) == record


def test_udp_probe_and_echo_started_and_stopped_on_loopback(run):
    port = free_udp_port()
    echo = run(state="started", mode="udp_echo", bind_address="127.0.0.1", port=port, probe_id="echo")
    assert echo["changed"] and alive(echo["pid"])
    try:
        again = run(state="started", mode="udp_echo", bind_address="127.0.0.1", port=port, probe_id="echo")
        assert again["failed"] and again["msg"].startswith("probe 'echo' is already running (pid %d" % echo["pid"])

        probe = run(state="started", probe_type="udp", target="127.0.0.1", port=port, interval_ms=5,
                    answer_timeout_ms=50, probe_id="udp1")
        assert probe["changed"] and probe["cmd"][2] == "probe"
        time.sleep(0.4)
        check = run(check_mode=True, state="stopped", probe_id="udp1")
        assert check["probe_running"] is True and alive(probe["pid"])

        stopped = run(state="stopped", probe_id="udp1")
        assert not stopped.get("failed"), stopped
        assert not alive(probe["pid"])
        assert stopped["sent"] >= 40 and stopped["lost"] == 0 and stopped["probe_errors"] == 0
        assert 4.5 <= stopped["interval_mean_ms"] <= 8.0

        # Stopping again reports the stored result without touching anything.
        twice = run(state="stopped", probe_id="udp1")
        assert twice["changed"] is False and twice["sent"] == stopped["sent"] and "already stopped" in twice["msg"]
    finally:
        done = run(state="stopped", probe_id="echo")
    assert not alive(echo["pid"])
    assert done["packets_echoed"] == stopped["received"]


@needs_ping
def test_probe_that_exited_by_itself_is_still_analysed(run):
    started = run(state="started", target="127.0.0.1", interval_ms=20, max_duration=1, probe_id="short")
    assert started["cmd"][-3:] == ["-w", "1", "127.0.0.1"]
    time.sleep(1.3)
    never_stopped = run(state="started", target="127.0.0.1", probe_id="short")
    assert never_stopped["failed"] and "probe 'short' was started at" in never_stopped["msg"]
    assert "never stopped (process %d" % started["pid"] in never_stopped["msg"]
    result = run(state="stopped", probe_id="short")
    assert not result.get("failed"), result
    assert any("had already stopped" in w for w in result["warnings"])
    assert result["lost"] == 0 and result["sent"] >= 20
    assert result["ping_statistics"]["transmitted"] >= result["sent"]

    # A stopped probe's id can be used again: its directory is replaced.
    check = run(check_mode=True, state="started", target="127.0.0.1", probe_id="short")
    assert check["msg"].startswith("check mode: would replace the stopped probe 'short' and start")
    assert results.read_record(result["result_file"])["results"]["sent"] == result["sent"]
    again = run(state="run", target="127.0.0.1", probe_id="short", duration=0.4)
    assert not again.get("failed") and again["pid"] != started["pid"]
    assert results.read_record(again["result_file"])["results"]["sent"] == again["sent"]


def test_record_params_may_not_replace_the_probe_s_own(run):
    port = free_udp_port()
    result = run(state="run", probe_type="udp", target="127.0.0.1", port=port, duration=0.35, answer_timeout_ms=10,
                 record_params={"interval_ms": 50})
    assert result["failed"] and "may not replace the probe's own parameter 'interval_ms'" in result["msg"]


def test_udp_helper_reports_a_port_in_use(tmp_path):
    script = tmp_path / "udp_probe.py"
    script.write_text(downtime_probe.UDP_PROBE_SCRIPT)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        proc = subprocess.run([sys.executable, str(script), "echo", "--bind", "127.0.0.1", "--port", str(port)],
                              capture_output=True, text=True, timeout=10, check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert "udp echo: cannot listen on 127.0.0.1 port %d: [Errno 98] Address already in use" % port in proc.stderr


def test_udp_helper_stops_by_itself_after_max_duration(tmp_path):
    # Nothing listens on the port: every datagram is refused, and the probe still ends on time.
    from ansible_collections.xenlab.migration.plugins.module_utils import parsers

    script = tmp_path / "udp_probe.py"
    script.write_text(downtime_probe.UDP_PROBE_SCRIPT)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, str(script), "probe", "--target", "127.0.0.1", "--port", str(free_udp_port()),
                           "--interval-ms", "10", "--answer-timeout-ms", "50", "--max-duration", "0.3"],
                          capture_output=True, text=True, timeout=10, check=False)
    assert proc.returncode == 0 and time.monotonic() - started < 5
    parsed = parsers.parse_udp_probe_log(proc.stdout)
    assert parsed["end"] is not None and parsed["end"]["answered"] == 0 and 10 <= parsed["end"]["sent"] <= 31
    messages = [error["message"] for error in parsed["errors"]]
    assert "max duration of 0.3 s reached" in messages and "recv: Connection refused" in messages


# --- as root: a real outage between two network namespaces ---------------------------------------

def _sh(*argv):
    subprocess.run(argv, check=True, capture_output=True, timeout=20)


@pytest.fixture
def netns_pair():
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    for tool in ("ip", "iptables", "ping"):
        if not shutil.which(tool):
            pytest.skip("%s is not installed" % tool)
    client, target = "xlfx%dc" % os.getpid(), "xlfx%dt" % os.getpid()
    try:
        _sh("ip", "netns", "add", client)
        _sh("ip", "netns", "add", target)
        _sh("ip", "-n", client, "link", "add", "veth0", "type", "veth", "peer", "name", "veth0", "netns", target)
        for ns, addr in ((client, "10.232.0.1/24"), (target, "10.232.0.2/24")):
            _sh("ip", "-n", ns, "addr", "add", addr, "dev", "veth0")
            _sh("ip", "-n", ns, "link", "set", "veth0", "up")
            _sh("ip", "-n", ns, "link", "set", "lo", "up")
        _sh("ip", "netns", "exec", client, "ping", "-c", "1", "-W", "2", "10.232.0.2")
    except (subprocess.CalledProcessError, OSError) as exc:
        for ns in (client, target):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        pytest.skip("cannot build the namespaces: %s" % exc)
    yield client, target
    for ns in (client, target):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def _module_in(ns, **args):
    env = dict(os.environ, PYTHONPATH=COLLECTIONS)
    proc = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-m",
                           "ansible_collections.xenlab.migration.plugins.modules.downtime_probe",
                           json.dumps({"ANSIBLE_MODULE_ARGS": args})],
                          capture_output=True, text=True, env=env, timeout=30, check=False)
    result = json.loads(proc.stdout)
    assert not result.get("failed"), result
    return result


def _outage(ns, seconds):
    a0 = time.time()
    _sh("ip", "netns", "exec", ns, "iptables", "-I", "INPUT", "-j", "DROP")
    a1 = time.time()
    time.sleep(seconds)
    b0 = time.time()
    _sh("ip", "netns", "exec", ns, "iptables", "-D", "INPUT", "-j", "DROP")
    b1 = time.time()
    return (b0 - a1) * 1000.0, (b1 - a0) * 1000.0


def test_real_outage_between_namespaces(netns_pair, tmp_path):
    client, target = netns_pair
    state = str(tmp_path / "state")
    echo = _module_in(target, state="started", mode="udp_echo", port=5007, state_dir=state + "-t")
    icmp = _module_in(client, state="started", target="10.232.0.2", interval_ms=10, state_dir=state)
    udp = _module_in(client, state="started", probe_type="udp", target="10.232.0.2", port=5007, interval_ms=5,
                     answer_timeout_ms=100, state_dir=state)
    try:
        time.sleep(0.3)
        shortest, longest = _outage(target, 0.3)  # everything the target receives is dropped
        time.sleep(0.3)
    finally:
        stopped = [_module_in(client, state="stopped", probe_id=probe["probe_id"], state_dir=state) for probe in (icmp, udp)]
        _module_in(target, state="stopped", probe_id=echo["probe_id"], state_dir=state + "-t")
    for result in stopped:
        step = result["interval_mean_ms"]
        keys = ("probe_type", "downtime_ms", "longest_gap_ms", "interval_mean_ms", "sent", "lost", "lost_trailing", "loss_runs")
        figures = dict((key, result[key]) for key in keys)
        figures["outage_ms"] = (shortest, longest)
        # The bounds of the fixture tests, plus 100 ms for a loaded machine (this one runs QEMU guests).
        assert shortest - 2 * step <= result["downtime_ms"] <= longest + 2 * step + 100.0, figures
        assert shortest <= result["longest_gap_ms"] <= longest + 3 * step + 100.0, figures
        assert result["lost_trailing"] == 0 and result["lost"] == result["loss_runs"][0]["lost"], figures
        assert not alive(result["pid"])
