# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SMTP load: send tagged mails at a rate, time every SMTP transaction, find them in a mailbox.

Stdlib only and free of sibling imports: the ``smtp_load`` module also writes this file into a
run directory and runs it as the background sender (``python3 smtp_load.py send CONFIG``), so
it must work as a script as well as a module.

What is measured, per message (one TCP connection per message; times from ``time.monotonic``,
in ms since the start of the run):

* ``t_sched_ms``: when the message was due (``(seq - 1) / rate``);
* ``t_send_ms``: when the TCP connect started; ``t_done_ms``: when the server's final reply
  arrived (the 250 after the end of DATA) or the attempt failed;
* ``response_ms = t_done_ms - t_send_ms``: connect, 220 greeting, EHLO, MAIL, RCPT, DATA and the
  message up to the 250 that accepts it (the user-visible "response time"; QUIT is not counted);
* ``connect_ms``: TCP connect up to the 220 greeting;
* ``transaction_ms``: MAIL FROM sent up to the 250 after the end of DATA (the SMTP transaction).

A failure is measured, not raised: the record keeps the stage it happened at (``connect``,
``ehlo``, ``mail``, ``rcpt``, ``data``), the server's reply code (``None`` when there was none,
e.g. a refused connection or a timeout) and the reply text or error message.

