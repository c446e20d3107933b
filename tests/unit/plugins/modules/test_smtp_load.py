# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""smtp_load module: inputs and check mode, measured failures on a closed loopback port, a real
background sender process (started, stopped by its verified PID) against a server replaying a
real Postfix's replies, and state=check on real Maildir/mbox mailboxes (tests/fixtures/smtp).

Real mail through a real Postfix: the postfix role's Molecule scenario."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.xenlab.migration.plugins.module_utils import results
from ansible_collections.xenlab.migration.plugins.modules import smtp_load
from ansible_collections.xenlab.migration.tests.unit.plugins.module_utils.test_smtp_load_utils import (
    ReplayServer, closed_port, fixture)


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
                smtp_load.main()
            except _Exit as done:
                return done.args[0]
        raise AssertionError("the module returned without exit_json or fail_json")

    return call


@pytest.fixture
def postfix():
    servers = []

    def make(session="accepted", **kwargs):
        srv = ReplayServer(session, **kwargs)
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.close()


def alive(pid):
    stat = smtp_load.read_proc_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


# --- inputs and check mode ----------------------------------------------------------------------

def test_check_mode_send_sends_nothing(run, postfix):
    srv = postfix()
    result = run(check_mode=True, host="127.0.0.1", port=srv.port, count=100, rate=10)
    assert result["changed"] is True and "failed" not in result
    assert result["estimated_duration_s"] == 9.9
    assert result["config"]["sender"] == "jane@xen.com" and result["config"]["recipient"] == "john@xen.com"
    assert result["msg"] == "check mode: would send 100 mails from jane@xen.com to john@xen.com via 127.0.0.1:%d" % srv.port
    time.sleep(0.1)
    assert srv.connections == 0


def test_check_mode_started_creates_nothing(run, tmp_path):
    result = run(check_mode=True, state="started", host="127.0.0.1", count=0, rate=5, domain="example.net", run_id="r1")
    assert result["changed"] is True and result["run_id"] == "r1" and result["estimated_duration_s"] is None
    assert result["config"]["sender"] == "jane@example.net" and result["cmd"][2:] == ["send", result["cmd"][3]]
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("args, message", [
    (dict(), "state is send but all of the following are missing: host"),
    (dict(state="stopped"), "missing: run_id"),
    (dict(state="check", run_id="x"), "missing: mailbox"),
    (dict(host="h", count=0), "count must be at least 1 with state=send"),
    (dict(host="h", rate=-1), "rate must be at least 0"),
    (dict(host="h", concurrency=0), "concurrency must be at least 1"),
    (dict(host="h", timeout=0), "timeout must be greater than 0"),
    (dict(host="h", sender="jane"), "sender must be a mail address"),
    (dict(host="h", run_id="a/b"), "run_id 'a/b' is invalid"),
    (dict(host="h", check_delivery=True), "check_delivery needs mailbox"),
    (dict(state="started", host="h", result_file="/tmp/x.json"), "result_file is only written with state=send"),
    (dict(state="started", host="h", count=0, max_duration=0), "count=0 (send until stopped) needs a max_duration"),
    (dict(state="check", run_id="x", mailbox="/m", delivery_timeout=-1), "delivery_timeout must not be negative"),
    (dict(state="stopped", run_id="x", stop_timeout=0), "stop_timeout must be positive"),
])
def test_bad_inputs(run, args, message):
    result = run(**args)
    assert result.get("failed") is True
    assert message in result["msg"]


def test_record_params_may_not_replace_own(run, postfix):
    srv = postfix()
    result = run(host="127.0.0.1", port=srv.port, count=1, record_params={"host": "x"}, result_file="/nonexistent/r.json")
    assert result["failed"] and "may not replace the module's own parameter 'host'" in result["msg"]
    assert srv.connections == 0


def test_unknown_run_id(run, tmp_path):
    result = run(state="stopped", run_id="nope")
    assert result["failed"] and result["msg"].startswith("unknown run_id 'nope': its state file")


# --- state=send ----------------------------------------------------------------------------------

