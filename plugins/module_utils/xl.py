# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Xen toolstack's text, parsed (stdlib only), and a small runner around it.

Parsers are pure functions taking the text ``xl`` (or ``xm``) printed and returning dicts and
lists; text that does not have the expected shape raises :class:`XlParseError` saying what was
expected. The formats are those of Xen 4.17's ``tools/xl`` (``xl_info.c``, ``xl_sched.c``,
``xl_vcpu.c``), which ``xm`` of Xen 3.2 and later shares for ``list``, ``vcpu-list`` and
``sched-credit``; tests/fixtures/xl/ holds real outputs.

:class:`XlRunner` builds the command lines (one formatter per option, ``LC_ALL=C``), runs them
through a ``run_command``-like callable ``run(argv, environ_update=...) -> (rc, out, err)``,
skips mutating calls in check mode, and turns a failure into :class:`XlCommandError` whose
``kind`` says what went wrong (:func:`classify_error`).
"""

from __future__ import annotations

import re

SCHEDULERS_WITH_WEIGHT_CAP = ("credit", "credit2")
WEIGHT_MIN, WEIGHT_MAX = 1, 65535
# Xen 4.10 added caps to credit2 (before, only credit had them).
CREDIT2_CAP_SINCE = (4, 10)


class XlParseError(ValueError):
    """Toolstack output that does not have the expected shape."""


class XlCommandError(Exception):
    """A toolstack command that failed; ``kind`` classifies the failure (see classify_error)."""

    def __init__(self, msg, cmd=None, rc=None, stdout="", stderr="", kind="failed", detail=None):
        super(XlCommandError, self).__init__(msg)
        self.msg = msg
        self.cmd = cmd
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.kind = kind
        self.detail = detail or {}


def _lines(text, what):
    if not isinstance(text, str):
        raise XlParseError("%s: expected text, got %s" % (what, type(text).__name__))
    return [line.rstrip() for line in text.splitlines() if line.strip()]


def _int(value, what, line):
    try:
        return int(value)
    except ValueError:
        raise XlParseError("%s: %r is not an integer in line %r" % (what, value, line)) from None


def _float(value, what, line):
    try:
        return float(value)
    except ValueError:
        raise XlParseError("%s: %r is not a number in line %r" % (what, value, line)) from None


# --- xl info ------------------------------------------------------------------------------------

_INFO_RE = re.compile(r"^([A-Za-z0-9_]+)\s*:\s?(.*)$")


def parse_info(text):
    """``xl info`` (``key : value`` lines) to a dict of stripped strings.

    Needs at least ``xen_scheduler``; ``xen_version_tuple`` (major, minor) is added when
    ``xen_major``/``xen_minor`` are integers.
    """
    info = {}
    for line in _lines(text, "xl info"):
        match = _INFO_RE.match(line)
        if not match:
            raise XlParseError("xl info: expected 'key : value', got %r" % (line,))
        info[match.group(1)] = match.group(2).strip()
    if "xen_scheduler" not in info:
        raise XlParseError("xl info: no xen_scheduler line in %d lines (is this the output of 'xl info'?)" % len(info))
    try:
        info["xen_version_tuple"] = (int(info["xen_major"]), int(info["xen_minor"]))
    except (KeyError, ValueError):
        pass
    return info


# --- xl list ------------------------------------------------------------------------------------

def parse_list(text):
    """``xl list [DOMAIN]`` to a list of ``{name, domid, mem_mib, vcpus, state, time_s}``.

    The name is everything before the last five columns, so names with spaces survive.
    """
    lines = _lines(text, "xl list")
    if not lines or lines[0].split()[:4] != ["Name", "ID", "Mem", "VCPUs"]:
        raise XlParseError("xl list: expected a 'Name ID Mem VCPUs State Time(s)' header, got %r"
                           % (lines[0] if lines else ""))
    domains = []
    for line in lines[1:]:
        fields = line.split()
        if len(fields) < 6:
            raise XlParseError("xl list: expected 6 columns (Name ID Mem VCPUs State Time(s)), got %r" % (line,))
        name = " ".join(fields[:-5])
        domains.append({
            "name": name,
            "domid": _int(fields[-5], "xl list ID", line),
            "mem_mib": _int(fields[-4], "xl list Mem", line),
            "vcpus": _int(fields[-3], "xl list VCPUs", line),
            "state": fields[-2],
            "time_s": _float(fields[-1], "xl list Time(s)", line),
        })
    return domains


# --- xl vcpu-list -------------------------------------------------------------------------------

_VCPU_RE = re.compile(r"^(?P<name>.+?)\s+(?P<domid>\d+)\s+(?P<vcpu>\d+)\s+(?P<cpu>\d+|-)\s+(?P<state>\S+)\s+"
                      r"(?P<time>[0-9.]+)\s*(?P<affinity>.*)$")


def parse_vcpu_list(text):
    """``xl vcpu-list [DOMAIN]`` to a list of ``{name, domid, vcpu, cpu, state, time_s, affinity}``.

    Every vCPU up to the domain's maximum is listed, online or not (``cpu`` is None when the vCPU
    runs nowhere), so the row count per domain is the vCPU count the credit cap is checked against.
    """
    lines = _lines(text, "xl vcpu-list")
    if not lines or lines[0].split()[:3] != ["Name", "ID", "VCPU"]:
        raise XlParseError("xl vcpu-list: expected a 'Name ID VCPU CPU State Time(s) Affinity' header, got %r"
                           % (lines[0] if lines else ""))
    vcpus = []
    for line in lines[1:]:
        match = _VCPU_RE.match(line)
        if not match:
            raise XlParseError("xl vcpu-list: cannot read line %r" % (line,))
        cpu = match.group("cpu")
        vcpus.append({
            "name": match.group("name"),
            "domid": int(match.group("domid")),
            "vcpu": int(match.group("vcpu")),
            "cpu": None if cpu == "-" else int(cpu),
            "state": match.group("state"),
            "time_s": float(match.group("time")),
            "affinity": match.group("affinity").strip(),
        })
    return vcpus


# --- xl sched-credit / sched-credit2 ------------------------------------------------------------

_POOL_RE = re.compile(r"^Cpupool (?P<pool>\S+):\s*(?P<params>.*)$")
_PARAM_RE = re.compile(r"^(?P<key>[a-z_-]+)=(?P<value>-?\d+)(?P<unit>[a-z]*)$")
_SCHED_ROW_RE = re.compile(r"^(?P<name>.+?)\s+(?P<domid>\d+)\s+(?P<weight>-?\d+)\s+(?P<cap>-?\d+)$")


def _pool_params(text, line):
    """``tslice=30ms ratelimit=1000us migration-delay=0us`` to ``{tslice_ms: 30, ...}``."""
    if text.strip() == "[sched params unavailable]":
        return None
    params = {}
    for token in text.split():
        match = _PARAM_RE.match(token)
        if not match:
            raise XlParseError("xl sched-credit: cannot read pool parameter %r in line %r" % (token, line))
        key = match.group("key").replace("-", "_")
        if match.group("unit"):
            key += "_" + match.group("unit")
        params[key] = int(match.group("value"))
    return params


def parse_sched(text):
    """``xl sched-credit``/``sched-credit2`` (all pools, one pool or ``-d DOMAIN``) to a dict.

    Returns ``{"pools": [{"name", "params"}], "domains": [{"name", "domid", "weight", "cap", "pool"}]}``;
    ``params`` is None when xl could not read them, ``pool`` None for ``-d`` output (no pool line).
    Empty text (no pool runs this scheduler) gives empty lists.
    """
    result = {"pools": [], "domains": []}
    pool = None
    header = False
    for line in _lines(text, "xl sched-credit"):
        match = _POOL_RE.match(line)
        if match:
            pool = match.group("pool")
            result["pools"].append({"name": pool, "params": _pool_params(match.group("params"), line)})
            header = False
            continue
        if line.split() == ["Name", "ID", "Weight", "Cap"]:
            header = True
            continue
        if not header:
            raise XlParseError("xl sched-credit: expected a 'Name ID Weight Cap' header before %r" % (line,))
        match = _SCHED_ROW_RE.match(line)
        if not match:
            raise XlParseError("xl sched-credit: expected 'Name ID Weight Cap' columns, got %r" % (line,))
        result["domains"].append({
            "name": match.group("name"),
            "domid": int(match.group("domid")),
            "weight": int(match.group("weight")),
            "cap": int(match.group("cap")),
            "pool": pool,
        })
    return result


def find_domain(rows, domain):
    """The row of ``domain`` (a name, or a domain ID as int or digits) in parsed rows, or None."""
    text = str(domain)
    for row in rows:
        if row["name"] == text:
            return row
    if text.isdigit():
        for row in rows:
            if row["domid"] == int(text):
                return row
    return None


def sched_of_domain(text, domain):
    """``{name, domid, weight, cap}`` of ``domain`` from sched-credit(2) text; XlParseError if absent."""
    parsed = parse_sched(text)
    row = find_domain(parsed["domains"], domain)
    if row is None:
        raise XlParseError("xl sched-credit: domain %r is not in the output (%s)"
                           % (str(domain), ", ".join(r["name"] for r in parsed["domains"]) or "no domains"))
    return row


# --- errors -------------------------------------------------------------------------------------

_ERRORS = (
    # xl: find_domain() in xl_utils.c; xm: "Error: Domain 'x' does not exist."
    ("domain_not_found", re.compile(r"is an invalid domain identifier|Domain '[^']*' does not exist")),
    # xl sched_domain_get(): the domain's pool runs another scheduler.
    ("scheduler_mismatch", re.compile(r"sched_params_get returned (?P<actual>\S+) not (?P<wanted>[^\s.]+)")),
    # xl set with the wrong scheduler: Xen answers EINVAL to the sysctl.
    ("scheduler_mismatch", re.compile(r"sched_(?P<wanted>credit2?)_domain_set: Getting domain sched \S+: Invalid argument")),
    ("cap_range", re.compile(r"Cpu cap out of range, valid range is from 0 to (?P<max>\d+)")),
    ("weight_range", re.compile(r"Cpu weight out of range")),
    ("permission", re.compile(r"Permission denied|must be run as root|cannot init xl context")),
    # xm: check_sched_type() when xend runs another scheduler.
    ("scheduler_mismatch", re.compile(r"Scheduler '?(?P<wanted>\w+)'? is not the current scheduler '?(?P<actual>\w*)")),
)


def classify_error(stderr, stdout=""):
    """(kind, detail) for a failed toolstack command, from its output.

    kind is one of domain_not_found, scheduler_mismatch (detail: wanted, actual when known),
    cap_range (detail: max), weight_range, permission, or failed.
    """
    text = "%s\n%s" % (stderr or "", stdout or "")
    for kind, regex in _ERRORS:
        match = regex.search(text)
        if match:
            detail = dict((k, v) for k, v in match.groupdict().items() if v)
            if "max" in detail:
                detail["max"] = int(detail["max"])
            return kind, detail
    return "failed", {}


# --- runner -------------------------------------------------------------------------------------

def _opt(flag):
    return lambda value: [flag, str(value)]


# One formatter per option, CmdRunner style: the order of a call's argv is the order it names.
ARG_FORMATS = {
    "domain": _opt("-d"),
    "weight": _opt("-w"),
    "cap": _opt("-c"),
}

SCHED_COMMANDS = {"credit": "sched-credit", "credit2": "sched-credit2"}


class XlRunner(object):
    """Runs ``xl`` (or ``xm``) through a ``run_command``-like callable.

    ``run(argv, environ_update=dict) -> (rc, stdout, stderr)``: AnsibleModule.run_command fits.
    Reads always run; mutating calls return None without running in check mode.
    """

    def __init__(self, run, binary="xl", check_mode=False):
        if not callable(run):
            raise TypeError("run must be a callable like AnsibleModule.run_command")
        self.run_command = run
        self.binary = binary
        self.check_mode = check_mode
        self.calls = []

    def argv(self, command, **options):
        argv = [self.binary] + command.split()
        for key, value in options.items():
            if value is None:
                continue
            if key not in ARG_FORMATS:
                raise ValueError("no formatter for option %r" % (key,))
            argv.extend(ARG_FORMATS[key](value))
        return argv

    def run(self, argv, mutating=False):
        if mutating and self.check_mode:
            return None
        self.calls.append(argv)
        rc, out, err = self.run_command(argv, environ_update={"LC_ALL": "C"})
        if rc != 0:
            kind, detail = classify_error(err, out)
            first = (err or out or "").strip().splitlines()
            raise XlCommandError("'%s' failed (rc %s): %s" % (" ".join(argv), rc, first[-1] if first else "no output"),
                                 cmd=argv, rc=rc, stdout=out, stderr=err, kind=kind, detail=detail)
        return out

    def info(self):
        return parse_info(self.run(self.argv("info")))

    def list_domain(self, domain):
        """The ``xl list DOMAIN`` row of one domain (XlCommandError kind domain_not_found if none)."""
        rows = parse_list(self.run(self.argv("list") + [str(domain)]))
        row = find_domain(rows, domain)
        if row is None:
            raise XlParseError("xl list %s: the domain is not in the output" % (domain,))
        return row

    def list_domains(self):
        return parse_list(self.run(self.argv("list")))

    def vcpu_count(self, domain):
        """Number of vCPUs of ``domain`` (online or not) from ``xl vcpu-list``."""
        rows = parse_vcpu_list(self.run(self.argv("vcpu-list") + [str(domain)]))
        if not rows:
            raise XlParseError("xl vcpu-list %s: no vCPU listed" % (domain,))
        return len(rows)

    def sched_get(self, scheduler, domain):
        if scheduler not in SCHED_COMMANDS:
            raise ValueError("scheduler must be one of %s, got %r" % (", ".join(SCHED_COMMANDS), scheduler))
        return sched_of_domain(self.run(self.argv(SCHED_COMMANDS[scheduler], domain=domain)), domain)

    def sched_set(self, scheduler, domain, weight=None, cap=None):
        """Set weight and/or cap; returns the argv (run, or skipped in check mode)."""
        if scheduler not in SCHED_COMMANDS:
            raise ValueError("scheduler must be one of %s, got %r" % (", ".join(SCHED_COMMANDS), scheduler))
        if weight is None and cap is None:
            raise ValueError("sched_set needs a weight or a cap")
        argv = self.argv(SCHED_COMMANDS[scheduler], domain=domain, weight=weight, cap=cap)
        self.run(argv, mutating=True)
        return argv


def cap_supported(scheduler, xen_version=None, toolstack="xl"):
    """(ok, reason): can ``scheduler`` cap a domain with this Xen version and toolstack?"""
    if scheduler == "credit":
        return True, ""
    if scheduler == "credit2":
        if toolstack != "xl":
            return False, "%s has no sched-credit2 command" % toolstack
        if xen_version is not None and tuple(xen_version) < CREDIT2_CAP_SINCE:
            return False, "credit2 caps need Xen %d.%d or later, this is Xen %d.%d" % (
                CREDIT2_CAP_SINCE + tuple(xen_version))
        return True, ""
    return False, "the %s scheduler has no weight or cap" % scheduler
