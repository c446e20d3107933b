# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/smtp_load: the sender against a server that replays the replies of a real Postfix
(tests/fixtures/smtp/postfix-sessions.txt), misbehaving servers for the error paths, a closed
loopback port, real sender logs and real Maildir/mbox mailboxes written by Postfix.

The real path end to end (real Postfix, real delivery) is the postfix role's Molecule scenario.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from ansible_collections.xenlab.migration.plugins.module_utils import smtp_load as load

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "fixtures", "smtp")


_MAILDIR = []


def fixture(name):
    if name == "maildir":
        return _maildir_copy()
    return os.path.join(FIXTURES, name)


def _maildir_copy():
    """The real Maildir fixture with its true file names: ansible-test refuses ':' in a tracked
    file name, so the flagged mail is stored with ':' written as '%3A'."""
    if not _MAILDIR:
        top = tempfile.mkdtemp(prefix="xenlab-maildir-")
        box = os.path.join(top, "maildir")
        shutil.copytree(os.path.join(FIXTURES, "maildir"), box)
        for sub in ("new", "cur", "tmp"):
            for entry in os.listdir(os.path.join(box, sub)):
                if "%3A" in entry:
                    os.rename(os.path.join(box, sub, entry), os.path.join(box, sub, entry.replace("%3A", ":")))
        _MAILDIR.append(box)
    return _MAILDIR[0]


def read_fixture(name):
    with open(fixture(name), "r", encoding="utf-8") as handle:
        return handle.read()


def postfix_sessions():
    """{case name: [reply blocks]} from the real transcript; a block is the server's lines for one turn."""
    sessions, name, blocks, last = {}, None, [], None
    for line in read_fixture("postfix-sessions.txt").splitlines():
        if line.startswith("## "):
            name, blocks, last = line[3:].split(" (")[0], [], None
            sessions[name] = blocks
        elif line.startswith("S: "):
            if last != "S":
                blocks.append([])
            blocks[-1].append(line[3:])
            last = "S"
        elif line.startswith("C: "):
            last = "C"
    return sessions


SESSIONS = postfix_sessions()


class ReplayServer(object):
    """A loopback SMTP peer that answers each connection with the reply blocks of one real session.

    ``behaviour`` picks an error path instead: ``silent`` (never greets), ``close_after`` N replies.
    Every received DATA body is kept in ``bodies``; every command line in ``commands``.
    """

    def __init__(self, session="accepted", behaviour=None, close_after=None):
        self.blocks = SESSIONS[session] if session else []
        self.behaviour = behaviour
        self.close_after = close_after
        self.bodies, self.commands, self.connections = [], [], 0
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self.accept_loop, daemon=True)
        self.thread.start()

    def accept_loop(self):
        while not self.stopping:
            try:
                conn, _peer = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        with conn:
            if self.behaviour == "silent":
                time.sleep(3)
                return
            reader = conn.makefile("rb")
            sent = 0

            def send_block(index):
                conn.sendall(("\r\n".join(self.blocks[index]) + "\r\n").encode())

            try:
                send_block(0)
                sent, turn, in_data, body = 1, 1, False, []
                while turn < len(self.blocks):
                    if self.close_after is not None and sent >= self.close_after:
                        return
                    line = reader.readline()
                    if not line:
                        return
                    text = line.decode().rstrip("\r\n")
                    if in_data:
                        if text != ".":
                            body.append(text)
                            continue
                        with self.lock:
                            self.bodies.append("\n".join(body))
                        in_data = False
                    else:
                        with self.lock:
                            self.commands.append(text)
                        in_data = text.upper() == "DATA" and self.blocks[turn][0].startswith("354")
                    send_block(turn)
                    sent += 1
                    turn += 1
            except OSError:
                return

    def close(self):
        self.stopping = True
        self.sock.close()


@pytest.fixture
def server():
    servers = []

    def make(*args, **kwargs):
        srv = ReplayServer(*args, **kwargs)
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.close()


