# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parsers for what the probing tools print (stdlib only).

* iputils ``ping`` (``-D`` timestamps, ``-O`` "no answer yet" lines, the statistics block);
* sipp ``-trace_stat`` CSV and ``-trace_rtt`` CSV, both read by header name, because the columns
  depend on sipp's version, the scenario and the options;
* the log of the UDP probe that the ``downtime_probe`` module ships.

Every parser raises its own :class:`ParseError` subclass (a ``ValueError``) naming the line and
what it expected. ``records_from_*`` turn parsed output into the ``(seq, send_time, recv_time)``
records that :mod:`downtime` analyses.
"""

from __future__ import annotations

import bisect
import math
import re


class ParseError(ValueError):
    """Malformed tool output; ``lineno`` is 1-based (0 when no single line is to blame)."""

    what = "input"

    def __init__(self, lineno, expected, got=None):
        self.lineno = lineno
        self.expected = expected
        self.got = got
        where = "%s line %d" % (self.what, lineno) if lineno else self.what
        message = "%s: expected %s" % (where, expected)
        if got is not None:
            shown = got if len(got) <= 120 else got[:117] + "..."
            message += ", got %r" % (shown,)
        super(ParseError, self).__init__(message)


class PingParseError(ParseError):
    what = "ping output"


class SippStatParseError(ParseError):
    what = "sipp -trace_stat CSV"


class SippRttParseError(ParseError):
    what = "sipp -trace_rtt CSV"


class UdpProbeLogParseError(ParseError):
    what = "udp probe log"


class UdpEchoLogParseError(ParseError):
    what = "udp echo log"


def _compile(pattern):
    # ASCII: \d must not match other scripts' digits, which int() would then happily accept.
    return re.compile(pattern, re.ASCII)


def _lines(text, error_cls, partial_ok=False):
    if not isinstance(text, str):
        raise error_cls(0, "text (str)", type(text).__name__)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    elif partial_ok and lines:
        # A file still being written may end inside a line: that line is not complete yet.
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _to_int(value, error_cls, lineno, expected, line):
    try:
        return int(value)
    except ValueError:  # e.g. more digits than int() accepts
        raise error_cls(lineno, expected, line) from None


def _to_float(value, error_cls, lineno, expected, line):
    try:
        number = float(value)
    except ValueError:
        raise error_cls(lineno, expected, line) from None
    if not math.isfinite(number):
        raise error_cls(lineno, expected, line)
    return number


# --- iputils ping -------------------------------------------------------------------------------

_TS = r"(?:\[(?P<ts>\d+\.\d+)\] )?"
_NUM = r"\d+(?:\.\d+)?"
_PING_HEADER = _compile(
    r"^PING (?P<host>\S+?) ?\((?P<addr>[^()\s]+)\)(?: from (?P<src>\S+) (?P<iface>\S+):)? "
    r"(?P<size>\d+)(?:\((?P<total>\d+)\) bytes of data\.| data bytes)$")
_PING_REPLY = _compile(
    "^" + _TS + r"(?P<bytes>\d+) bytes from (?P<src>\S+?)(?: \((?P<addr>[^()\s]+)\))?: "
    r"icmp_seq=(?P<seq>\d+)(?: ident=\d+)?(?: ttl=(?P<ttl>\d+))?(?: time=(?P<rtt>" + _NUM + r") ms)?"
    r"(?P<flags>(?: \((?:DUP!|BAD CHECKSUM!|truncated)\))*)$")
_PING_NO_ANSWER = _compile("^" + _TS + r"no answer yet for icmp_seq=(?P<seq>\d+)$")
_PING_ICMP_ERROR = _compile(
    "^" + _TS + r"From (?P<src>\S+?)(?: \((?P<addr>[^()\s]+)\))? icmp_seq=(?P<seq>\d+) (?P<msg>\S.*)$")
_PING_MESSAGE = _compile(r"^(?:ping: |Warning: )(?P<msg>\S.*)$")
_PING_STATS_HEAD = _compile(r"^--- (?P<host>\S+) ping statistics ---$")
_PING_STATS = _compile(
    r"^(?P<tx>\d+) packets transmitted, (?P<rx>\d+) received(?:, \+(?P<dup>\d+) duplicates)?"
    r"(?:, \+(?P<corrupted>\d+) corrupted)?(?:, \+(?P<errors>\d+) errors)?"
    r"(?:, (?P<loss>" + _NUM + r"(?:e[-+]\d+)?)% packet loss(?:, time (?P<time>\d+)ms)?)?$")
_PING_RTT = _compile(
    r"^(?:rtt min/avg/max/mdev = (?P<min>" + _NUM + ")/(?P<avg>" + _NUM + ")/(?P<max>" + _NUM + ")/(?P<mdev>" + _NUM + r") ms)?"
    r"(?:(?:, )?pipe (?P<pipe>\d+))?(?:(?:, )?ipg/ewma (?P<ipg>" + _NUM + ")/(?P<ewma>" + _NUM + r") ms)?$")
_PING_STATUS = _compile(r"^(?P<rx>\d+)/(?P<tx>\d+) packets, (?P<loss>\d+)% loss(?:, min/avg/ewma/max = [\d./]+ ms)?$")

_PING_EXPECTED = ("a reply ('[ts] 64 bytes from ADDR: icmp_seq=N ttl=T time=X ms'), "
                  "'no answer yet for icmp_seq=N', 'From ADDR icmp_seq=N ...', a 'ping:' message "
                  "or '--- HOST ping statistics ---'")


def parse_ping(text, partial_ok=False):
    """Parse the output of iputils ``ping`` (``-n``, optionally ``-D`` and ``-O``).

    Returns a dict: ``host``, ``address``, ``payload_bytes``, ``events`` in output order (each with
    ``type`` reply / no_answer / icmp_error, ``line``, ``seq`` as printed (16 bit, wraps),
    ``timestamp_s`` (``-D``, else None) and per type ``rtt_ms``, ``ttl``, ``duplicate``, ``from``,
    ``message``), ``messages`` (``ping:`` diagnostics) and ``statistics`` (None if ping was killed
    before printing it). ``partial_ok`` drops an unterminated last line (a log still being written).
    """
    lines = _lines(text, PingParseError, partial_ok)
    result = {"host": None, "address": None, "payload_bytes": None, "events": [], "messages": [], "statistics": None}
    section = "start"
    for lineno, line in enumerate(lines, 1):
        if section == "start":
            if line == "":
                continue
            if _PING_MESSAGE.match(line):
                # e.g. "ping: connect: Network is unreachable" before or instead of the header
                result["messages"].append({"line": lineno, "text": line})
                continue
            match = _PING_HEADER.match(line)
            if not match:
                raise PingParseError(lineno, "the header 'PING HOST (ADDR) 56(84) bytes of data.'", line)
            result["host"] = match.group("host")
            result["address"] = match.group("addr")
            result["payload_bytes"] = _to_int(match.group("size"), PingParseError, lineno, "a payload size", line)
            section = "probes"
            continue
        if section == "probes":
            if line == "":
                continue
            event = _ping_event(line, lineno)
            if event is not None:
                result["events"].append(event)
                continue
            if _PING_MESSAGE.match(line):
                result["messages"].append({"line": lineno, "text": line})
                continue
            if _PING_STATUS.match(line):
                continue  # SIGQUIT's running summary; the final statistics say it all
            match = _PING_STATS_HEAD.match(line)
            if match:
                section = "stats"
                continue
            raise PingParseError(lineno, _PING_EXPECTED, line)
        if section == "stats":
            match = _PING_STATS.match(line)
            if not match:
                raise PingParseError(lineno, "'N packets transmitted, M received, P% packet loss, time Tms'", line)
            stats = dict(
                (key, None if match.group(group) is None else _to_int(match.group(group), PingParseError, lineno, "a count", line))
                for key, group in (("transmitted", "tx"), ("received", "rx"), ("duplicates", "dup"),
                                   ("corrupted", "corrupted"), ("errors", "errors"), ("time_ms", "time")))
            for key in ("duplicates", "corrupted", "errors"):
                stats[key] = stats[key] or 0
            # ping prints no loss when it sent nothing
            stats["loss_pct"] = None if match.group("loss") is None else _to_float(
                match.group("loss"), PingParseError, lineno, "a loss percentage", line)
            stats.update({"rtt_min_ms": None, "rtt_avg_ms": None, "rtt_max_ms": None, "rtt_mdev_ms": None,
                          "pipe": None, "ipg_ms": None, "ewma_ms": None})
            result["statistics"] = stats
            section = "rtt"
            continue
        if line == "":
            section = "done"
            continue
        if section == "done":
            raise PingParseError(lineno, "nothing after the statistics block", line)
        # section == "rtt": at most one rtt / pipe / ipg line
        match = _PING_RTT.match(line)
        if not match:
            raise PingParseError(lineno, "'rtt min/avg/max/mdev = A/B/C/D ms' (optionally with pipe and ipg/ewma)", line)
        stats = result["statistics"]
        for key, group in (("rtt_min_ms", "min"), ("rtt_avg_ms", "avg"), ("rtt_max_ms", "max"), ("rtt_mdev_ms", "mdev"),
                           ("ipg_ms", "ipg"), ("ewma_ms", "ewma")):
            if match.group(group) is not None:
                stats[key] = _to_float(match.group(group), PingParseError, lineno, "a number", line)
        if match.group("pipe") is not None:
            stats["pipe"] = _to_int(match.group("pipe"), PingParseError, lineno, "a pipe size", line)
        section = "done"
        continue
    if section == "start":
        raise PingParseError(len(lines) + 1 if lines else 0, "the header 'PING HOST (ADDR) ...' (no ping output)")
    if section == "stats":
        raise PingParseError(len(lines), "a statistics line after '--- HOST ping statistics ---'")
    return result


def _ping_event(line, lineno):
    match = _PING_REPLY.match(line)
    if match:
        ts = match.group("ts")
        return {
            "type": "reply",
            "line": lineno,
            "seq": _to_int(match.group("seq"), PingParseError, lineno, "an icmp_seq", line),
            "timestamp_s": None if ts is None else _to_float(ts, PingParseError, lineno, "a timestamp", line),
            "bytes": _to_int(match.group("bytes"), PingParseError, lineno, "a byte count", line),
            "from": match.group("addr") or match.group("src"),
            "ttl": None if match.group("ttl") is None else _to_int(match.group("ttl"), PingParseError, lineno, "a ttl", line),
            "rtt_ms": None if match.group("rtt") is None else _to_float(match.group("rtt"), PingParseError, lineno, "an rtt", line),
            "duplicate": "(DUP!)" in match.group("flags"),
        }
    for kind, regex in (("no_answer", _PING_NO_ANSWER), ("icmp_error", _PING_ICMP_ERROR)):
        match = regex.match(line)
        if match:
            ts = match.group("ts")
            event = {
                "type": kind,
                "line": lineno,
                "seq": _to_int(match.group("seq"), PingParseError, lineno, "an icmp_seq", line),
                "timestamp_s": None if ts is None else _to_float(ts, PingParseError, lineno, "a timestamp", line),
            }
            if kind == "icmp_error":
                event["from"] = match.group("addr") or match.group("src")
                event["message"] = match.group("msg")
            return event
    return None


def _unwrap(raw, reference, modulus=65536):
    # icmp_seq is 16 bits: at 10 ms it wraps after ~11 minutes. Pick the candidate nearest the
    # highest sequence number seen so far (late lines refer to slightly older probes).
    if reference is None:
        return raw
    base = reference - reference % modulus
    candidates = [base + raw - modulus, base + raw, base + raw + modulus]
    return min((c for c in candidates if c >= 0), key=lambda c: abs(c - reference))


def records_from_ping(parsed):
    """``(seq, send_time, recv_time)`` records from :func:`parse_ping` output (needs ``-D``).

    Every probe that appears in the output is a record: answered by its first reply (duplicates
    are dropped), or lost if it only appears in "no answer yet" (``-O``) or "From ... icmp_seq=N"
    lines. Send times: ``-O`` prints "no answer yet for N" just before it sends N+1, so that stamp
    is the send time of N+1; otherwise a reply's stamp minus its rtt; otherwise interpolated by
    seq between the nearest known sends. Sequence numbers are unwrapped past 65535. Raises
    :class:`PingParseError` if an event has no ``-D`` timestamp.
    """
    probes = {}  # unwrapped seq -> {"recv": float or None, "rtt_send": float or None, "stamp": first stamp}
    next_send = {}  # unwrapped seq -> send time seen as the stamp of "no answer yet for seq-1"
    highest = None
    for event in parsed.get("events", []):
        if event["timestamp_s"] is None:
            raise PingParseError(event["line"], "a -D timestamp '[UNIXTIME]' before the line (run ping with -D to time probes)")
        seq = _unwrap(event["seq"], highest)
        highest = seq if highest is None else max(highest, seq)
        stamp = event["timestamp_s"]
        probe = probes.setdefault(seq, {"recv": None, "rtt_send": None, "stamp": stamp})
        if event["type"] == "reply":
            if probe["recv"] is None:  # later ones are duplicates
                probe["recv"] = stamp
                if event["rtt_ms"] is not None:
                    probe["rtt_send"] = stamp - event["rtt_ms"] / 1000.0
        elif event["type"] == "no_answer":
            next_send.setdefault(seq + 1, stamp)
    known = {}
    for seq, probe in probes.items():
        if seq in next_send:
            known[seq] = next_send[seq]
        elif probe["rtt_send"] is not None:
            known[seq] = probe["rtt_send"]
    if not known:
        # Nothing tells a send time (no -O, no rtt): the first line about a probe is the best guess.
        known = dict((seq, probe["stamp"]) for seq, probe in probes.items())
    anchors = sorted(known.items())
    records = []
    for seq in sorted(probes):
        send = known.get(seq)
        if send is None:
            send = _interpolate(anchors, seq)
        recv = probes[seq]["recv"]
        if recv is not None and recv < send:
            send = recv
        records.append((seq, send, recv))
    return records


def _interpolate(anchors, seq):
    """Send time of ``seq`` from (seq, send) anchors sorted by seq: linear between neighbours."""
    index = bisect.bisect_left(anchors, (seq,))
    before = anchors[index - 1] if index > 0 else None
    after = anchors[index] if index < len(anchors) else None
    if before is not None and after is not None:
        (s0, t0), (s1, t1) = before, after
        return t0 + (t1 - t0) * (seq - s0) / (s1 - s0)
    # Outside the anchors: extrapolate with the step of the two nearest ones, if there are two.
    pair = anchors[-2:] if after is None else anchors[:2]
    ref = before if after is None else after
    if len(pair) == 2 and pair[1][0] != pair[0][0]:
        step = (pair[1][1] - pair[0][1]) / (pair[1][0] - pair[0][0])
        return ref[1] + step * (seq - ref[0])
    return ref[1]


# --- sipp CSV files -----------------------------------------------------------------------------

_SIPP_TIME = _compile(r"^(\d{4}-\d{2}-\d{2})\t(\d{2}:\d{2}:\d{2}(?:\.\d+)?)\t(\d+\.\d+)$")
_SIPP_DURATION = _compile(r"^(\d+):(\d{2}):(\d{2})(?::(\d{6}))?$")
_INT = _compile(r"^-?\d+$")
_FLOAT = _compile(r"^-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?$")
SIPP_TIME_COLUMNS = ("StartTime", "LastResetTime", "CurrentTime")


def _semicolon_table(text, error_cls, required, convert):
    lines = _lines(text, error_cls)
    rows = []
    header = None
    header_line = 0
    for lineno, line in enumerate(lines, 1):
        if line.strip() == "":
            continue
        fields = line.split(";")
        if header is None:
            header = fields
            header_line = lineno
            names = [name for name in header if name != ""]
            dupes = sorted(set(name for name in names if names.count(name) > 1))
            missing = [name for name in required if name not in header]
            if missing or dupes or (header[-1] != "" and "" in header) or (header[-1] == "" and "" in header[:-1]):
                raise error_cls(lineno, "a header line naming the columns (with %s, each once)" % ", ".join(required), line)
            continue
        if len(fields) != len(header):
            raise error_cls(lineno, "%d ';'-separated fields as in the header on line %d, found %d"
                            % (len(header), header_line, len(fields)), line)
        row = {}
        for name, value in zip(header, fields):
            if name == "":
                if value != "":
                    raise error_cls(lineno, "an empty last field after the final ';'", line)
                continue
            row[name] = convert(name, value, lineno, line)
        rows.append(row)
    if header is None:
        raise error_cls(0, "a header line naming the columns (the file is empty)")
    return {"columns": [name for name in header if name != ""], "rows": rows}


def _sipp_stat_value(name, value, lineno, line):
    if name in SIPP_TIME_COLUMNS:
        match = _SIPP_TIME.match(value)
        if not match:
            raise SippStatParseError(lineno, "%s as 'YYYY-MM-DD<TAB>HH:MM:SS.ffffff<TAB>EPOCH.ffffff'" % name, line)
        return _to_float(match.group(3), SippStatParseError, lineno, "an epoch time in " + name, line)
    if value == "":
        return None
    match = _SIPP_DURATION.match(value)
    if match:
        hours, minutes, seconds, micro = match.groups()
        return (_to_int(hours, SippStatParseError, lineno, "hours in " + name, line) * 3600 + int(minutes) * 60
                + int(seconds) + (int(micro) / 1e6 if micro else 0.0))
    if _INT.match(value):
        return _to_int(value, SippStatParseError, lineno, "an integer in " + name, line)
    if _FLOAT.match(value):
        return _to_float(value, SippStatParseError, lineno, "a number in " + name, line)
    raise SippStatParseError(lineno, "a number, a duration HH:MM:SS[:uuuuuu] or nothing in column %s" % name, line)


def parse_sipp_stat(text):
    """Parse sipp's ``-trace_stat`` CSV (``-stf FILE``), column by column name.

    Returns ``{"columns": [...], "rows": [{name: value}]}``. StartTime, LastResetTime and
    CurrentTime (``date<TAB>time<TAB>epoch``) become Unix seconds; durations (``HH:MM:SS`` such as
    ElapsedTime(C), ``HH:MM:SS:uuuuuu`` such as ResponseTime1(C), CallLength(C)) become seconds;
    counts become ints, rates floats, empty cells None. (P) columns are per period, (C) cumulative.
    """
    return _semicolon_table(text, SippStatParseError, ("StartTime", "CurrentTime"), _sipp_stat_value)


def _sipp_rtt_value(name, value, lineno, line):
    if name == "rtd_no":
        if not _INT.match(value):
            raise SippRttParseError(lineno, "an integer timer number in column rtd_no", line)
        return _to_int(value, SippRttParseError, lineno, "an integer timer number in column rtd_no", line)
    if not _FLOAT.match(value):
        raise SippRttParseError(lineno, "a number in column %s" % name, line)
    return _to_float(value, SippRttParseError, lineno, "a number in column %s" % name, line)


def parse_sipp_rtt(text):
    """Parse sipp's ``-trace_rtt`` CSV (``Date_ms;response_time_ms;rtd_no``) by column name.

    Date_ms is milliseconds since sipp started, response_time_ms the response time of timer
    ``rtd_no`` (the scenario's ``start_rtd``/``rtd`` pair) for one call.
    """
    return _semicolon_table(text, SippRttParseError, ("Date_ms", "response_time_ms"), _sipp_rtt_value)


def sipp_column(parsed, name):
    """Values of one column of a parsed sipp CSV, with a clear error naming the known columns."""
    if name not in parsed["columns"]:
        raise ValueError("sipp CSV has no column %r; it has: %s" % (name, ", ".join(parsed["columns"])))
    return [row[name] for row in parsed["rows"]]


# --- the downtime_probe module's UDP probe log ---------------------------------------------------

UDP_LOG_MAGIC = "# xenlab-udp-probe 1"
_UDP_HEADER = _compile(r"^# xenlab-udp-probe 1(?P<params>(?: [A-Za-z_]+=\S*)*)$")
_UDP_TX = _compile(r"^tx (?P<seq>\d+) (?P<t>\d+\.\d+)$")
_UDP_RX = _compile(r"^rx (?P<seq>\d+) (?P<t>\d+\.\d+)$")
_UDP_END = _compile(r"^end (?P<t>\d+\.\d+) sent=(?P<sent>\d+) answered=(?P<answered>\d+)$")
_UDP_ERR = _compile(r"^err (?P<t>\d+\.\d+) (?P<msg>\S.*)$")


def _params(text):
    # " key=value key=value" as the header regexes matched it; split on the spaces only
    # (str.split() would also split on characters such as \x1f inside a value).
    return dict(item.split("=", 1) for item in text.split(" ") if item)


def parse_udp_probe_log(text, partial_ok=False):
    """Parse the log of the module's UDP probe.

    Format: the header ``# xenlab-udp-probe 1 key=value ...``, then ``tx SEQ TIME`` per probe sent,
    ``rx SEQ TIME`` per answer, ``err TIME MESSAGE`` per send error and a final
    ``end TIME sent=N answered=M``. Returns ``params``, ``tx`` {seq: time}, ``rx`` {seq: first
    answer time}, ``duplicates``, ``errors`` and ``end`` (None if the probe did not finish cleanly).
    """
    lines = _lines(text, UdpProbeLogParseError, partial_ok)
    result = {"params": None, "tx": {}, "rx": {}, "duplicates": 0, "errors": [], "end": None}
    for lineno, line in enumerate(lines, 1):
        if result["params"] is None:
            match = _UDP_HEADER.match(line)
            if not match:
                raise UdpProbeLogParseError(lineno, "the header %r" % UDP_LOG_MAGIC, line)
            result["params"] = _params(match.group("params"))
            continue
        if result["end"] is not None:
            raise UdpProbeLogParseError(lineno, "nothing after the 'end' line", line)
        match = _UDP_TX.match(line) or _UDP_RX.match(line)
        if match:
            seq = _to_int(match.group("seq"), UdpProbeLogParseError, lineno, "a sequence number", line)
            stamp = _to_float(match.group("t"), UdpProbeLogParseError, lineno, "a time", line)
            if line.startswith("tx"):
                if seq in result["tx"]:
                    raise UdpProbeLogParseError(lineno, "a new sequence number (seq %d was sent before)" % seq, line)
                result["tx"][seq] = stamp
            elif seq not in result["tx"]:
                raise UdpProbeLogParseError(lineno, "an answer to a probe that was sent (no 'tx %d')" % seq, line)
            elif seq in result["rx"]:
                result["duplicates"] += 1
            else:
                result["rx"][seq] = stamp
            continue
        match = _UDP_ERR.match(line)
        if match:
            result["errors"].append({"line": lineno, "time_s": _to_float(match.group("t"), UdpProbeLogParseError, lineno, "a time", line),
                                     "message": match.group("msg")})
            continue
        match = _UDP_END.match(line)
        if match:
            result["end"] = {
                "time_s": _to_float(match.group("t"), UdpProbeLogParseError, lineno, "a time", line),
                "sent": _to_int(match.group("sent"), UdpProbeLogParseError, lineno, "a count", line),
                "answered": _to_int(match.group("answered"), UdpProbeLogParseError, lineno, "a count", line),
            }
            continue
        raise UdpProbeLogParseError(lineno, "'tx SEQ TIME', 'rx SEQ TIME', 'err TIME MESSAGE' or 'end TIME sent=N answered=M'", line)
    if result["params"] is None:
        raise UdpProbeLogParseError(0, "the header %r (the log is empty)" % UDP_LOG_MAGIC)
    return result


def records_from_udp_log(parsed):
    """``(seq, send_time, recv_time)`` records from :func:`parse_udp_probe_log` output."""
    records = []
    for seq in sorted(parsed["tx"]):
        sent = parsed["tx"][seq]
        received = parsed["rx"].get(seq)
        if received is not None and received < sent:
            received = sent  # the answer was stamped by the same clock; never before the send
        records.append((seq, sent, received))
    return records


_ECHO_HEADER = _compile(r"^# xenlab-udp-echo 1(?P<params>(?: [A-Za-z_]+=\S*)*)$")
_ECHO_END = _compile(r"^end (?P<t>\d+\.\d+) echoed=(?P<echoed>\d+)$")


def parse_udp_echo_log(text, partial_ok=False):
    """Parse the log of the module's UDP echo responder: header, ``err`` lines, ``end TIME echoed=N``.

    ``echoed`` is None when the responder was killed before its ``end`` line.
    """
    lines = _lines(text, UdpEchoLogParseError, partial_ok)
    result = {"params": None, "errors": [], "echoed": None, "end_s": None}
    for lineno, line in enumerate(lines, 1):
        if result["params"] is None:
            match = _ECHO_HEADER.match(line)
            if not match:
                raise UdpEchoLogParseError(lineno, "the header '# xenlab-udp-echo 1 ...'", line)
            result["params"] = _params(match.group("params"))
            continue
        if result["end_s"] is not None:
            raise UdpEchoLogParseError(lineno, "nothing after the 'end' line", line)
        match = _UDP_ERR.match(line)
        if match:
            result["errors"].append({"line": lineno, "message": match.group("msg"),
                                     "time_s": _to_float(match.group("t"), UdpEchoLogParseError, lineno, "a time", line)})
            continue
        match = _ECHO_END.match(line)
        if not match:
            raise UdpEchoLogParseError(lineno, "'err TIME MESSAGE' or 'end TIME echoed=N'", line)
        result["end_s"] = _to_float(match.group("t"), UdpEchoLogParseError, lineno, "a time", line)
        result["echoed"] = _to_int(match.group("echoed"), UdpEchoLogParseError, lineno, "a count", line)
    if result["params"] is None:
        raise UdpEchoLogParseError(0, "the header '# xenlab-udp-echo 1 ...' (the log is empty)")
    return result
