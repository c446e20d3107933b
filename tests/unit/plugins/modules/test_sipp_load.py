# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""sipp_load and module_utils.sipp: figures from real SIPp statistics files (tests/fixtures/sipp,
tests/fixtures/probe/sipp), inputs and errors (fakes only there), and real SIPp calls on loopback
(marker ``tools``: a SIPp server started and stopped by PID in the test)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import statistics
import subprocess
import time

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.xenlab.migration.plugins.module_utils import parsers, results
from ansible_collections.xenlab.migration.plugins.module_utils import sipp as sipplib
from ansible_collections.xenlab.migration.plugins.modules import sipp_load

MODULE_FILE = os.path.abspath(sipp_load.__file__)
ROOT = MODULE_FILE[:MODULE_FILE.rindex(os.sep + "plugins" + os.sep)]
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "sipp")
PROBE_FIXTURES = os.path.join(ROOT, "tests", "fixtures", "probe", "sipp")
UAC_AUTH = os.path.join(ROOT, "roles", "client", "files", "sipp", "uac_auth.xml")
UAS_AUTH = os.path.join(FIXTURES, "uas_auth.xml")
SIPP = shutil.which("sipp")

tools = pytest.mark.tools
needs_sipp = pytest.mark.skipif(SIPP is None, reason="sipp is not installed (Debian package sip-tester; the Makefile installs it)")


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
                sipp_load.main()
            except _Exit as done:
                return done.args[0]
        raise AssertionError("the module returned without exit_json or fail_json")

    return call


def fixture(name, directory=FIXTURES):
    with open(os.path.join(directory, name), encoding="utf-8") as handle:
        return handle.read()


def stat(name, directory=FIXTURES):
    return sipplib.stat_figures(parsers.parse_sipp_stat(fixture(name, directory)))


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def alive(pid):
    state = sipp_load.read_proc_stat(pid)
    return state is not None and state[0] not in ("Z", "X")


# --- module_utils.sipp on real statistics files ---------------------------------------------------

def test_clean_run_all_calls_successful():
    figures = stat("uac-clean-stat.csv")  # -m 10 -r 20 -d 200 against sipp -sn uas
    assert figures["calls_total"] == figures["calls_outgoing"] == figures["calls_successful"] == 10
    assert figures["calls_failed"] == figures["calls_in_flight"] == figures["calls_incoming"] == 0
    assert set(figures["failed_by_cause"].values()) == {0}
    assert "TimeoutOnRecv" in figures["failed_by_cause"] and "UnexpectedMessage" in figures["failed_by_cause"]
    assert 200 <= figures["call_length_mean_ms"] < 300  # -d 200 plus the BYE round trip
    assert figures["target_rate_cps"] == 20 and 0 < figures["call_rate_cps"] <= 20
    assert 0.4 < figures["elapsed_s"] < 2.0
    assert sipplib.outcome(figures, 0) == "ok"


def test_dead_port_counts_receive_timeouts():
    figures = stat("uac-dead-port-stat.csv")  # -m 3 -recv_timeout 1000, nothing listening
    assert figures["calls_total"] == figures["calls_failed"] == 3 and figures["calls_successful"] == 0
    assert figures["failed_by_cause"]["TimeoutOnRecv"] == 3
    assert sum(figures["failed_by_cause"].values()) == 3
    assert figures["retransmissions"] >= 3  # the INVITE went out again at least once per call
    assert sipplib.outcome(figures, 1) == "failed_calls"


def test_wrong_password_is_an_unexpected_403():
    figures = stat("uac-auth-wrong-password-stat.csv")
    assert figures["calls_failed"] == 2 and figures["failed_by_cause"]["UnexpectedMessage"] == 2
    ok = stat("uac-auth-stat.csv")
    assert ok["calls_successful"] == ok["calls_total"] == 4 and ok["calls_failed"] == 0
    server = stat("uas-auth-stat.csv")  # the challenging UAS saw both runs
    assert server["calls_incoming"] == server["calls_total"] == 6 and server["calls_outgoing"] == 0


