# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SIPp command lines and figures from SIPp's statistics files (stdlib only).

* :func:`build_argv`: one formatter table from option names to SIPp flags, so that the module
  and the tests build the same command line;
* :func:`stat_figures`: calls, failures by cause, retransmissions, rates and SIPp's own response
  time from the last row of a ``-trace_stat`` CSV parsed by :func:`parsers.parse_sipp_stat`;
* :func:`rtt_figures`: min/mean/median/p95/max of the per-call response times of a
  ``-trace_rtt`` CSV parsed by :func:`parsers.parse_sipp_rtt`;
* :func:`exit_meaning` and :func:`outcome`: what SIPp's exit code and the figures say.

Columns are always looked up by header name (:func:`parsers.sipp_column`), never by position.
"""

from __future__ import annotations

import math
import re

from . import parsers, stats

# Scenarios built into SIPp 3.6 (-sn NAME); uac_pcap works although -h does not list it.
BUILTIN_SCENARIOS = ("uac", "uas", "regexp", "branchc", "branchs", "uac_pcap",
                     "3pcc-C-A", "3pcc-C-B", "3pcc-A", "3pcc-B")

# SIPp's documented exit codes (sipp -h), as the unsigned byte a parent process sees.
EXIT_CODES = {
    0: "all calls were successful",
    1: "at least one call failed (or SIPp stopped on an error before placing calls)",
    97: "exit on internal command; calls may have been processed",
    99: "normal exit without calls processed",
    254: "fatal error binding a socket",
    255: "fatal error",
}

# sipp -trace_stat columns read by the figures; cumulative (C) values of the last row.
CALL_COLUMNS = {
    "calls_total": "TotalCallCreated",
    "calls_outgoing": "OutgoingCall(C)",
    "calls_incoming": "IncomingCall(C)",
    "calls_successful": "SuccessfulCall(C)",
    "calls_failed": "FailedCall(C)",
    "calls_in_flight": "CurrentCall",
    "retransmissions": "Retransmissions(C)",
    "dead_call_msgs": "DeadCallMsgs(C)",
    "out_of_call_msgs": "OutOfCallMsgs(C)",
    "warnings": "Warnings(C)",
    "fatal_errors": "FatalErrors(C)",
}
_FAILED_CAUSE = re.compile(r"^Failed(?P<cause>[A-Za-z]+)\(C\)$")

_HOST_RE = re.compile(r"^[A-Za-z0-9_.:-]+$")


class SippArgError(ValueError):
    """An option value SIPp cannot take."""


def _num(value):
    """A number for SIPp's command line: 10.0 -> '10', 2.5 -> '2.5'."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def format_remote(host, port):
    """SIPp's remote host argument: ``host:port``, IPv6 addresses in brackets."""
    if not isinstance(host, str) or not host or not _HOST_RE.match(host):
        raise SippArgError("target must be a host name or an IPv4/IPv6 address, got %r" % (host,))
    if ":" in host:
        return "[%s]:%d" % (host, port)
    return "%s:%d" % (host, port)


def is_builtin(scenario):
    return scenario in BUILTIN_SCENARIOS


def looks_like_path(scenario):
    return "/" in scenario or scenario.endswith(".xml")


# Option name -> (flag, formatter). None values are left out; SIPp's default then applies.
ARG_FORMATS = (
    ("call_length_ms", "-d", _num),
    ("rate", "-r", _num),
    ("rate_period_ms", "-rp", _num),
    ("limit", "-l", _num),
    ("calls", "-m", _num),
    ("service", "-s", str),
    ("auth_user", "-au", str),
    ("auth_password", "-ap", str),
    ("local_ip", "-i", str),
    ("local_port", "-p", _num),
    ("media_ip", "-mi", str),
    ("global_timeout_s", "-timeout", lambda v: "%ds" % int(math.ceil(v))),
)

TRANSPORTS = {"udp": "u1"}