def closed_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def config(port, **over):
    cfg = dict(host="127.0.0.1", port=port, count=3, rate=0.0, concurrency=1, sender="jane@xen.com",
               recipient="john@xen.com", helo="client", message_size=300, timeout=5.0, run_id="t-1", max_duration=0)
    cfg.update(over)
    return cfg


def log_records(name):
    return load.parse_log(read_fixture(name))


# --- settings and messages ---------------------------------------------------------------------

@pytest.mark.parametrize("over, message", [
    (dict(host=""), "host must be a host name"),
    (dict(port=0), "port must be at least 1"),
    (dict(port=70000), "port must be at most 65535"),
    (dict(count=-1), "count must be at least 0"),
    (dict(count=0), "count=0 (send until stopped) needs a max_duration"),
    (dict(rate=-1.0), "rate must be at least 0"),
    (dict(rate=float("nan")), "rate must be a number"),
    (dict(concurrency=0), "concurrency must be at least 1"),
    (dict(timeout=0), "timeout must be greater than 0"),
    (dict(port=True), "port must be an integer"),
    (dict(sender="jane"), "sender must be a mail address"),
    (dict(recipient="john@xen.com, x@y.z"), "recipient must be a mail address"),
    (dict(helo="bad name"), "helo must be a host name"),
    (dict(run_id="../x"), "run_id '../x' is invalid"),
])
def test_validate_config_rejects(over, message):
    with pytest.raises(load.SmtpLoadError) as err:
        load.validate_config(dict(config(25), **over))
    assert message in str(err.value)


def test_validate_config_converts_numbers():
    cfg = load.validate_config(config(25, rate=10, timeout=3))
    assert cfg["rate"] == 10.0 and isinstance(cfg["rate"], float) and isinstance(cfg["timeout"], float)
    with pytest.raises(load.SmtpLoadError, match="must be a dict"):
        load.validate_config([])


def test_build_message_headers_and_size():
    raw = load.build_message("run-7", 42, "jane@xen.com", "john@xen.com", 1024, 1714564811.25)
    text = raw.decode("ascii")
    head, body = text.split("\r\n\r\n", 1)
    assert "Message-ID: <run-7.42.smtp-load@xen.com>" in head.split("\r\n")
    assert "X-Xenlab-Run: run-7" in head and "X-Xenlab-Seq: 42" in head and "X-Xenlab-Sent: 1714564811.250000" in head
    assert "Date: Wed, 01 May 2024 12:00:11 -0000" in head
    assert "\n" not in text.replace("\r\n", "")
    assert abs(len(body) - 1024) <= 2
    assert max(len(line) for line in body.split("\r\n")) <= 76
    small = load.build_message("r", 1, "a@b.c", "d@b.c", 0, 0.0).decode().split("\r\n\r\n", 1)[1]
    assert small == "xenlab smtp_load run r message 1\r\n"


def test_run_ids():
    run_id = load.new_run_id()
    assert load.check_run_id(run_id) == run_id and len(run_id) == 23
    assert load.new_run_id() != run_id


# --- statistics ----------------------------------------------------------------------------------

def test_percentile_is_linear_between_ranks():
    assert load.percentile([4, 1, 3, 2], 50) == 2.5
    assert load.percentile([1, 2, 3, 4], 95) == pytest.approx(3.85)
    assert load.percentile([7], 95) == 7
    assert load.percentile(range(1, 101), 95) == pytest.approx(95.05)
    with pytest.raises(ValueError):
        load.percentile([], 50)
    with pytest.raises(ValueError):
        load.percentile([1], 101)


def test_describe():
    assert load.describe([]) == {"count": 0, "min": None, "mean": None, "median": None, "p95": None, "max": None}
    assert load.describe([3, 1, 2, 10]) == {"count": 4, "min": 1.0, "mean": 4.0, "median": 2.5, "p95": 8.95, "max": 10.0}