def test_sigterm_leaves_calls_in_flight_and_sigusr1_lets_them_end():
    term = stat("uac-sigterm-stat.csv")  # -d 3000, SIGTERM after 1.5 s: no call had ended
    assert term["calls_in_flight"] > 0 and term["calls_successful"] == term["calls_failed"] == 0
    assert term["calls_in_flight"] == term["calls_total"]
    usr1 = stat("uac-sigusr1-stat.csv")  # -d 1000, SIGUSR1 after 1.5 s: the calls in flight end
    assert usr1["calls_successful"] == usr1["calls_total"] > 0 and usr1["calls_in_flight"] == 0
    assert usr1["elapsed_s"] > 1.5 + 0.9  # SIPp waited for the last calls (1 s each) to end


def test_outage_fixture_splits_calls_into_successful_and_failed():
    figures = stat("uac-stat-outage.csv", PROBE_FIXTURES)  # a 2 s outage in the middle of 40 calls
    assert figures["calls_successful"] + figures["calls_failed"] + figures["calls_in_flight"] == figures["calls_total"] == 40
    assert figures["calls_failed"] > 0 and figures["failed_by_cause"]["TimeoutOnRecv"] == figures["calls_failed"]
    assert figures["retransmissions"] > 0


def _rtt_column(name, directory=FIXTURES):
    with open(os.path.join(directory, name), newline="", encoding="utf-8") as handle:
        return [float(row["response_time_ms"]) for row in csv.DictReader(handle, delimiter=";") if row["rtd_no"] == "1"]


@pytest.mark.parametrize("name, directory", [
    ("uac-clean-rtt.csv", FIXTURES),
    ("uac-auth-rtt.csv", FIXTURES),
    ("uac-rtt-outage.csv", PROBE_FIXTURES),
])
def test_rtt_figures_match_an_independent_computation(name, directory):
    figures = sipplib.rtt_figures(parsers.parse_sipp_rtt(fixture(name, directory)))
    values = _rtt_column(name, directory)
    assert figures["response_time_samples"] == len(values) > 0
    assert figures["response_time_min_ms"] == min(values) and figures["response_time_max_ms"] == max(values)
    assert figures["response_time_mean_ms"] == pytest.approx(statistics.fmean(values), abs=1e-3)
    assert figures["response_time_median_ms"] == pytest.approx(statistics.median(values), abs=1e-3)
    assert figures["response_time_p95_ms"] == pytest.approx(statistics.quantiles(values, n=20, method="inclusive")[18], abs=1e-3)


def test_rtt_figures_of_another_timer_and_of_nothing():
    parsed = parsers.parse_sipp_rtt("Date_ms;response_time_ms;rtd_no\n1.0;10;1\n2.0;30;2\n3.0;50;2\n")
    assert sipplib.rtt_figures(parsed, rtd_no=2)["response_time_mean_ms"] == 40.0
    empty = sipplib.rtt_figures(parsed, rtd_no=3)
    assert empty["response_time_samples"] == 0 and empty["response_time_p95_ms"] is None


def test_percentile_interpolates_between_ranks():
    assert sipplib.percentile([4, 1, 3, 2], 50) == 2.5
    assert sipplib.percentile([4, 1, 3, 2], 0) == 1 and sipplib.percentile([4, 1, 3, 2], 100) == 4
    assert sipplib.percentile([0] * 19 + [100], 95) == pytest.approx(5.0)
    for values, pct, message in (([], 50, "empty"), ([1], 101, "between 0 and 100"), (["a"], 50, "item 0"),
                                 ("12", 50, "list of numbers"), ([float("nan")], 50, "finite")):
        with pytest.raises(ValueError, match=message):
            sipplib.percentile(values, pct)


def test_stat_without_rows_is_an_error():
    header = fixture("uac-clean-stat.csv").splitlines()[0] + "\n"
    with pytest.raises(ValueError, match="no rows"):
        sipplib.stat_figures(parsers.parse_sipp_stat(header))


