# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parsers for per-iteration pre-copy logs (stdlib only).

Two sources, both found in the stderr of ``xl migrate`` on the sending dom0:

* the patched libxenguest of ``roles/xen_build`` (docs/xen_build.md) logs one line per
  ``precopy_policy`` call, through libxc's logger (``xc: info: xenlab-precopy: ...``) or into
  a file (``xenlab-precopy: ...``)::

      xenlab-precopy: event=start v=1 domid=3 pid=812 policy=sd source=env max_iterations=29 ...
      xenlab-precopy: event=call domid=3 elapsed_ms=0.004 phase=before iteration=0
          dirty_count=65536 total_written=0 sd=- decision=continue reason=-
      xenlab-precopy: event=final domid=3 elapsed_ms=9012.5 iteration=5 dirty_count=412
          suspend_ms=8890.1 paused_ms=8950.7
      xenlab-precopy: event=error domid=3 message=policy (env) must be one of ...
      xenlab-precopy: event=warning domid=3 message=cannot open log file ...

  (one line each). :func:`parse_precopy_log` groups them into migrations whose ``records``
  are valid ``stop_policy.replay`` traces.
* libxc's progress lines, which stock ``xl`` shows when the ``libxenlab-xlprogress.so`` shim
  is preloaded (or with ``-v``: ``detail`` lines)::

      xc: progress: Frames iteration 2: 1024/3311   30%

  :func:`parse_xc_progress` returns one record per pass.