# --- one message against real Postfix replies ------------------------------------------------------

def test_send_one_accepted(server):
    srv = server("accepted")
    rec = load.send_one(load.validate_config(config(srv.port)), 5, time.monotonic())
    assert rec["ok"] is True and rec["code"] == 250 and rec["stage"] == "done"
    assert rec["message"] == SESSIONS["accepted"][-2][0][4:]  # "2.0.0 Ok: queued as <queue id>"
    assert rec["message"].startswith("2.0.0 Ok: queued as ")
    assert 0 <= rec["connect_ms"] <= rec["response_ms"] and 0 <= rec["transaction_ms"] <= rec["response_ms"]
    assert rec["t_done_ms"] >= rec["t_send_ms"]
    assert srv.commands == ["ehlo client", "mail FROM:<jane@xen.com>", "rcpt TO:<john@xen.com>", "data", "quit"]
    body = srv.bodies[0]
    assert "X-Xenlab-Run: t-1" in body and "X-Xenlab-Seq: 5" in body and "Message-ID: <t-1.5.smtp-load@xen.com>" in body


def test_send_one_relay_denied_is_measured(server):
    srv = server("relay denied")
    rec = load.send_one(load.validate_config(config(srv.port, recipient="someone@example.org")), 1, time.monotonic())
    assert rec["ok"] is False and rec["code"] == 554 and rec["stage"] == "rcpt"
    assert rec["message"] == "5.7.1 <someone@example.org>: Relay access denied"
    assert rec["transaction_ms"] is None and rec["connect_ms"] is not None
    assert srv.commands[-1] == "quit" and srv.bodies == []


def test_send_one_unknown_user(server):
    srv = server("unknown local user")
    rec = load.send_one(load.validate_config(config(srv.port, recipient="nosuchuser@xen.com")), 1, time.monotonic())
    assert (rec["code"], rec["stage"]) == (550, "rcpt")
    assert rec["message"].endswith("User unknown in local recipient table")


def test_send_one_connection_refused():
    rec = load.send_one(load.validate_config(config(closed_port())), 1, time.monotonic())
    assert rec == dict(rec, ok=False, code=None, stage="connect", message="Connection refused", connect_ms=None)
    assert rec["response_ms"] >= 0


def test_send_one_timeout(server):
    srv = server(None, behaviour="silent")
    rec = load.send_one(load.validate_config(config(srv.port, timeout=0.3)), 1, time.monotonic())
    assert (rec["ok"], rec["code"], rec["stage"], rec["message"]) == (False, None, "connect", "timed out")
    assert 290 <= rec["response_ms"] < 2000


def test_send_one_server_closes_mid_session(server):
    srv = server("accepted", close_after=3)  # greeting, EHLO, MAIL answered; then the connection drops
    rec = load.send_one(load.validate_config(config(srv.port)), 1, time.monotonic())
    assert (rec["ok"], rec["code"], rec["stage"]) == (False, None, "rcpt")
    assert rec["message"].startswith("connection closed by the server")


def test_send_one_refusing_greeting(server):
    srv = server("accepted")
    srv.blocks = [["421 4.3.2 mail.xen.com Service shutting down"]]
    rec = load.send_one(load.validate_config(config(srv.port)), 1, time.monotonic())
    assert (rec["code"], rec["stage"], rec["message"]) == (421, "connect", "4.3.2 mail.xen.com Service shutting down")


# --- runs ----------------------------------------------------------------------------------------