def build_argv(sipp, scenario, remote=None, caller=None, transport="udp", stat_file=None, stats_interval_s=1,
               error_file=None, screen_file=None, extra_args=None, **options):
    """SIPp's argv for ``scenario`` (a builtin name or an XML file) against ``remote`` (host:port).

    The statistics go to ``stat_file`` every ``stats_interval_s`` seconds (``-trace_stat -stf
    -fd``), every response time to ``<scenario>_<pid>_rtt.csv`` in SIPp's working directory
    (``-trace_rtt -rtt_freq 1``: without it SIPp only writes complete batches of 200 calls),
    unexpected messages to ``error_file`` and the final screens to ``screen_file``. ``caller``
    becomes ``-key caller NAME`` (the From user of the collection's uac_auth.xml; other
    scenarios ignore it). ``options`` are the keys of :data:`ARG_FORMATS`.
    """
    unknown = sorted(set(options) - set(name for name, _flag, _fmt in ARG_FORMATS))
    if unknown:
        raise SippArgError("unknown SIPp option(s): %s" % ", ".join(unknown))
    if transport not in TRANSPORTS:
        raise SippArgError("transport must be one of %s, got %r" % (", ".join(sorted(TRANSPORTS)), transport))
    argv = [sipp]
    if looks_like_path(scenario):
        argv += ["-sf", scenario]
    elif is_builtin(scenario):
        argv += ["-sn", scenario]
    else:
        raise SippArgError("scenario %r is neither a path to an XML file nor one of SIPp's built-in scenarios (%s)"
                           % (scenario, ", ".join(BUILTIN_SCENARIOS)))
    if remote:
        argv.append(remote)
    argv += ["-t", TRANSPORTS[transport]]
    for name, flag, fmt in ARG_FORMATS:
        value = options.get(name)
        if value is not None:
            argv += [flag, fmt(value)]
    if caller:
        argv += ["-key", "caller", caller]
    if stat_file:
        argv += ["-trace_stat", "-stf", stat_file, "-fd", _num(stats_interval_s)]
    argv += ["-trace_rtt", "-rtt_freq", "1"]
    if error_file:
        argv += ["-trace_err", "-error_file", error_file]
    if screen_file:
        argv += ["-trace_screen", "-screen_file", screen_file]
    argv.append("-nostdin")
    argv += list(extra_args or [])
    return argv


def mask_argv(argv):
    """argv with the value of ``-ap`` (the SIP password) replaced by ``********``."""
    out = list(argv)
    for i, arg in enumerate(out[:-1]):
        if arg == "-ap":
            out[i + 1] = "********"
    return out


def exit_meaning(rc):
    """What SIPp's exit code says; ``rc`` as Popen gives it (negative: killed by that signal)."""
    if rc is None:
        return "unknown (SIPp ran in the background; see outcome)"
    if rc < 0:
        return "killed by signal %d" % -rc
    return EXIT_CODES.get(rc, "undocumented exit code %d" % rc)


def percentile(values, pct):
    """The ``pct`` percentile (0-100) by linear interpolation between closest ranks.

    This is the usual definition (NumPy's default, a spreadsheet's PERCENTILE.INC): rank
    ``(n - 1) * pct / 100``, interpolated between the two neighbouring sorted values.
    """
    if isinstance(pct, bool) or not isinstance(pct, (int, float)) or not 0 <= pct <= 100:
        raise ValueError("percentile needs pct between 0 and 100, got %s" % stats.brief(pct))
    if isinstance(values, (str, bytes)):
        raise ValueError("percentile needs a list of numbers, got %s" % stats.brief(values))
    values = list(values)
    if not values:
        raise ValueError("percentile of an empty sequence")
    stats.mean(values)  # type and finiteness checks, with stats' messages
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100.0
    low = int(math.floor(rank))
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values):
    """min, mean, median, p95 and max of a list of numbers (None for each when it is empty)."""
    values = list(values)
    if not values:
        return {"min": None, "mean": None, "median": None, "p95": None, "max": None, "count": 0}
    return {
        "min": float(min(values)),
        "mean": stats.mean(values),
        "median": float(percentile(values, 50)),
        "p95": float(percentile(values, 95)),
        "max": float(max(values)),
        "count": len(values),
    }