def test_build_argv_and_masking():
    argv = sipplib.build_argv("/usr/bin/sipp", "uac", remote=sipplib.format_remote("10.0.0.50", 5060), caller="sipp",
                              stat_file="/r/stat.csv", stats_interval_s=1, error_file="/r/e.log", extra_args=["-aa"],
                              call_length_ms=20000, rate=10.0, calls=1000, service="2002", auth_password="pw")
    assert argv[:6] == ["/usr/bin/sipp", "-sn", "uac", "10.0.0.50:5060", "-t", "u1"]
    assert argv[6:14] == ["-d", "20000", "-r", "10", "-m", "1000", "-s", "2002"]
    assert argv[argv.index("-ap") + 1] == "pw" and sipplib.mask_argv(argv)[argv.index("-ap") + 1] == "********"
    assert ["-key", "caller", "sipp"] == argv[argv.index("-key"):argv.index("-key") + 3]
    assert argv[-2:] == ["-nostdin", "-aa"] and "-trace_rtt" in argv and "-rtt_freq" in argv
    assert sipplib.build_argv("sipp", "/x/uac_auth.xml")[1:3] == ["-sf", "/x/uac_auth.xml"]
    assert sipplib.format_remote("::1", 5070) == "[::1]:5070"
    with pytest.raises(sipplib.SippArgError, match="built-in scenarios"):
        sipplib.build_argv("sipp", "uacx")
    with pytest.raises(sipplib.SippArgError, match="unknown SIPp option"):
        sipplib.build_argv("sipp", "uac", bogus=1)
    with pytest.raises(sipplib.SippArgError, match="host name or an IPv4/IPv6 address"):
        sipplib.format_remote("a b", 5060)


def test_exit_meanings_and_outcomes():
    assert sipplib.exit_meaning(0) == "all calls were successful"
    assert sipplib.exit_meaning(254) == "fatal error binding a socket"
    assert sipplib.exit_meaning(-9) == "killed by signal 9"
    assert sipplib.exit_meaning(42) == "undocumented exit code 42"
    assert "background" in sipplib.exit_meaning(None)
    assert sipplib.outcome({"calls_total": 0}, 1) == "error"  # e.g. a scenario SIPp cannot parse
    assert sipplib.outcome({"calls_total": 0}, 99) == "no_calls"
    assert sipplib.outcome({"calls_total": 0}, None) == "no_calls"
    assert sipplib.outcome({"calls_total": 5, "calls_failed": 0, "fatal_errors": 1}, 0) == "error"


# --- inputs and errors ---------------------------------------------------------------------------

@pytest.fixture
def fake_sipp(tmp_path):
    """An executable stand-in for the input checks (it is never run there)."""
    path = tmp_path / "bin" / "sipp"
    path.parent.mkdir()
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return str(path)


def test_check_mode_start_runs_nothing_and_masks_the_password(run, tmp_path, fake_sipp):
    result = run(check_mode=True, state="started", target="127.0.0.1", executable=fake_sipp, auth_user="alice",
                 auth_password="s3cret", service="2002", call_length_ms=20000, calls=1000, rate=10)
    assert result["changed"] is True and "failed" not in result
    assert result["cmd"][:4] == [fake_sipp, "-sn", "uac", "127.0.0.1:5060"]
    assert "s3cret" not in json.dumps(result) and result["cmd"][result["cmd"].index("-ap") + 1] == "********"
    assert result["cmd"][result["cmd"].index("-key"):result["cmd"].index("-key") + 3] == ["-key", "caller", "alice"]
    assert result["msg"].startswith("check mode: would start")
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("args, message", [
    (dict(state="run", target="127.0.0.1"), "state=run needs calls (SIPp -m) or duration"),
    (dict(state="run", target="127.0.0.1", calls=0), "calls must be positive"),
    (dict(state="run", target="127.0.0.1", calls=1, rate=-1), "rate must be positive"),
    (dict(state="run", target="127.0.0.1", calls=1, call_length_ms=-5), "call_length_ms must not be negative"),
    (dict(state="run", target="127.0.0.1", calls=1, port=70000), "port must be between 1 and 65535"),
    (dict(state="run", target="127.0.0.1", calls=1, local_port=0), "local_port must be between 1 and 65535"),
    (dict(state="run", target="127.0.0.1", duration=20, max_duration=10), "exceeds max_duration"),
    (dict(state="run", target="127.0.0.1", calls=1, extra_args=["-bg"]), "extra_args may not contain -bg"),
    (dict(state="run", calls=1), "target is required with state=run"),
    (dict(state="started", target="127.0.0.1", run_id="../etc"), "run_id '../etc' is invalid"),
    (dict(state="started", target="127.0.0.1", result_file="/tmp/x.json"), "result_file is only used with"),
    (dict(state="run", target="127.0.0.1", calls=1, scenario="uacx"), "'uacx' is not one of SIPp's built-in scenarios"),
    (dict(state="run", target="127.0.0.1", calls=1, scenario="/nonexistent/uac_auth.xml"),
     "scenario file /nonexistent/uac_auth.xml does not exist"),
    (dict(state="run", target="127.0.0.1", calls=1, pcap_dir="/nonexistent"), "pcap_dir /nonexistent is not a directory"),
    (dict(state="stopped"), "missing: run_id"),
])
def test_bad_inputs(run, fake_sipp, args, message):
    result = run(executable=fake_sipp, **args)
    assert result.get("failed") is True, result
    assert message in result["msg"]