def test_run_load_keeps_the_schedule(server):
    srv = server("accepted")
    records = []
    info = load.run_load(config(srv.port, count=5, rate=20.0, concurrency=2), records.append)
    assert info["attempted"] == 5 and info["stopped"] is False
    assert sorted(rec["seq"] for rec in records) == [1, 2, 3, 4, 5]
    for rec in records:
        assert rec["t_sched_ms"] == pytest.approx((rec["seq"] - 1) * 50.0)
        assert rec["t_send_ms"] >= rec["t_sched_ms"]
    assert srv.connections == 5 and len(srv.bodies) == 5
    figures = load.summarize(records, attempted=info["attempted"])
    assert figures["accepted"] == 5 and figures["failed_mails"] == 0 and figures["unfinished"] == 0
    assert 15.0 < figures["send_rate_per_s"] < 25.0


def test_run_load_stops_on_request(server):
    srv = server("accepted")
    stop = threading.Event()
    records = []
    timer = threading.Timer(0.35, stop.set)
    timer.start()
    info = load.run_load(config(srv.port, count=0, rate=20.0, max_duration=30), records.append, stop=stop)
    timer.join()
    assert info["stopped"] is True and info["attempted"] == len(records)
    assert 4 <= len(records) <= 10


def test_run_load_max_duration(server):
    srv = server("accepted")
    records = []
    started = time.monotonic()
    info = load.run_load(config(srv.port, count=0, rate=10.0, max_duration=0.35), records.append)
    assert time.monotonic() - started < 2.0
    assert info["stopped"] is True and [rec["seq"] for rec in sorted(records, key=lambda r: r["seq"])] == [1, 2, 3, 4]


def test_run_load_all_refused_is_a_result_not_an_error():
    records = []
    info = load.run_load(config(closed_port(), count=4, concurrency=3), records.append)
    figures = load.summarize(records, info["attempted"])
    assert (figures["sent"], figures["accepted"], figures["failed_mails"], figures["errors"]) == (4, 0, 4, 4)
    assert figures["failures_by_stage"] == {"connect": 4} and figures["failures_by_code"] == {"none": 4}
    assert figures["response_ms"]["count"] == 0 and figures["response_ms"]["p95"] is None


# --- figures from real sender logs ---------------------------------------------------------------

def test_summarize_complete_log():
    parsed = log_records("sender-complete.log")
    assert parsed["end"]["reason"] == "count reached" and parsed["end"]["attempted"] == 5
    figures = load.summarize(parsed["records"], parsed["end"]["attempted"])
    assert figures["sent"] == figures["accepted"] == 5 and figures["unfinished"] == 0
    assert figures["accepted_seqs"] == [1, 2, 3, 4, 5]
    responses = sorted(rec["response_ms"] for rec in parsed["records"])
    assert figures["response_ms"]["min"] == responses[0] and figures["response_ms"]["max"] == responses[-1]
    assert figures["response_ms"]["median"] == responses[2]
    assert [item["seq"] for item in figures["timeline"]] == [1, 2, 3, 4, 5]
    assert all(item["code"] == 250 and item["ok"] for item in figures["timeline"])
    for rec in parsed["records"]:
        assert rec["message"].startswith("2.0.0 Ok: queued as ")
        assert rec["transaction_ms"] <= rec["response_ms"]


def test_summarize_refused_log():
    parsed = log_records("sender-refused.log")
    figures = load.summarize(parsed["records"])
    assert (figures["sent"], figures["accepted"], figures["rejected"], figures["errors"]) == (3, 0, 0, 3)
    assert [f["message"] for f in figures["failures"]] == ["Connection refused"] * 3
    assert figures["failed_response_ms"]["count"] == 3


def test_parse_killed_log():
    parsed = log_records("sender-killed.log")
    assert parsed["end"] is None and parsed["header"]["config"]["run_id"] == "fixture-killed"
    done = {rec["seq"] for rec in parsed["records"]}
    assert done <= set(parsed["started"]) and len(done) > 10
    assert all(rec["ok"] for rec in parsed["records"])