Malformed input raises :class:`PrecopyLogError` (a ``ValueError``) naming the 1-based line.
Lines that belong to neither format are ignored, so the whole stderr of ``xl`` can be given.
"""

from __future__ import annotations

import re

MARKER = "xenlab-precopy:"
LOG_VERSION = "1"
POLICY_NAMES = ("xen417", "xen34", "sd", "adaptive")
SOURCES = ("default", "env", "file")
DECISIONS = {"continue": 0, "stop": 1, "abort": -1}
REASONS = ("dirty_count", "iterations", "total_written", "sd_band", "no_shrink", "no_progress", "stock",
           "bad_guest_size")
PARAMS = ("max_iterations", "target_dirty_count", "max_factor", "track_from", "sd_low", "sd_high", "window",
          "shrink_div", "noise_div", "early")
# libxenguest's send_memory_live labels a pass "Frames iteration <precopy_stats.iteration>".
PASS_LABEL = "Frames iteration"
SUSPENDED_LABEL = "Domain now suspended"

_TOKEN = re.compile(r"([a-z_]+)=(\S*)")
_INT = re.compile(r"-?[0-9]+\Z")
_FLOAT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?\Z")
# xtl_logger_stdio.c: "<context>: <level>: <doing>: <done>/<total>  <pct>%" (level absent with -t).
_PROGRESS = re.compile(r"(?:^|\s)xc: (?:(progress|detail): )?(.*?): ([0-9]+)/([0-9]+) +([0-9]+)%\s*\Z")
_FRAMES = re.compile(r"Frames iteration ([0-9]+)\Z")


class PrecopyLogError(ValueError):
    """Malformed pre-copy log; ``lineno`` is 1-based (0 when no single line is to blame)."""

    def __init__(self, lineno, message, line=None):
        self.lineno = lineno
        self.reason = message
        self.line = line
        text = ("line %d: %s" % (lineno, message)) if lineno else message
        if line is not None:
            shown = line if len(line) <= 160 else line[:157] + "..."
            text += " (line: %r)" % (shown,)
        super().__init__(text)


def _text_lines(text):
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not isinstance(text, str):
        raise PrecopyLogError(0, "expected the log as a string, got %s" % type(text).__name__)
    return text.split("\n")


def _fields(lineno, line, rest):
    """key=value tokens of the text after the marker; message= takes the rest of the line."""
    fields = {}
    pos = 0
    rest = rest.rstrip()
    while pos < len(rest):
        while pos < len(rest) and rest[pos] in " \t":
            pos += 1
        if pos >= len(rest):
            break
        if rest.startswith("message=", pos):
            fields["message"] = rest[pos + len("message="):]
            break
        match = _TOKEN.match(rest, pos)
        if not match or (match.end() < len(rest) and rest[match.end()] not in " \t"):
            raise PrecopyLogError(lineno, "expected key=value tokens after %r" % MARKER, line)
        if match.group(1) in fields:
            raise PrecopyLogError(lineno, "key %s appears twice" % match.group(1), line)
        fields[match.group(1)] = match.group(2)
        pos = match.end()
    return fields


def _get(fields, key, lineno, line, kind, minimum=None):
    if key not in fields:
        raise PrecopyLogError(lineno, "%s line without %s=" % (fields.get("event", "?"), key), line)
    value = fields[key]
    if kind == "int":
        if not _INT.match(value):
            raise PrecopyLogError(lineno, "%s must be an integer, got %r" % (key, value), line)
        number = int(value)
    elif kind == "float":
        if not _FLOAT.match(value):
            raise PrecopyLogError(lineno, "%s must be a number of milliseconds, got %r" % (key, value), line)
        number = float(value)
    else:
        return value
    if minimum is not None and number < minimum:
        raise PrecopyLogError(lineno, "%s must be at least %s, got %s" % (key, minimum, value), line)
    return number


def _choice(fields, key, lineno, line, choices):
    value = _get(fields, key, lineno, line, "str")
    if value not in choices:
        raise PrecopyLogError(lineno, "%s must be one of %s, got %r" % (key, ", ".join(choices), value), line)
    return value


def _new_migration(domid, lineno):
    return {"domid": domid, "pid": None, "policy": None, "source": None, "conf": None, "decider": None,
            "params": {}, "records": [], "final": None, "error": None, "warnings": [], "stop": None,
            "line": lineno}


def _start(fields, lineno, line):
    version = _get(fields, "v", lineno, line, "str")
    if version != LOG_VERSION:
        raise PrecopyLogError(lineno, "log format version %r is not supported (expected %s)" % (version, LOG_VERSION),
                              line)
    mig = _new_migration(_get(fields, "domid", lineno, line, "int", 0), lineno)
    mig["pid"] = _get(fields, "pid", lineno, line, "int", 0)
    mig["policy"] = _choice(fields, "policy", lineno, line, POLICY_NAMES)
    mig["source"] = _choice(fields, "source", lineno, line, SOURCES)
    mig["conf"] = fields.get("conf")
    mig["decider"] = _choice(fields, "decider", lineno, line, ("simple_precopy_policy", "xenlab"))
    for key in PARAMS:
        if key in fields:
            mig["params"][key] = _get(fields, key, lineno, line, "int", 0)
    if "max_iterations" not in mig["params"] or "target_dirty_count" not in mig["params"]:
        raise PrecopyLogError(lineno, "start line without max_iterations= and target_dirty_count=", line)
    if mig["policy"] == "adaptive" and "early" not in mig["params"]:
        # Logged by a library from before the early check (2026-12-04), which ran without it.
        mig["params"]["early"] = 0
    return mig


def _call(fields, lineno, line):
    record = {
        "iteration": _get(fields, "iteration", lineno, line, "int", 0),
        "dirty_count": _get(fields, "dirty_count", lineno, line, "int", -1),
        "total_written": _get(fields, "total_written", lineno, line, "int", 0),
        "elapsed_ms": _get(fields, "elapsed_ms", lineno, line, "float", 0),
        "sd": None,
        "decision": _choice(fields, "decision", lineno, line, tuple(DECISIONS)),
        "phase": _choice(fields, "phase", lineno, line, ("before", "after")),
        "reason": None,
        "line": lineno,
    }
    sd = _get(fields, "sd", lineno, line, "str")
    if sd != "-":
        if not _FLOAT.match(sd) or sd.startswith("-"):
            raise PrecopyLogError(lineno, "sd must be '-' or a number of pages >= 0, got %r" % sd, line)
        record["sd"] = float(sd)
    reason = _get(fields, "reason", lineno, line, "str")
    if record["decision"] == "continue":
        if reason != "-":
            raise PrecopyLogError(lineno, "a continue decision has reason '-', got %r" % reason, line)
    elif reason not in REASONS:
        raise PrecopyLogError(lineno, "reason must be one of %s, got %r" % (", ".join(REASONS), reason), line)
    else:
        record["reason"] = reason
    if (record["phase"] == "after") != (record["dirty_count"] == -1):
        raise PrecopyLogError(lineno, "phase %s does not fit dirty_count %d (after-send calls carry -1)"
                              % (record["phase"], record["dirty_count"]), line)
    return record


def _check_sequence(mig, record, lineno, line):
    """The call must be the one send_memory_live makes after the migration's previous call."""
    records = mig["records"]
    if not records:
        if (record["phase"], record["iteration"], record["total_written"]) != ("before", 0, 0) or \
                record["dirty_count"] < 1:
            raise PrecopyLogError(lineno, "the first call of a migration must be phase=before iteration=0 "
                                  "total_written=0 with dirty_count = guest pages", line)
        return
    prev = records[-1]
    if prev["decision"] != "continue":
        raise PrecopyLogError(lineno, "a call after the decision %s of line %d (domid %d)"
                              % (prev["decision"], prev["line"], mig["domid"]), line)
    if prev["phase"] == "before":
        want = ("after", prev["iteration"] + 1, prev["total_written"] + prev["dirty_count"])
    else:
        want = ("before", prev["iteration"], prev["total_written"])
    got = (record["phase"], record["iteration"], record["total_written"])
    if got != want:
        raise PrecopyLogError(lineno, "send_memory_live would make the call phase=%s iteration=%d total_written=%d "
                              "here (after line %d)" % (want + (prev["line"],)), line)
    if record["elapsed_ms"] < prev["elapsed_ms"]:
        raise PrecopyLogError(lineno, "elapsed_ms goes backwards (%s after %s)" % (record["elapsed_ms"], prev["elapsed_ms"]),
                              line)