def test_scenario_file_must_be_a_sipp_scenario(run, tmp_path, fake_sipp):
    broken = tmp_path / "broken.xml"
    broken.write_text("<scenario><send></scenario>")
    result = run(target="127.0.0.1", calls=1, scenario=str(broken), executable=fake_sipp)
    assert result["failed"] and result["msg"].startswith("scenario file %s is not valid XML: mismatched tag" % broken)
    other = tmp_path / "other.xml"
    other.write_text("<html/>")
    result = run(target="127.0.0.1", calls=1, scenario=str(other), executable=fake_sipp)
    assert result["failed"] and "its root element is <html>, not <scenario>" in result["msg"]


def test_sipp_missing(run, monkeypatch):
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, *a, **k: None)
    result = run(target="127.0.0.1", calls=1)
    assert result["failed"] and result["msg"].startswith("SIPp is not installed (sipp not found in PATH): install sip-tester")
    result = run(target="127.0.0.1", calls=1, executable="/nonexistent/sipp")
    assert result["failed"] and result["msg"] == "SIPp executable /nonexistent/sipp does not exist or is not executable"


def test_bad_target(run, monkeypatch, fake_sipp):
    def no_such_host(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(sipp_load.socket, "getaddrinfo", no_such_host)
    result = run(target="voip-guest.invalid", calls=1, executable=fake_sipp)
    assert result["failed"] and result["msg"] == "bad target 'voip-guest.invalid': it does not resolve ([Errno -2] Name or service not known)"


def test_uac_pcap_needs_sipp_s_sample_captures(run, monkeypatch, fake_sipp):
    monkeypatch.setattr(sipp_load, "PCAP_DIRS", ("/nonexistent/a", "/nonexistent/b"))
    result = run(target="127.0.0.1", calls=1, scenario="uac_pcap", executable=fake_sipp)
    assert result["failed"] and "plays pcap/g711a.pcap, but SIPp's sample captures were not found in /nonexistent/a" in result["msg"]
    # uac has no audio: no captures needed
    assert run(check_mode=True, target="127.0.0.1", calls=1, executable=fake_sipp).get("failed") is None


def test_stop_unknown_and_broken_runs(run, tmp_path):
    result = run(state="stopped", run_id="nope")
    assert result["failed"] and result["msg"] == "unknown run_id 'nope': its state file %s is missing" % (
        tmp_path / "state" / "nope" / "state.json")
    directory = tmp_path / "state" / "r1"
    directory.mkdir(parents=True)
    (directory / "state.json").write_text('{"pid": 1}')
    result = run(state="stopped", run_id="r1")
    assert result["failed"] and "lacks start_ticks, cmd, cmdline_sha256" in result["msg"]


def test_stop_never_signals_a_pid_that_runs_something_else(run, tmp_path):
    other = subprocess.Popen(["sleep", "30"])
    try:
        deadline = time.monotonic() + 5
        while sipp_load.read_cmdline(other.pid) != ["sleep", "30"] and time.monotonic() < deadline:
            time.sleep(0.01)
        directory = tmp_path / "state" / "r1"
        directory.mkdir(parents=True)
        argv = ["/usr/bin/sipp", "-sn", "uac", "10.0.0.1:5060"]
        state = {"pid": other.pid, "start_ticks": sipp_load.read_proc_stat(other.pid)[1], "cmd": argv,
                 "cmdline_sha256": sipp_load.cmdline_digest(argv), "run_id": "r1", "run_dir": str(directory),
                 "stat_file": str(directory / "stat.csv"), "stderr_file": str(directory / "stderr.log"), "params": {},
                 "started_s": time.time(), "started_utc": results.utc_iso()}
        (directory / "state.json").write_text(json.dumps(state))
        check = run(check_mode=True, state="stopped", run_id="r1")
        assert check["running"] is False and "PID %d now runs 'sleep', not the recorded SIPp" % other.pid in check["msg"]
        result = run(state="stopped", run_id="r1")
        assert alive(other.pid), "the module signalled a process that is not its SIPp"
        assert result["failed"] and result["msg"].startswith("SIPp wrote no statistics (%s is missing or empty)" % state["stat_file"])
    finally:
        other.kill()
        other.wait()


def test_record_params_may_not_replace_the_run_s_own(run, fake_sipp):
    result = run(target="127.0.0.1", calls=1, executable=fake_sipp, record_params={"rate": 5})
    assert result["failed"] and "may not replace the run's own parameter 'rate'" in result["msg"]


# --- real SIPp on loopback -----------------------------------------------------------------------

@pytest.fixture
def uas(tmp_path):
    """Start SIPp servers on 127.0.0.1 by PID, stop them by PID (SIGTERM, then SIGKILL)."""
    procs = []

    def start(*args):
        port = free_udp_port()
        argv = [SIPP] + list(args) + ["-i", "127.0.0.1", "-p", str(port), "-nostdin"]
        with open(os.devnull, "wb") as null:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=null, stderr=null, cwd=str(tmp_path))
        procs.append(proc)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # listening once the port is taken
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    return port
            assert proc.poll() is None, "the SIPp server exited with %s" % proc.returncode
            time.sleep(0.02)
        raise AssertionError("the SIPp server did not bind port %d" % port)

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@tools
@needs_sipp
def test_run_builtin_uac_against_uas_all_calls_succeed(run, uas, tmp_path):
    port = uas("-sn", "uas")
    fact = tmp_path / "facts.d" / "xenlab_sipp.fact"
    result = run(target="127.0.0.1", port=port, local_ip="127.0.0.1", calls=5, rate=20, call_length_ms=100,
                 result_file=str(fact), create_dirs=True, record_params={"experiment": "unit"})
    assert not result.get("failed"), result
    assert result["changed"] is True and result["exit_code"] == 0 and result["outcome"] == "ok"
    assert result["calls_total"] == result["calls_successful"] == 5 and result["calls_failed"] == 0
    assert result["response_time_samples"] == 5 and result["response_time_max_ms"] < 1000
    assert result["stop_signals"] == [] and result["limit_reached"] is False
    assert not alive(result["pid"])
    record = results.read_fact(str(fact), kind="sipp_load")
    assert record["results"]["calls_successful"] == 5 and record["params"]["experiment"] == "unit"
    assert record["params"]["target_address"] == "127.0.0.1" and record["params"]["calls"] == 5
    assert results.read_record(result["run_record"]) == record