def test_send_to_closed_port_measures_failures(run, tmp_path):
    dest = tmp_path / "out" / "mail.json"
    result = run(host="127.0.0.1", port=closed_port(), count=3, rate=0, result_file=str(dest), create_dirs=True,
                 record_params={"scenario": "unit"})
    assert "failed" not in result and result["changed"] is True
    assert (result["sent"], result["accepted"], result["failed_mails"], result["errors"]) == (3, 0, 3, 3)
    assert result["failures_by_stage"] == {"connect": 3}
    assert [f["message"] for f in result["failures"]] == ["Connection refused"] * 3
    record = results.read_record(str(dest), kind="smtp_load")
    assert record["params"]["scenario"] == "unit" and record["params"]["count"] == 3
    assert record["results"]["failed_seqs"] == [1, 2, 3] and len(record["results"]["timeline"]) == 3
    assert result["result_file"] == str(dest)


def test_send_replayed_postfix(run, postfix, tmp_path):
    srv = postfix()
    box = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (box / sub).mkdir(parents=True)
    result = run(host="127.0.0.1", port=srv.port, count=4, rate=40, concurrency=2, run_id="unit-1",
                 check_delivery=True, mailbox=str(box), delivery_timeout=0.3)
    assert result["accepted"] == 4 and result["accepted_seqs"] == [1, 2, 3, 4] and result["response_ms"]["count"] == 4
    assert result["response_ms"]["min"] <= result["response_ms"]["median"] <= result["response_ms"]["max"]
    assert sorted(body.split("X-Xenlab-Seq: ")[1].split("\n")[0] for body in srv.bodies) == ["1", "2", "3", "4"]
    # nothing was really delivered: the check says which mails are missing
    assert result["expected"] == 4 and result["delivered"] == 0 and result["missing_seqs"] == [1, 2, 3, 4]
    assert any("4 of 4 expected mails were not in" in w for w in result["warnings"])


def test_send_relay_denied_replayed(run, postfix):
    srv = postfix("relay denied")
    result = run(host="127.0.0.1", port=srv.port, count=2, rate=0, recipient="someone@example.org")
    assert (result["accepted"], result["rejected"], result["errors"]) == (0, 2, 0)
    assert result["failures_by_code"] == {"554": 2} and result["failures_by_stage"] == {"rcpt": 2}
    assert result["failures"][0]["message"] == "5.7.1 <someone@example.org>: Relay access denied"


# --- state=started / stopped -----------------------------------------------------------------------

def test_started_then_stopped(run, postfix, tmp_path):
    srv = postfix()
    started = run(state="started", host="127.0.0.1", port=srv.port, count=0, rate=20, max_duration=60,
                  run_id="bg-1", record_params={"cap": 35})
    assert started["changed"] is True and "failed" not in started, started
    pid = started["pid"]
    assert alive(pid) and smtp_load.read_cmdline(pid) == started["cmd"]
    run_dir = tmp_path / "state" / "bg-1"
    assert sorted(os.listdir(str(run_dir))) == ["config.json", "sender.log", "smtp_load.py", "state.json", "stderr.log"]
    again = run(state="started", host="127.0.0.1", port=srv.port, count=0, rate=20, run_id="bg-1")
    assert again["failed"] and "is already running" in again["msg"]
    checked = run(check_mode=True, state="stopped", run_id="bg-1")
    assert checked["sender_running"] is True and alive(pid)
    time.sleep(0.6)
    stopped = run(state="stopped", run_id="bg-1", result_file=str(tmp_path / "r.json"))
    assert stopped["changed"] is True and "failed" not in stopped, stopped
    assert not alive(pid)
    assert stopped["sent"] == stopped["accepted"] >= 5 and stopped["unfinished"] == 0
    assert stopped["accepted_seqs"] == list(range(1, stopped["sent"] + 1))
    assert len(srv.bodies) == stopped["accepted"]
    record = results.read_record(str(tmp_path / "r.json"), kind="smtp_load")
    assert record["params"]["cap"] == 35 and record["results"]["accepted"] == stopped["accepted"]
    assert results.read_record(str(run_dir / "result.json"))["results"] == record["results"]
    repeat = run(state="stopped", run_id="bg-1")
    assert repeat["changed"] is False and repeat["accepted"] == stopped["accepted"] and "already stopped" in repeat["msg"]
    reuse = run(check_mode=True, state="started", host="127.0.0.1", port=srv.port, count=1, run_id="bg-1")
    assert "replace the stopped run 'bg-1'" in reuse["msg"]