Every message carries ``Message-ID: <RUN.SEQ.smtp-load@DOMAIN>`` and the headers
``X-Xenlab-Run`` (the run id), ``X-Xenlab-Seq`` (1, 2, ...) and ``X-Xenlab-Sent`` (Unix time of
the attempt on the sender's clock), which :func:`scan_mailbox` looks for in a Maildir or an mbox.
"""

from __future__ import annotations

import email.utils
import json
import math
import os
import re
import secrets
import signal
import smtplib
import socket
import sys
import threading
import time

LOG_VERSION = 1
HEADER_RUN = "X-Xenlab-Run"
HEADER_SEQ = "X-Xenlab-Seq"
HEADER_SENT = "X-Xenlab-Sent"
MAX_FAILURES_LISTED = 100
STAGES = ("connect", "ehlo", "mail", "rcpt", "data")
_RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ADDRESS_RE = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")
# Postfix names Maildir files SECONDS.VdevIinodeMmicroseconds.HOST (Maildir++ adds ":2,FLAGS").
_MAILDIR_USEC_RE = re.compile(r"M(\d{1,6})(?![0-9])")


class SmtpLoadError(ValueError):
    """Invalid settings or an unusable mailbox or log, with a message saying which."""


# --- settings ------------------------------------------------------------------------------------

def new_run_id():
    """A run id such as 20240501T120000Z-3fa2c1 (UTC time and 6 random hex digits)."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


def check_run_id(run_id):
    if not isinstance(run_id, str) or not _RUN_ID_RE.match(run_id):
        raise SmtpLoadError("run_id %r is invalid: use letters, digits, '.', '_' and '-', starting with a letter "
                            "or digit, at most 64 characters" % (run_id,))
    return run_id


def _number(cfg, key, kind, low=None, high=None, low_open=False):
    value = cfg.get(key)
    if isinstance(value, bool) or not isinstance(value, kind) or (isinstance(value, float) and not math.isfinite(value)):
        raise SmtpLoadError("%s must be a%s number, got %r" % (key, "n integer" if kind is int else "", value))
    if low is not None and (value <= low if low_open else value < low):
        raise SmtpLoadError("%s must be %s %g, got %g" % (key, "greater than" if low_open else "at least", low, value))
    if high is not None and value > high:
        raise SmtpLoadError("%s must be at most %g, got %g" % (key, high, value))
    return value


def validate_config(cfg):
    """Check a sender configuration (a dict); returns it with ``rate``/``timeout`` as floats.

    Keys: host, port, count (0: until stopped), rate (mails/s, 0: as fast as the connections
    allow), concurrency, sender, recipient, helo, message_size (bytes of body), timeout (s per
    connect or SMTP command), run_id, max_duration (s, 0: none).
    """
    if not isinstance(cfg, dict):
        raise SmtpLoadError("the sender configuration must be a dict, got %s" % type(cfg).__name__)
    out = dict(cfg)
    if not isinstance(out.get("host"), str) or not out["host"]:
        raise SmtpLoadError("host must be a host name or address, got %r" % (out.get("host"),))
    _number(out, "port", int, 1, 65535)
    _number(out, "count", int, 0)
    out["rate"] = float(_number(out, "rate", (int, float), 0))
    _number(out, "concurrency", int, 1, 1000)
    _number(out, "message_size", int, 0, 50 * 1024 * 1024)
    out["timeout"] = float(_number(out, "timeout", (int, float), 0, 3600, low_open=True))
    _number(out, "max_duration", (int, float), 0)
    if out["count"] == 0 and not out["max_duration"]:
        raise SmtpLoadError("count=0 (send until stopped) needs a max_duration so that a forgotten sender stops")
    for key in ("sender", "recipient"):
        if not isinstance(out.get(key), str) or not _ADDRESS_RE.match(out[key]):
            raise SmtpLoadError("%s must be a mail address like jane@xen.com, got %r" % (key, out.get(key)))
    if not isinstance(out.get("helo"), str) or not re.match(r"^[A-Za-z0-9.\[\]:_-]+$", out["helo"]):
        raise SmtpLoadError("helo must be a host name, got %r" % (out.get("helo"),))
    check_run_id(out.get("run_id"))
    return out


# --- one message ---------------------------------------------------------------------------------

def build_message(run_id, seq, sender, recipient, size, sent_unix):
    """The message for sequence number ``seq`` as bytes with CRLF line ends.

    The body is ``size`` bytes (at least the line naming the message) of 76-character lines.
    """
    domain = sender.rsplit("@", 1)[1]
    headers = [
        "From: %s" % sender,
        "To: %s" % recipient,
        "Subject: xenlab smtp_load %s #%d" % (run_id, seq),
        "Date: %s" % email.utils.formatdate(sent_unix, localtime=False),
        "Message-ID: <%s.%d.smtp-load@%s>" % (run_id, seq, domain),
        "%s: %s" % (HEADER_RUN, run_id),
        "%s: %d" % (HEADER_SEQ, seq),
        "%s: %.6f" % (HEADER_SENT, sent_unix),
    ]
    first = "xenlab smtp_load run %s message %d" % (run_id, seq)
    lines = [first]
    remaining = size - len(first) - 2
    while remaining > 0:
        width = min(76, remaining - 2) if remaining > 2 else 0
        lines.append("x" * max(width, 0))
        remaining -= max(width, 0) + 2
    return ("\r\n".join(headers) + "\r\n\r\n" + "\r\n".join(lines) + "\r\n").encode("ascii")


def _reply_text(msg):
    if isinstance(msg, bytes):
        msg = msg.decode("utf-8", "replace")
    return " ".join(str(msg).split())


def _error_text(exc):
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        # smtplib reports a timeout or reset while reading a reply as a disconnection
        if "timed out" in str(exc):
            return "timed out"
        return "connection closed by the server%s" % (": %s" % exc if str(exc) else "")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def send_one(cfg, seq, t0, clock=time.monotonic, wall=time.time, smtp_class=smtplib.SMTP):
    """Send message ``seq`` in its own SMTP session; returns its record (never raises for SMTP or
    network trouble). Times are ms since ``t0`` (a ``clock()`` value)."""

    def ms(moment):
        return round((moment - t0) * 1000.0, 3)

    start = clock()
    sent_unix = wall()
    rec = {"seq": seq, "t_send_ms": ms(start), "sent_unix": round(sent_unix, 6), "ok": False, "code": None,
           "stage": "connect", "message": "", "connect_ms": None, "transaction_ms": None}
    smtp = smtp_class(local_hostname=cfg["helo"], timeout=cfg["timeout"])
    connected = False
    try:
        code, msg = smtp.connect(cfg["host"], cfg["port"])
        connected = True
        rec["connect_ms"] = round((clock() - start) * 1000.0, 3)
        if code != 220:
            rec.update(code=code, message=_reply_text(msg))
            return rec
        rec["stage"] = "ehlo"
        code, msg = smtp.ehlo()
        if code != 250:
            code, msg = smtp.helo()
            if code != 250:
                rec.update(code=code, message=_reply_text(msg))
                return rec
        rec["stage"] = "mail"
        t_mail = clock()
        code, msg = smtp.mail(cfg["sender"])
        if code != 250:
            rec.update(code=code, message=_reply_text(msg))
            return rec
        rec["stage"] = "rcpt"
        code, msg = smtp.rcpt(cfg["recipient"])
        if code not in (250, 251):
            rec.update(code=code, message=_reply_text(msg))
            return rec
        rec["stage"] = "data"
        body = build_message(cfg["run_id"], seq, cfg["sender"], cfg["recipient"], cfg["message_size"], sent_unix)
        code, msg = smtp.data(body)
        done = clock()
        rec.update(code=code, message=_reply_text(msg))
        if code == 250:
            rec.update(ok=True, stage="done", transaction_ms=round((done - t_mail) * 1000.0, 3))
        return rec
    except smtplib.SMTPResponseException as exc:  # SMTPDataError: DATA not answered with 354
        rec.update(code=exc.smtp_code, message=_reply_text(exc.smtp_error))
        return rec
    except (smtplib.SMTPException, OSError, ValueError, UnicodeError) as exc:
        rec["message"] = _error_text(exc)
        return rec
    finally:
        rec["t_done_ms"] = ms(clock())
        rec["response_ms"] = round(rec["t_done_ms"] - rec["t_send_ms"], 3)
        if connected:
            try:  # a polite QUIT; its answer is not measured
                smtp.quit()
            except (smtplib.SMTPException, OSError, ValueError):
                pass
        try:
            smtp.close()
        except OSError:
            pass


# --- a run ---------------------------------------------------------------------------------------

def run_load(cfg, emit, stop=None, clock=time.monotonic, wall=time.time, smtp_class=smtplib.SMTP, on_start=None):
    """Send ``cfg['count']`` messages (0: until ``stop`` is set or ``max_duration`` passes).

    Message ``seq`` is due at ``(seq - 1) / rate`` s after the start (open loop); up to
    ``concurrency`` sessions run at once, and a message whose turn comes while all are busy starts
    late (its ``t_send_ms`` minus ``t_sched_ms`` says by how much). ``emit(record)`` is called under
    a lock for each finished message; ``on_start(seq, t_send_ms)`` (optional) when one starts.
    Returns ``{"started_unix", "finished_unix", "attempted", "stopped"}``.
    """
    cfg = validate_config(cfg)
    stop = stop if stop is not None else threading.Event()
    lock = threading.Lock()
    t0 = clock()
    started_unix = wall()
    deadline = t0 + cfg["max_duration"] if cfg["max_duration"] else None
    counters = {"next": 1, "attempted": 0}

    def take():
        with lock:
            seq = counters["next"]
            if cfg["count"] and seq > cfg["count"]:
                return None
            counters["next"] += 1
            return seq

    def worker():
        while not stop.is_set():
            seq = take()
            if seq is None:
                return
            due = t0 + (seq - 1) / cfg["rate"] if cfg["rate"] else clock()
            delay = due - clock()
            if delay > 0 and stop.wait(delay):
                return  # stopped while waiting: this one is not sent
            if deadline is not None and clock() >= deadline:
                stop.set()
                return
            with lock:
                counters["attempted"] += 1
                if on_start is not None:
                    on_start(seq, round((clock() - t0) * 1000.0, 3))
            rec = send_one(cfg, seq, t0, clock=clock, wall=wall, smtp_class=smtp_class)
            rec["t_sched_ms"] = round((due - t0) * 1000.0, 3)
            with lock:
                emit(rec)

    threads = [threading.Thread(target=worker, name="smtp-load-%d" % i) for i in range(cfg["concurrency"])]
    for thread in threads:
        thread.daemon = True
        thread.start()
    for thread in threads:
        while thread.is_alive():  # a timed join lets the main thread handle signals
            thread.join(0.2)
    return {"started_unix": started_unix, "finished_unix": wall(), "attempted": counters["attempted"],
            "stopped": stop.is_set()}


# --- figures -------------------------------------------------------------------------------------

def percentile(values, pct):
    """Linear interpolation between closest ranks (numpy's default, Excel's PERCENTILE.INC)."""
    data = sorted(values)
    if not data:
        raise ValueError("percentile of an empty sequence")
    if not 0 <= pct <= 100:
        raise ValueError("percentile must be between 0 and 100, got %r" % (pct,))
    pos = (len(data) - 1) * pct / 100.0
    low = int(math.floor(pos))
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (pos - low)


def describe(values):
    """min, mean, median, p95 and max (all None when there are no values), rounded to µs."""
    data = [float(v) for v in values]
    if not data:
        return {"count": 0, "min": None, "mean": None, "median": None, "p95": None, "max": None}

    def r(x):
        return round(x, 3)

    return {"count": len(data), "min": r(min(data)), "mean": r(math.fsum(data) / len(data)),
            "median": r(percentile(data, 50)), "p95": r(percentile(data, 95)), "max": r(max(data))}


def summarize(records, attempted=None):
    """Figures of a run from its message records (see the module docstring for the times)."""
    records = sorted(records, key=lambda rec: rec["seq"])
    ok = [rec for rec in records if rec["ok"]]
    failed = [rec for rec in records if not rec["ok"]]
    by_code, by_stage = {}, {}
    for rec in failed:
        code = "none" if rec["code"] is None else str(rec["code"])
        by_code[code] = by_code.get(code, 0) + 1
        by_stage[rec["stage"]] = by_stage.get(rec["stage"], 0) + 1
    sends = [rec["t_send_ms"] for rec in records]
    lags = [max(rec["t_send_ms"] - rec["t_sched_ms"], 0.0) for rec in records if rec.get("t_sched_ms") is not None]
    out = {
        "sent": len(records),
        "accepted": len(ok),
        "failed_mails": len(failed),
        "rejected": sum(1 for rec in failed if rec["code"] is not None),
        "errors": sum(1 for rec in failed if rec["code"] is None),
        "accepted_seqs": [rec["seq"] for rec in ok],
        "failed_seqs": [rec["seq"] for rec in failed],
        "failures": [{key: rec[key] for key in ("seq", "stage", "code", "message", "t_send_ms", "t_done_ms")}
                     for rec in failed[:MAX_FAILURES_LISTED]],
        "failures_by_code": by_code,
        "failures_by_stage": by_stage,
        "response_ms": describe(rec["response_ms"] for rec in ok),
        "transaction_ms": describe(rec["transaction_ms"] for rec in ok),
        "connect_ms": describe(rec["connect_ms"] for rec in ok),
        "failed_response_ms": describe(rec["response_ms"] for rec in failed),
        "schedule_lag_ms": {"mean": round(math.fsum(lags) / len(lags), 3) if lags else None,
                            "max": round(max(lags), 3) if lags else None},
        "send_rate_per_s": (round((len(sends) - 1) / ((max(sends) - min(sends)) / 1000.0), 3)
                            if len(sends) > 1 and max(sends) > min(sends) else None),
        "first_send_ms": min(sends) if sends else None,
        "last_done_ms": max(rec["t_done_ms"] for rec in records) if records else None,
        "timeline": [{"seq": rec["seq"], "t_send_ms": rec["t_send_ms"], "t_done_ms": rec["t_done_ms"],
                      "code": rec["code"], "ok": rec["ok"]} for rec in records],
    }
    if attempted is not None:
        out["unfinished"] = max(attempted - len(records), 0)
    return out


# --- the background sender's log ------------------------------------------------------------------

def parse_log(text):
    """Read the JSON-lines log of the background sender.

    Returns ``{"header", "records", "started", "end"}``: ``started`` maps the seq of every
    message whose session began to its ``t_send_ms``; ``end`` is None when the sender did not
    finish (killed). A line cut short by a kill at the very end is ignored.
    """
    header, end, records, started = None, None, [], {}
    lines = text.splitlines()
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            if lineno == len(lines) and not text.endswith("\n"):
                break  # the last line, cut short
            raise SmtpLoadError("sender log line %d is not JSON: %r" % (lineno, line[:120]))
        kind = item.get("ev") if isinstance(item, dict) else None
        if kind == "begin":
            header = item
        elif kind == "start":
            started[item["seq"]] = item["t_send_ms"]
        elif kind == "msg":
            rec = dict(item)
            del rec["ev"]
            records.append(rec)
        elif kind == "end":
            end = item
        else:
            raise SmtpLoadError("sender log line %d: unknown entry %r" % (lineno, line[:120]))
    if header is None:
        raise SmtpLoadError("the sender log has no 'begin' line: the sender did not start")
    if header.get("version") != LOG_VERSION:
        raise SmtpLoadError("sender log version %r, expected %d" % (header.get("version"), LOG_VERSION))
    return {"header": header, "records": records, "started": started, "end": end}


# --- mailboxes -----------------------------------------------------------------------------------

def _header_fields(lines):
    """Header name (lower case) -> list of values, from header lines (folded lines joined)."""
    fields, name = {}, None
    for raw in lines:
        line = raw.rstrip("\r\n")
        if line[:1] in (" ", "\t") and name is not None:
            fields[name][-1] += " " + line.strip()
            continue
        if ":" not in line:
            name = None
            continue
        key, value = line.split(":", 1)
        name = key.strip().lower()
        fields.setdefault(name, []).append(value.strip())
    return fields


def _tag(fields, run_id):
    """(seq, sent_unix) of a message of run ``run_id``, or None for any other message."""
    if run_id not in fields.get(HEADER_RUN.lower(), []):
        return None
    try:
        seq = int(fields.get(HEADER_SEQ.lower(), [""])[0])
    except ValueError:
        return None
    try:
        sent = float(fields.get(HEADER_SENT.lower(), [""])[0])
    except ValueError:
        sent = None
    return seq, sent


def _read_header_lines(path):
    lines = []
    with open(path, "rb") as handle:
        for raw in handle:
            line = raw.decode("utf-8", "replace")
            if not line.strip():
                return lines, True
            lines.append(line)
    return lines, False


def maildir_time(name, fallback=None):
    """Delivery time from a Postfix Maildir file name (SECONDS.V..I..MMICROS.HOST), else ``fallback``."""
    head, _sep, rest = name.partition(".")
    if not head.isdigit():
        return fallback
    match = _MAILDIR_USEC_RE.search(rest.split(".", 1)[0])
    return int(head) + (int(match.group(1)) / 1e6 if match else 0.0)


def scan_maildir(path, run_id, cache=None):
    """Messages of ``run_id`` in the Maildir ``path`` (its new/ and cur/): a list of dicts with
    ``seq``, ``sent_unix`` (header), ``delivered_unix`` (file name) and ``file``.

    ``cache`` (a dict kept between calls) avoids reading a file twice.
    """
    if cache is None:
        cache = {}
    for sub in ("new", "cur"):
        if not os.path.isdir(os.path.join(path, sub)):
            raise SmtpLoadError("%s is not a Maildir: it has no %s/ directory" % (path, sub))
    found = []
    for sub in ("new", "cur"):
        directory = os.path.join(path, sub)
        try:
            names = os.listdir(directory)
        except OSError as exc:
            raise SmtpLoadError("cannot read the Maildir %s: %s" % (directory, exc.strerror or exc))
        for name in names:
            key = name.split(":", 1)[0]  # the unique part, also after a move from new/ to cur/
            if key not in cache:
                file_path = os.path.join(directory, name)
                try:
                    lines, _complete = _read_header_lines(file_path)
                except FileNotFoundError:  # moved to cur/ meanwhile: seen on the next scan
                    continue
                except OSError as exc:
                    raise SmtpLoadError("cannot read %s: %s" % (file_path, exc.strerror or exc))
                tag = _tag(_header_fields(lines), run_id)
                cache[key] = None if tag is None else {
                    "seq": tag[0], "sent_unix": tag[1], "file": file_path,
                    "delivered_unix": maildir_time(name, fallback=_mtime(file_path))}
            if cache[key] is not None:
                found.append(cache[key])
    return found


def _mtime(path):
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


def scan_mbox(path, run_id):
    """Messages of ``run_id`` in the mbox file ``path``: dicts with ``seq``, ``sent_unix`` and
    ``delivered_unix`` (None: an mbox keeps no sub-second delivery time). A message whose header
    is still being written is left for the next scan."""
    found = []
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise SmtpLoadError("cannot read the mbox %s: %s" % (path, exc.strerror or exc))
    with handle:
        in_header, header, previous_blank = False, [], True
        for raw in handle:
            line = raw.decode("utf-8", "replace")
            if line.startswith("From ") and previous_blank:
                in_header, header = True, []
            elif in_header:
                if line.strip():
                    header.append(line)
                else:
                    in_header = False
                    tag = _tag(_header_fields(header), run_id)
                    if tag is not None:
                        found.append({"seq": tag[0], "sent_unix": tag[1], "delivered_unix": None, "file": path})
            previous_blank = not line.strip()
    return found


def mailbox_format(path, fmt="auto"):
    """``maildir`` or ``mbox`` for ``path`` (``auto``: a directory is a Maildir, a file an mbox);
    None when ``auto`` cannot tell because the path does not exist (yet)."""
    if fmt in ("maildir", "mbox"):
        return fmt
    if fmt != "auto":
        raise SmtpLoadError("mailbox_format must be auto, maildir or mbox, got %r" % (fmt,))
    if os.path.isdir(path):
        return "maildir"
    if os.path.exists(path):
        return "mbox"
    return None


def scan_mailbox(path, run_id, fmt="auto", cache=None):
    """Messages of ``run_id`` in a Maildir or mbox; an mbox that does not exist yet holds none."""
    kind = mailbox_format(path, fmt)
    if kind == "maildir":
        return scan_maildir(path, run_id, cache)
    if kind == "mbox" and os.path.exists(path):
        return scan_mbox(path, run_id)
    return []


def delivery_report(found, expected=None, accepted_at=None):
    """Compare the messages found with the expected seqs.

    ``accepted_at`` (optional) maps seq -> Unix time the sender got its 250, for the delay from
    acceptance to delivery. Returns delivered (expected seqs found), missing_seqs, unexpected_seqs
    (found but not expected: e.g. accepted by the server while the sender saw a failure),
    duplicate_seqs, and delivery_delay_ms (delivery time minus X-Xenlab-Sent; Maildir only).
    """
    seqs = {}
    for item in found:
        seqs.setdefault(item["seq"], []).append(item)
    delays = []
    for items in seqs.values():
        first = min(items, key=lambda item: item["delivered_unix"] or 0)
        if first["delivered_unix"] is not None and first["sent_unix"] is not None:
            delays.append((first["delivered_unix"] - first["sent_unix"]) * 1000.0)
    out = {
        "found": len(seqs),
        "duplicate_seqs": sorted(seq for seq, items in seqs.items() if len(items) > 1),
        "delivery_delay_ms": describe(delays),
    }
    if expected is None:
        out["delivered"] = len(seqs)
        out["missing_seqs"] = []
        out["unexpected_seqs"] = []
    else:
        wanted = set(expected)
        out["expected"] = len(wanted)
        out["delivered"] = len(wanted & set(seqs))
        out["missing_seqs"] = sorted(wanted - set(seqs))
        out["unexpected_seqs"] = sorted(set(seqs) - wanted)
    return out


def wait_for_delivery(path, run_id, expected=None, fmt="auto", timeout=60.0, poll=0.5,
                      clock=time.monotonic, sleep=time.sleep):
    """Scan the mailbox until every expected seq is there or ``timeout`` s have passed.

    Returns the :func:`delivery_report` plus ``waited_s``, ``mailbox_format`` and
    ``mailbox_exists``. Without ``expected`` the mailbox is scanned once.
    """
    start = clock()
    cache = {}
    while True:
        found = scan_mailbox(path, run_id, fmt, cache)
        report = delivery_report(found, expected)
        if expected is None or not report["missing_seqs"] or clock() - start >= timeout:
            break
        sleep(min(poll, max(timeout - (clock() - start), 0.0)))
    report["waited_s"] = round(clock() - start, 3)
    report["mailbox_format"] = mailbox_format(path, fmt)
    report["mailbox_exists"] = os.path.exists(path)
    return report


# --- the background sender -----------------------------------------------------------------------

def _write_line(out, item):
    out.write(json.dumps(item, sort_keys=True) + "\n")
    out.flush()


def worker_main(argv=None, out=None):
    """``smtp_load.py send CONFIG.json``: send as configured, one JSON line per event on stdout.

    Lines: ``begin`` (config and start time), ``start`` (a session began), ``msg`` (a message
    record), ``end`` (attempted count, why it stopped). SIGTERM or SIGINT stops it: no new message
    starts, the ones in flight finish.
    """
    argv = sys.argv[1:] if argv is None else argv
    out = sys.stdout if out is None else out
    if len(argv) != 2 or argv[0] != "send":
        sys.stderr.write("usage: smtp_load.py send CONFIG.json\n")
        return 2
    try:
        with open(argv[1], "r", encoding="utf-8") as handle:
            cfg = validate_config(json.load(handle))
    except (OSError, ValueError) as exc:
        sys.stderr.write("smtp_load sender: bad configuration %s: %s\n" % (argv[1], exc))
        return 2
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    _write_line(out, {"ev": "begin", "version": LOG_VERSION, "pid": os.getpid(), "started_unix": time.time(),
                      "config": cfg})

    def emit(rec):
        item = dict(rec)
        item["ev"] = "msg"
        _write_line(out, item)

    def on_start(seq, t_send_ms):
        _write_line(out, {"ev": "start", "seq": seq, "t_send_ms": t_send_ms})

    info = run_load(cfg, emit, stop=stop, on_start=on_start)
    reason = "stopped" if info["stopped"] else "count reached"
    if info["stopped"] and cfg["max_duration"] and info["finished_unix"] - info["started_unix"] >= cfg["max_duration"]:
        reason = "max_duration reached"
    _write_line(out, {"ev": "end", "attempted": info["attempted"], "finished_unix": info["finished_unix"],
                      "reason": reason})
    return 0


if __name__ == "__main__":
    raise SystemExit(worker_main())