def _stop_point(records):
    """Where the migration stopped, in stop_policy.replay(details=True)'s terms."""
    if not records or records[-1]["decision"] == "continue":
        return None
    last = records[-1]
    before = last["phase"] == "before"
    return {"iteration": last["iteration"], "stopped": "before_send" if before else "after_send",
            "passes": last["iteration"] + 1 if before else last["iteration"],
            "decision": DECISIONS[last["decision"]], "reason": last["reason"], "line": last["line"]}


def parse_precopy_log(text):
    """Parse the patched libxenguest's log lines into migrations.

    ``text``: a log file or the stderr of ``xl migrate`` (other lines are ignored; anything
    before the ``xenlab-precopy:`` marker, such as ``xc: info:`` or ``xl -T``'s timestamp, too).

    Returns a list, in log order, of one dict per migration: domid, pid, policy (the
    stop_policy.py name: ``xen`` logs as ``xen417``), source (default/env/file), conf (the file
    read, if any), decider (``simple_precopy_policy`` when Xen's own function decided),
    params {max_iterations, ...}, records, final, error, warnings, stop, line. ``records``: one per
    policy call, {iteration, dirty_count, total_written, elapsed_ms, sd (None before the
    first sample), decision ('continue'/'stop'/'abort'), phase ('before'/'after'), reason
    (None or the rule: dirty_count, iterations, total_written, sd_band, no_shrink, no_progress), line};
    a valid ``stop_policy.replay`` trace. ``final``: the stop-and-copy {iteration,
    dirty_count, elapsed_ms, suspend_ms, paused_ms, line} or None. ``error``: the message
    of an ``event=error`` line (a setting libxenguest refused: no calls follow). ``warnings``:
    messages of ``event=warning`` lines (a log file that could not be written). ``stop``:
    {iteration, stopped ('before_send'/'after_send'), passes, decision, reason, line}, as
    ``replay(..., details=True)`` reports it, or None while the migration has not stopped.

    Raises PrecopyLogError on a malformed line or a call send_memory_live could not make.
    """
    migrations = []
    current = {}  # domid -> the migration its lines go to
    pending = {}  # domid -> warnings logged before its start line
    for lineno, raw in enumerate(_text_lines(text), 1):
        pos = raw.find(MARKER)
        if pos < 0:
            continue
        line = raw.rstrip("\r")
        fields = _fields(lineno, line, line[pos + len(MARKER):])
        event = _choice(fields, "event", lineno, line, ("start", "call", "final", "error", "warning"))
        if event == "start":
            mig = _start(fields, lineno, line)
            mig["warnings"] = pending.pop(mig["domid"], [])
            migrations.append(mig)
            current[mig["domid"]] = mig
            continue
        domid = _get(fields, "domid", lineno, line, "int", 0)
        mig = current.get(domid)
        if event == "warning":
            if "message" not in fields:
                raise PrecopyLogError(lineno, "warning line without message=", line)
            if mig is None or mig["policy"] is None or mig["final"] is not None:
                pending.setdefault(domid, []).append(fields["message"])
            else:
                mig["warnings"].append(fields["message"])
            continue
        if event == "error":
            if "message" not in fields:
                raise PrecopyLogError(lineno, "error line without message=", line)
            if mig is None or mig["records"] or mig["error"]:
                # Settings are checked before the start line: a refused migration has none.
                mig = _new_migration(domid, lineno)
                migrations.append(mig)
                current[domid] = mig
            mig["error"] = fields["message"]
            mig["warnings"] = pending.pop(domid, [])
            continue
        if mig is None or mig["policy"] is None:
            raise PrecopyLogError(lineno, "%s line for domid %d without its start line" % (event, domid), line)
        if event == "call":
            record = _call(fields, lineno, line)
            _check_sequence(mig, record, lineno, line)
            mig["records"].append(record)
            mig["stop"] = _stop_point(mig["records"])
            continue
        # final
        if mig["stop"] is None or mig["stop"]["decision"] != DECISIONS["stop"]:
            raise PrecopyLogError(lineno, "final line for domid %d before its policy said stop" % domid, line)
        if mig["final"] is not None:
            raise PrecopyLogError(lineno, "second final line for domid %d (first: line %d)" % (domid, mig["final"]["line"]),
                                  line)
        final = {"iteration": _get(fields, "iteration", lineno, line, "int", 0),
                 "dirty_count": _get(fields, "dirty_count", lineno, line, "int", 0),
                 "elapsed_ms": _get(fields, "elapsed_ms", lineno, line, "float", 0),
                 "suspend_ms": _get(fields, "suspend_ms", lineno, line, "float", 0),
                 "paused_ms": _get(fields, "paused_ms", lineno, line, "float", 0),
                 "line": lineno}
        if final["iteration"] != mig["records"][-1]["iteration"]:
            raise PrecopyLogError(lineno, "final line has iteration %d, the last call had %d"
                                  % (final["iteration"], mig["records"][-1]["iteration"]), line)
        if not mig["records"][-1]["elapsed_ms"] <= final["suspend_ms"] <= final["paused_ms"] <= final["elapsed_ms"]:
            raise PrecopyLogError(lineno, "expected last call <= suspend_ms <= paused_ms <= elapsed_ms", line)
        mig["final"] = final
    return migrations