def test_short_run_finished_before_stop(run, postfix):
    srv = postfix()
    started = run(state="started", host="127.0.0.1", port=srv.port, count=2, rate=0, run_id="bg-short")
    assert "failed" not in started, started
    deadline = time.monotonic() + 10
    while alive(started["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    stopped = run(state="stopped", run_id="bg-short")
    assert stopped["accepted"] == 2 and any("had already stopped" in w for w in stopped["warnings"])


def test_stop_never_signals_a_reused_pid(run, postfix, tmp_path):
    srv = postfix()
    started = run(state="started", host="127.0.0.1", port=srv.port, count=0, rate=5, max_duration=30, run_id="bg-2")
    state_file = tmp_path / "state" / "bg-2" / "state.json"
    state = json.loads(state_file.read_text())
    real_cmd = state["cmd"]
    state["cmd"] = real_cmd[:-1] + ["/some/other/config.json"]  # as if the PID now ran another program
    state_file.write_text(json.dumps(state))
    result = run(state="stopped", run_id="bg-2")
    assert alive(started["pid"]), "a process that is not ours must not be signalled"
    assert any("PID %d now runs another program" % started["pid"] in w for w in result["warnings"])
    os.kill(started["pid"], 15)  # clean up the test's own sender
    deadline = time.monotonic() + 10
    while alive(started["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(started["pid"])


def test_started_sender_that_cannot_run(run, monkeypatch):
    monkeypatch.setattr(smtp_load.sys, "executable", "/bin/false")
    result = run(state="started", host="127.0.0.1", count=1, run_id="bg-3")
    assert result["failed"] and result["msg"].startswith("the sender exited at once with code 1")


def test_worker_source_is_the_module_utils_file():
    source = smtp_load.worker_source()
    assert "def worker_main(" in source and 'if __name__ == "__main__":' in source


# --- state=check on real mailboxes -----------------------------------------------------------------

def test_check_maildir(run, tmp_path):
    dest = tmp_path / "delivery.json"
    result = run(state="check", run_id="fixture-md", mailbox=fixture("maildir"), expected_seqs=[1, 2, 3],
                 result_file=str(dest))
    assert result["delivered"] == 3 and result["missing_seqs"] == [] and result["unexpected_seqs"] == []
    assert result["mailbox_format"] == "maildir" and result["delivery_delay_ms"]["count"] == 3
    assert result["changed"] is True
    record = results.read_record(str(dest), kind="smtp_delivery")
    assert record["params"]["expected"] == 3 and record["results"]["delivered"] == 3


def test_check_mbox_missing_and_check_mode(run, tmp_path):
    box = tmp_path / "john"
    shutil.copy(fixture("mbox"), str(box))
    dest = tmp_path / "delivery.json"
    result = run(check_mode=True, state="check", run_id="fixture-mb", mailbox=str(box), expected_seqs=[1, 2, 3, 4],
                 delivery_timeout=0.2, result_file=str(dest))
    assert result["delivered"] == 3 and result["missing_seqs"] == [4] and result["mailbox_format"] == "mbox"
    assert result["changed"] is False and not dest.exists()
    assert any("1 of 4 expected mails were not in" in w for w in result["warnings"])


def test_check_without_expected_counts_what_is_there(run):
    result = run(state="check", run_id="other-run", mailbox=fixture("maildir"))
    assert result["delivered"] == result["found"] == 1 and "expected" not in result


def test_check_missing_mailbox_and_bad_maildir(run, tmp_path):
    result = run(state="check", run_id="r", mailbox=str(tmp_path / "nothing"), expected_seqs=[1], delivery_timeout=0)
    assert result["delivered"] == 0 and result["mailbox_exists"] is False
    assert any("does not exist" in w for w in result["warnings"])
    bad = run(state="check", run_id="r", mailbox=str(tmp_path))
    assert bad["failed"] and bad["msg"] == "cannot check the mailbox: %s is not a Maildir: it has no new/ directory" % tmp_path