@tools
@needs_sipp
def test_run_against_a_port_with_nothing_listening_counts_failures(run):
    result = run(target="127.0.0.1", port=free_udp_port(), local_ip="127.0.0.1", calls=2, rate=10,
                 extra_args=["-recv_timeout", "500"])
    assert not result.get("failed"), result
    assert result["calls_total"] == result["calls_failed"] == 2 and result["calls_successful"] == 0
    assert result["failed_by_cause"]["TimeoutOnRecv"] == 2
    assert result["exit_code"] == 1 and result["outcome"] == "failed_calls"
    assert result["response_time_samples"] == 0 and result["response_time_median_ms"] is None


@tools
@needs_sipp
def test_uac_auth_started_and_stopped_against_a_challenging_uas(run, uas):
    port = uas("-sf", UAS_AUTH, "-key", "auth_user", "alice", "-key", "auth_password", "s3cret")
    started = run(state="started", run_id="auth", target="127.0.0.1", port=port, local_ip="127.0.0.1",
                  scenario=UAC_AUTH, service="2002", auth_user="alice", auth_password="s3cret", call_length_ms=300, rate=10)
    assert started["changed"] and not started.get("failed"), started
    assert "s3cret" not in json.dumps(started)
    state_text = open(started["state_file"], encoding="utf-8").read()
    assert "s3cret" not in state_text
    assert os.path.islink(os.path.join(started["run_dir"], "pcap"))
    time.sleep(1.0)
    again = run(state="started", run_id="auth", target="127.0.0.1", port=port, scenario=UAC_AUTH)
    assert again["failed"] and again["msg"].startswith("run 'auth' is still going (pid %d" % started["pid"])
    check = run(check_mode=True, state="stopped", run_id="auth")
    assert check["running"] is True and alive(started["pid"])

    stopped = run(state="stopped", run_id="auth")
    assert not stopped.get("failed"), stopped
    assert not alive(started["pid"])
    assert stopped["stop_signals"] == ["SIGUSR1"] and stopped["calls_in_flight"] == 0
    assert stopped["calls_total"] >= 5 and stopped["calls_successful"] == stopped["calls_total"]
    assert stopped["calls_failed"] == 0 and stopped["outcome"] == "ok" and stopped["exit_code"] is None
    assert stopped["response_time_samples"] == stopped["calls_total"]
    assert 300 <= stopped["call_length_mean_ms"] < 1000

    twice = run(state="stopped", run_id="auth")
    assert twice["changed"] is False and "already stopped" in twice["msg"]
    assert twice["calls_successful"] == stopped["calls_successful"]

    wrong = run(target="127.0.0.1", port=port, local_ip="127.0.0.1", scenario=UAC_AUTH, service="2002",
                auth_user="alice", auth_password="wrong", calls=1)
    assert wrong["calls_failed"] == 1 and wrong["failed_by_cause"]["UnexpectedMessage"] == 1
    assert wrong["outcome"] == "failed_calls" and not wrong.get("failed")