def test_parse_log_errors():
    text = read_fixture("sender-complete.log")
    lines = text.splitlines(True)
    assert load.parse_log(text + '{"ev": "msg", "se')["end"] is not None  # a last line cut short by a kill
    with pytest.raises(load.SmtpLoadError, match="line 3 is not JSON"):
        load.parse_log("".join(lines[:2] + ["garbage\n"] + lines[2:]))
    with pytest.raises(load.SmtpLoadError, match="no 'begin' line"):
        load.parse_log("".join(lines[1:]))
    with pytest.raises(load.SmtpLoadError, match="unknown entry"):
        load.parse_log(text + '{"ev": "what"}\n')
    with pytest.raises(load.SmtpLoadError, match="sender log version 9"):
        load.parse_log(text.replace('"version": 1', '"version": 9'))


# --- real mailboxes --------------------------------------------------------------------------------

def test_maildir_time():
    assert load.maildir_time("1795608443.V4dI1ee503M718356.mail:2,S") == pytest.approx(1795608443.718356)
    assert load.maildir_time("1795608443.V4dI1ee503M7.mail") == pytest.approx(1795608443.000007)
    assert load.maildir_time("1795608443.P123.host") == 1795608443.0
    assert load.maildir_time("dovecot-uidlist", fallback=5.0) == 5.0


def test_scan_real_maildir():
    found = load.scan_maildir(fixture("maildir"), "fixture-md")
    assert sorted(item["seq"] for item in found) == [1, 2, 3]
    assert sum(1 for item in found if os.sep + "cur" + os.sep in item["file"]) == 1
    for item in found:
        assert item["delivered_unix"] == load.maildir_time(os.path.basename(item["file"]))
        assert 0 < item["delivered_unix"] - item["sent_unix"] < 5
    assert [item["seq"] for item in load.scan_maildir(fixture("maildir"), "other-run")] == [1]
    assert load.scan_maildir(fixture("maildir"), "no-such-run") == []


def test_scan_maildir_cache_reads_each_file_once(tmp_path):
    box = tmp_path / "Maildir"
    shutil.copytree(fixture("maildir"), str(box))
    cache = {}
    assert len(load.scan_maildir(str(box), "fixture-md", cache)) == 3
    assert len(cache) == 5  # the two untagged or foreign mails are remembered as None
    for name in os.listdir(str(box / "new")):  # a reader moves everything to cur/
        os.rename(str(box / "new" / name), str(box / "cur" / (name + ":2,S")))
    assert len(load.scan_maildir(str(box), "fixture-md", cache)) == 3


def test_scan_real_mbox():
    found = load.scan_mbox(fixture("mbox"), "fixture-mb")
    assert sorted(item["seq"] for item in found) == [1, 2, 3]
    assert all(item["delivered_unix"] is None and item["sent_unix"] > 1e9 for item in found)
    assert [item["seq"] for item in load.scan_mbox(fixture("mbox"), "other-run")] == [1]


def test_scan_mbox_ignores_a_message_still_being_written(tmp_path):
    text = read_fixture("mbox")
    cut = text.index("X-Xenlab-Seq: 3")
    partial = tmp_path / "john"
    partial.write_text(text[:cut + 20])
    assert sorted(item["seq"] for item in load.scan_mbox(str(partial), "fixture-mb")) == [1, 2]


def test_mailbox_format_and_errors(tmp_path):
    assert load.mailbox_format(fixture("maildir")) == "maildir"
    assert load.mailbox_format(fixture("mbox")) == "mbox"
    assert load.mailbox_format(str(tmp_path / "missing")) is None
    assert load.scan_mailbox(str(tmp_path / "missing"), "x") == []
    with pytest.raises(load.SmtpLoadError, match="mailbox_format must be"):
        load.mailbox_format(fixture("mbox"), "mh")
    with pytest.raises(load.SmtpLoadError, match="is not a Maildir: it has no new/"):
        load.scan_mailbox(str(tmp_path), "x")
    with pytest.raises(load.SmtpLoadError, match="cannot read the mbox"):
        load.scan_mailbox(str(tmp_path), "x", fmt="mbox")