def precopy_records(text):
    """The records of the one migration in ``text`` (see parse_precopy_log).

    Raises PrecopyLogError if the text holds no migration or more than one, or if that
    migration was refused (its ``event=error`` message is quoted).
    """
    migrations = parse_precopy_log(text)
    if len(migrations) != 1:
        raise PrecopyLogError(0, "expected the log of exactly one migration, found %d" % len(migrations))
    if migrations[0]["error"]:
        raise PrecopyLogError(migrations[0]["line"], "libxenguest refused the migration: %s" % migrations[0]["error"])
    return migrations[0]["records"]


def parse_xc_progress(text):
    """libxc's per-pass progress lines (``xc: progress: Frames iteration N: done/total  pct%``).

    xl prints them with the ``libxenlab-xlprogress.so`` shim preloaded; ``-v`` adds ``detail``
    lines, ``-t`` writes them with carriage returns, ``-T`` prefixes a date: all are read. A
    pass is labelled with precopy_stats.iteration at the time it is sent, so pass k (k >= 1) of
    the live phase says ``Frames iteration k-1`` and the stop-and-copy repeats the last label
    when the policy stopped before a send; a change of label or total, a count going down or
    another progress line (``Domain now suspended`` marks the stop-and-copy) starts a new pass.

    Returns [{pass (1-based), iteration (the label's N), sent (the highest count shown),
    total (pages of that pass), complete (sent == total), phase ('live' or 'stop_and_copy'),
    line}]. [r["total"] for r in records] is [P, D_1, ..., D_n, final]: a
    ``stop_policy.TraceModel`` (passes with no dirty page are not sent, so not shown).

    Raises PrecopyLogError for a ``Frames`` progress line that does not parse, a count above
    its total, or a percentage that does not follow from the counts.
    """
    passes = []
    current = None
    suspended = False
    for lineno, raw in enumerate(_text_lines(text), 1):
        for segment in raw.split("\r"):
            if "xc: " not in segment:
                continue
            match = _PROGRESS.search(segment)
            if not match:
                if "Frames iteration" in segment:
                    raise PrecopyLogError(lineno, "expected 'xc: progress: Frames iteration N: done/total  pct%'",
                                          segment)
                continue
            doing, done, total, percent = match.group(2), int(match.group(3)), int(match.group(4)), int(match.group(5))
            if done > total:
                raise PrecopyLogError(lineno, "progress count %d is above its total %d" % (done, total), segment)
            # xtl_core.c's xtl_progress: percent = done * 100 / total (0 when total is 0).
            if total:
                want = (done * 100) // total if total < (1 << 63) // 100 else done // ((total + 99) // 100)
            else:
                want = 0
            if percent != want:
                raise PrecopyLogError(lineno, "%d/%d is %d%%, the line says %d%%" % (done, total, want, percent), segment)
            frames = _FRAMES.match(doing)
            if not frames:
                if doing.startswith("Frames"):
                    raise PrecopyLogError(lineno, "expected 'Frames iteration N', got %r" % doing, segment)
                current = None
                if doing == SUSPENDED_LABEL:
                    suspended = True
                continue
            iteration = int(frames.group(1))
            if current is None or current["iteration"] != iteration or current["total"] != total or \
                    done < current["sent"]:
                current = {"pass": len(passes) + 1, "iteration": iteration, "sent": done, "total": total,
                           "complete": done == total, "phase": "stop_and_copy" if suspended else "live",
                           "line": lineno}
                passes.append(current)
            current["sent"] = max(current["sent"], done)
            current["complete"] = current["sent"] == current["total"]
    return passes


def progress_counts(passes):
    """[total of each pass] from parse_xc_progress: [P, D_1, ..., final], TraceModel's input."""
    if not isinstance(passes, list) or not all(isinstance(p, dict) and "total" in p for p in passes):
        raise PrecopyLogError(0, "expected the list parse_xc_progress returns")
    return [p["total"] for p in passes]