@tools
@needs_sipp
def test_calls_still_in_flight_after_the_grace_period_get_sigterm(run, uas):
    port = uas("-sn", "uas")
    started = run(state="started", target="127.0.0.1", port=port, local_ip="127.0.0.1", rate=10,
                  call_length_ms=5000, stop_timeout=0.5)
    assert not started.get("failed"), started
    time.sleep(0.5)
    stopped = run(state="stopped", run_id=started["run_id"])
    assert not stopped.get("failed"), stopped
    assert stopped["stop_signals"] == ["SIGUSR1", "SIGTERM"]
    assert stopped["calls_in_flight"] > 0 and stopped["calls_successful"] == 0
    assert any("ended with SIGTERM" in w for w in stopped["warnings"])
    assert stopped["duration_s"] < 4.0


@tools
@needs_sipp
def test_duration_ends_a_run_without_a_call_count(run, uas):
    port = uas("-sn", "uas")
    result = run(target="127.0.0.1", port=port, local_ip="127.0.0.1", rate=10, call_length_ms=100, duration=0.6)
    assert not result.get("failed"), result
    assert result["limit_reached"] is True and result["stop_signals"] == ["SIGUSR1"]
    assert 2 <= result["calls_total"] <= 12 and result["calls_successful"] == result["calls_total"]


@tools
@needs_sipp
def test_a_local_port_in_use_fails_with_sipp_s_message(run):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        started = run(state="started", target="127.0.0.1", port=port, local_ip="127.0.0.1", local_port=port)
        ran = run(target="127.0.0.1", port=port, local_ip="127.0.0.1", local_port=port, calls=1)
    assert started["failed"] and started["msg"].startswith("SIPp exited at once with code 254 (fatal error binding a socket)")
    assert ran["failed"] and ran["msg"].startswith("SIPp ended with a fatal error (exit code 254")
    assert ran["exit_code"] == 254 and ran["calls_total"] == 0