def test_delivery_report():
    found = load.scan_maildir(fixture("maildir"), "fixture-md")
    report = load.delivery_report(found, expected=[1, 2, 4])
    assert (report["expected"], report["delivered"], report["found"]) == (3, 2, 3)
    assert report["missing_seqs"] == [4] and report["unexpected_seqs"] == [3] and report["duplicate_seqs"] == []
    assert report["delivery_delay_ms"]["count"] == 3 and report["delivery_delay_ms"]["min"] > 0
    twice = load.delivery_report(found + found[:1])
    assert twice["duplicate_seqs"] == [found[0]["seq"]] and twice["delivered"] == 3
    mbox = load.delivery_report(load.scan_mbox(fixture("mbox"), "fixture-mb"), expected=[1, 2, 3])
    assert mbox["missing_seqs"] == [] and mbox["delivery_delay_ms"]["count"] == 0


def test_wait_for_delivery_times_out():
    now = [0.0]
    naps = []

    def sleep(seconds):
        naps.append(seconds)
        now[0] += seconds

    report = load.wait_for_delivery(fixture("maildir"), "fixture-md", expected=[1, 2, 3, 4], timeout=2.0, poll=0.5,
                                    clock=lambda: now[0], sleep=sleep)
    assert report["missing_seqs"] == [4] and report["waited_s"] == 2.0 and naps == [0.5] * 4
    assert report["mailbox_format"] == "maildir" and report["mailbox_exists"] is True
    done = load.wait_for_delivery(fixture("maildir"), "fixture-md", expected=[1, 2, 3], timeout=2.0,
                                  clock=lambda: now[0], sleep=sleep)
    assert done["missing_seqs"] == [] and done["delivered"] == 3 and len(naps) == 4


def test_wait_for_delivery_sees_late_mail(tmp_path):
    box = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (box / sub).mkdir(parents=True)
    item = [item for item in load.scan_maildir(fixture("maildir"), "fixture-md") if "/new/" in item["file"]][0]
    late = os.path.basename(item["file"])
    threading.Timer(0.3, shutil.copy, args=(item["file"], str(box / "new" / late))).start()
    seq = item["seq"]
    report = load.wait_for_delivery(str(box), "fixture-md", expected=[seq], timeout=5.0, poll=0.1)
    assert report["delivered"] == 1 and 0.2 < report["waited_s"] < 3.0


# --- the file as the background sender ---------------------------------------------------------------

def run_script(tmp_path, cfg):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return subprocess.Popen([sys.executable, load.__file__, "send", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=str(tmp_path))


def test_worker_script_sends_and_logs(server, tmp_path):
    srv = server("accepted")
    proc = run_script(tmp_path, config(srv.port, count=2, rate=50.0, run_id="w-1"))
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    parsed = load.parse_log(out.decode())
    assert parsed["header"]["config"]["run_id"] == "w-1" and parsed["end"]["reason"] == "count reached"
    assert sorted(parsed["started"]) == [1, 2] and all(rec["ok"] for rec in parsed["records"])
    assert len(srv.bodies) == 2


def test_worker_script_stops_on_sigterm(server, tmp_path):
    srv = server("accepted")
    proc = run_script(tmp_path, config(srv.port, count=0, rate=20.0, max_duration=30, run_id="w-2"))
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    out, _err = proc.communicate(timeout=20)
    parsed = load.parse_log(out.decode())
    assert proc.returncode == 0 and parsed["end"]["reason"] == "stopped"
    assert parsed["end"]["attempted"] == len(parsed["records"]) >= 3


def test_worker_script_bad_config(tmp_path):
    proc = run_script(tmp_path, config(25, sender="nobody"))
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 2 and out == b"" and b"sender must be a mail address" in err
    usage = subprocess.run([sys.executable, load.__file__], capture_output=True, timeout=20, check=False)
    assert usage.returncode == 2 and b"usage: smtp_load.py send CONFIG.json" in usage.stderr