def _last(parsed, name):
    values = parsers.sipp_column(parsed, name)
    return values[-1] if values else None


def stat_figures(parsed):
    """Figures from the last row of a parsed ``-trace_stat`` CSV.

    Returns the call counts of :data:`CALL_COLUMNS` (None for a column SIPp did not write),
    ``failed_by_cause`` ({cause: count} from every ``Failed<Cause>(C)`` column), the call rate
    over the run (``call_rate_cps``, SIPp's ``CallRate(C)``), the run's length from StartTime to
    CurrentTime (``elapsed_s``), and SIPp's mean and standard deviation of response time 1
    and of the call length in milliseconds.
    """
    if not parsed["rows"]:
        raise ValueError("sipp statistics file has a header but no rows (SIPp stopped before its first report)")
    columns = parsed["columns"]
    out = {}
    for key, name in CALL_COLUMNS.items():
        out[key] = _last(parsed, name) if name in columns else None
    out["failed_by_cause"] = {}
    for name in columns:
        match = _FAILED_CAUSE.match(name)
        if match and name != "FailedCall(C)":
            out["failed_by_cause"][match.group("cause")] = _last(parsed, name)
    out["call_rate_cps"] = _last(parsed, "CallRate(C)") if "CallRate(C)" in columns else None
    out["target_rate_cps"] = _last(parsed, "TargetRate") if "TargetRate" in columns else None
    start, current = _last(parsed, "StartTime"), _last(parsed, "CurrentTime")
    out["elapsed_s"] = round(current - start, 6)
    for key, name in (("response_time_stat_mean_ms", "ResponseTime1(C)"),
                      ("response_time_stat_stdev_ms", "ResponseTime1StDev(C)"),
                      ("call_length_mean_ms", "CallLength(C)"),
                      ("call_length_stdev_ms", "CallLengthStDev(C)")):
        value = _last(parsed, name) if name in columns else None
        out[key] = None if value is None else round(value * 1000.0, 3)
    return out


def rtt_figures(parsed, rtd_no=1):
    """Response time figures of timer ``rtd_no`` from a parsed ``-trace_rtt`` CSV, in ms.

    Keys ``response_time_{min,mean,median,p95,max}_ms`` and ``response_time_samples``.
    """
    times = parsers.sipp_column(parsed, "response_time_ms")
    if "rtd_no" in parsed["columns"]:
        timers = parsers.sipp_column(parsed, "rtd_no")
        times = [t for t, n in zip(times, timers) if n == rtd_no]
    figures = summary(times)
    out = {"response_time_samples": figures.pop("count")}
    for key, value in figures.items():
        out["response_time_%s_ms" % key] = None if value is None else round(value, 3)
    return out


def outcome(figures, rc=None):
    """One word for the run: ``ok``, ``failed_calls``, ``no_calls`` or ``error``.

    Like SIPp's exit code, but also for a SIPp that ran in the background (whose exit code the
    module cannot see): ``ok`` when every finished call succeeded, ``failed_calls`` when one
    failed, ``no_calls`` when none was placed or answered, ``error`` when SIPp reported a fatal
    error (exit code 254/255, FatalErrors, or any exit code but 0, 97 and 99 without a call).
    """
    if rc in (254, 255) or figures.get("fatal_errors"):
        return "error"
    if rc is not None and rc not in (0, 97, 99) and not figures.get("calls_total"):
        return "error"
    if figures.get("calls_failed"):
        return "failed_calls"
    if not figures.get("calls_total"):
        return "no_calls"
    return "ok"
