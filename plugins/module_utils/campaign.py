# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Experiment campaigns: load a results directory, aggregate, compare with the thesis (stdlib only).

A campaign re-runs one family of the thesis's tables (P. U. Nkubito, "Aggregated Service
Consolidation by Multi-Server Virtualization", MSc thesis, University of Cape Town, 2012) as a
sweep with repetitions and writes ``results/<campaign>/<UTC timestamp>/`` (docs/campaigns.md)::

    params.json                   the campaign's variables and inventory (optional)
    plan.json                     {"campaign", "sweep": [var, ...], "runs": [{name, point, rep}]} (optional)
    runs/<run>.migration.json     xen_migrate's record (kind migration): marks the run as done
    runs/<run>.probe.json         downtime_probe's record        (optional, likewise below)
    runs/<run>.sipp.json          sipp_load's record
    runs/<run>.smtp.json          smtp_load's record
    runs/<run>.voip.json          voip_quality's record
    runs/<run>/...                raw artifacts (pcaps, SIPp statistics, logs): listed, not read
    calibration/<name>.migration.json   an idle migration before the sweep (optional, with its
                                  <name>.probe.json): the model's fixed overheads beta

:func:`load_campaign` reads and checks it, :func:`run_figures` derives one run's figures (units
in the names) and the pre-copy model's prediction for it (:func:`model_figures`, Eqs. 1-3, 9, 12
of ``precopy.py``), :func:`aggregate` groups runs by sweep point (n, median, mean, min, max and
the names of the runs behind every number), :func:`sections` sets them beside the thesis's
tables (``playbooks/vars/thesis_tables.yml``) with the trend directions compared, and
:func:`build_report` / :func:`write_report` produce ``summary.csv``, ``runs.csv``, ``report.md``
and ``plots/*.png``. :func:`check_provenance` re-derives every number of a written summary from
the run files. Only the plots need matplotlib (imported when they are drawn).

Every error on bad input is a :class:`CampaignError` (a ``ValueError``) naming the file and field.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import tempfile

from ansible_collections.xenlab.migration.plugins.module_utils import precopy, results, stats, stop_policy

PAGE_SIZE = stop_policy.DEFAULT_PAGE_SIZE
RUNS_DIR = "runs"
CALIBRATION_DIR = "calibration"
PARAMS_FILE = "params.json"
PLAN_FILE = "plan.json"
SUMMARY_FILE = "summary.csv"
RUNS_FILE = "runs.csv"
REPORT_FILE = "report.md"
PLOTS_DIR = "plots"
# <run>.<label>.json -> the record kind it must hold.
RECORD_LABELS = (("migration", "migration"), ("probe", "downtime_probe"), ("sipp", "sipp_load"),
                 ("smtp", "smtp_load"), ("voip", "voip_quality"))
_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_RECORD_FILE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_-]{0,127})\.([a-z0-9_]+)\.json$")
_STANDARD_KEYS = set(results.REQUIRED_KEYS) | set(results.TIME_KEYS)
# Keys of a record's result_extra that describe the run rather than its sweep point.
_RUN_KEYS = ("run", "rep", "campaign")
POLICY_ALIASES = {"xen": "xen417", None: "xen417"}

# Campaigns (playbooks/experiments/<name>.yml) and the sweep variable of each.
FAMILIES = {
    "call_length_sweep": {"sweep": ("call_length_s",), "title": "Table 2: call length sweep"},
    "cap_sweep": {"sweep": ("cap",), "title": "Tables 3-4: credit cap sweep and the choice of the cap"},
    "sd_tracking": {"sweep": ("policy",), "title": "Tables 5-6: SD tracking (sd) against Xen 3.4's rules (xen34)"},
    "voip_quality_caps": {"sweep": ("cap",), "title": "Tables 7-9: call quality at cap 100 and cap 35"},
    "guest_size_sweep": {"sweep": ("guest_memory_mib",), "title": "Guest size sweep against the pre-copy model"},
}

LOSS_RUN_KEYS = tuple("a_sl%d" % i for i in range(1, 11))
PDV_KEYS = ("a_d50", "a_d70", "a_d90", "a_d120", "a_d150", "a_d200", "a_d300")

# (name, meaning): every per-run figure, in summary.csv's order. Units are in the names.
METRICS = (
    ("migration_time_ms", "xl migrate's wall-clock time (xen_migrate total_time_ms; Eq. 10, all phases)"),
    ("copy_time_ms", "start of the first pass to the end of the stop-and-copy (patched libxenguest log)"),
    ("pass1_ms", "duration of the first pass, which copies all of the guest's memory"),
    ("first_pass_pct", "pass1_ms in percent of migration_time_ms (Table 5's 86 %)"),
    ("after_first_ms", "end of the first pass to the end of the stop-and-copy (Table 6's iterative copying time)"),
    ("stop_copy_ms", "suspend requested to the last page sent"),
    ("downtime_ms", "downtime by the probe, Eq. 14 (downtime_probe)"),
    ("longest_gap_ms", "longest gap between two answers of the probe"),
    ("toolstack_downtime_ms", "xl's 'suspended' to 'target reports successful startup'"),
    ("live_passes", "pre-copy passes before the stop-and-copy"),
    ("guest_pages", "pages of the first pass (the guest's p2m size), P"),
    ("pages_sent", "pages sent live plus in the stop-and-copy"),
    ("bandwidth_mbps", "guest_pages / pass1_ms, in Mbps (B)"),
    ("dirty_rate_mbps", "pages dirtied during the live passes / their duration, in Mbps (p)"),
    ("dirty_rate_pass1_mbps", "pages dirtied during the first pass / its duration, in Mbps"),
    ("dirty_rate_after1_mbps", "pages dirtied during the live passes after the first, the last one's left out, "
                               "/ their duration, in Mbps: the rate while the dirty set is not saturated (the model's p)"),
    ("wws_pages", "pages dirtied during the first pass, the longest interval: the writable working set (the model's W)"),
    ("ping_rtt_ms", "mean ping round-trip time of the probe (the thesis's Table 3 response time)"),
    ("sip_response_ms", "SIPp's mean response time 1 (sipp_load response_time_mean_ms)"),
    ("failed_calls", "SIPp's failed calls (Table 2)"),
    ("calls_total", "calls SIPp created"),
    ("mail_response_ms", "mean SMTP response time of the accepted mails (smtp_load response_ms.mean)"),
    ("failed_mails", "mails the server did not accept"),
    ("mos_f1", "lowest MOS over the RTP streams, fixed 50 ms jitter buffer (voip_quality)"),
    ("mos_f2", "lowest MOS, fixed 200 ms jitter buffer"),
    ("mos_adaptive", "lowest MOS, adaptive jitter buffer up to 500 ms"),
    ("jitter_max_ms", "largest RFC 3550 jitter over the RTP streams"),
    ("packets_lost", "RTP packets lost over all streams"),
) + tuple((k, "runs of %s consecutive lost RTP packets, summed over the streams (Table 7)"
           % ("10 or more" if k == "a_sl10" else k[4:])) for k in LOSS_RUN_KEYS) + tuple(
    (k, "RTP packets in VoIPmonitor's delay bucket from %s ms (arrival minus timestamp interval) up to the next, "
        "summed over the streams (Table 8)" % k[3:]) for k in PDV_KEYS) + (
    ("model_memory_mb", "model input M: guest_pages x 4096 bytes, decimal MB"),
    ("model_threshold_kb", "model input h: the policy's target_dirty_count pages, KB"),
    ("model_max_rounds", "model input N: the policy's max_iterations live passes + the stop-and-copy"),
    ("model_dirty_rate_mbps", "model input p: dirty_rate_after1_mbps, else dirty_rate_mbps (no pass to measure it on)"),
    ("model_wws_mb", "model input W: wws_pages x 4096 bytes, decimal MB (each round copies at most min(p t, W))"),
    ("model_overhead_ms", "model input beta added to the migration time (Eq. 10's phases besides the copy)"),
    ("model_downtime_overhead_ms", "model input beta added to the downtime (Eq. 11's commitment and activation)"),
    ("model_rounds", "rounds predicted by Eq. 2 (live passes + stop-and-copy)"),
    ("model_copy_time_ms", "memory-copy time predicted by Eq. 3 with the working set W, no beta"),
    ("model_migration_time_ms", "migration time predicted: model_copy_time_ms + beta"),
    ("model_downtime_ms", "downtime predicted: the last round of Eq. 1 (+ the downtime's beta)"),
    ("model_downtime_bound_ms", "Eq. 12's bound h/B + the downtime's beta"),
    ("model_eq9_downtime_ms", "Eq. 9's M p^(N-1) / B^N + beta, when N rounds are predicted above Eq. 7's limit"),
    ("model_const_migration_time_ms", "the thesis's form for comparison: Eq. 3 with one constant rate "
                                      "(dirty_rate_mbps) and no working set, + beta"),
    ("model_migration_time_error_pct", "(model_migration_time_ms - migration_time_ms) / migration_time_ms x 100"),
    ("model_const_migration_time_error_pct", "(model_const_migration_time_ms - migration_time_ms) / migration_time_ms x 100"),
    ("model_copy_time_error_pct", "(model_copy_time_ms - copy_time_ms) / copy_time_ms x 100"),
    ("model_downtime_error_pct", "(model_downtime_ms - downtime_ms) / downtime_ms x 100"),
    ("model_stop_copy_error_pct", "(model_downtime_ms - the downtime's beta - stop_copy_ms) / stop_copy_ms x 100"),
)
METRIC_NAMES = tuple(name for name, dummy in METRICS)
STAT_FIELDS = ("n", "median", "mean", "min", "max")
RESPONSE_METRICS = ("ping_rtt_ms", "sip_response_ms", "mail_response_ms")
DEFAULT_FLAT_TOLERANCE_PCT = 5.0


class CampaignError(ValueError):
    """A campaign results directory, run record or option that cannot be used; the message says why."""


# ---------------------------------------------------------------------------------------------
# small helpers

def _is_number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def _number(value, where):
    """None stays None; a finite number is returned; anything else is a CampaignError."""
    if value is None:
        return None
    if not _is_number(value):
        raise CampaignError("%s must be a number, got %s" % (where, stats.brief(value)))
    return value


def _mapping(value, where, optional=True):
    if value is None and optional:
        return {}
    if not isinstance(value, dict):
        raise CampaignError("%s must be an object, got %s" % (where, stats.brief(value)))
    return value


def _scalar_value(value):
    """Plan values from -e are strings: '35' -> 35, '2.5' -> 2.5; other values unchanged."""
    if isinstance(value, str):
        text = value.strip()
        for convert in (int, float):
            try:
                number = convert(text)
            except ValueError:
                continue
            if _is_number(number):
                return number
    return value


def _same_value(a, b):
    a, b = _scalar_value(a), _scalar_value(b)
    if _is_number(a) and _is_number(b):
        return float(a) == float(b)
    return a == b


def _ratio_pct(part, whole):
    if part is None or whole is None or whole == 0:
        return None
    return 100.0 * part / whole


def error_pct(predicted, measured):
    """(predicted - measured) / measured x 100, or None when either is missing or measured is 0."""
    if predicted is None or measured is None or measured == 0:
        return None
    return 100.0 * (predicted - measured) / measured


def pages_to_mbit(pages):
    return pages * PAGE_SIZE * 8 / 1e6


median = stats.median_present


def describe(values):
    """{n, median, mean, min, max} of the numbers (None left out); n = 0 gives Nones."""
    vals = [v for v in values if v is not None]
    if not vals:
        return {"n": 0, "median": None, "mean": None, "min": None, "max": None}
    return {"n": len(vals), "median": median(vals), "mean": stats.mean(vals), "min": min(vals), "max": max(vals)}


# ---------------------------------------------------------------------------------------------
# loading

def _read_json_file(path, what):
    try:
        return results.read_json(path)
    except results.ResultFileError as exc:
        raise CampaignError("%s: %s" % (what, exc)) from None


def _plan_entries(plan, where):
    """The list of planned runs of plan.json (a list, or an object with runs)."""
    runs = plan.get("runs") if isinstance(plan, dict) else plan
    if not isinstance(runs, list):
        raise CampaignError("%s: expected a list of runs or an object with a list 'runs', got %s"
                            % (where, stats.brief(plan)))
    out, seen = [], set()
    for i, entry in enumerate(runs):
        if not isinstance(entry, dict):
            raise CampaignError("%s: run %d must be an object with name and point, got %s" % (where, i, stats.brief(entry)))
        name = entry.get("name")
        if not isinstance(name, str) or not _RUN_NAME.match(name):
            raise CampaignError("%s: run %d has no valid name (letters, digits, '-', '_'; no dots), got %s"
                                % (where, i, stats.brief(name)))
        if name in seen:
            raise CampaignError("%s: run name %s appears twice" % (where, name))
        seen.add(name)
        point = entry.get("point", {})
        if not isinstance(point, dict):
            raise CampaignError("%s: run %s: point must be an object of sweep variables, got %s"
                                % (where, name, stats.brief(point)))
        for key, value in point.items():
            if isinstance(value, (dict, list)):
                raise CampaignError("%s: run %s: point variable %s must be a single value, got %s"
                                    % (where, name, key, stats.brief(value)))
        out.append({"name": name, "point": dict((k, _scalar_value(v)) for k, v in point.items()),
                    "rep": _scalar_value(entry.get("rep"))})
    return out


def _record_extras(record):
    return dict((k, v) for k, v in record.items() if k not in _STANDARD_KEYS)


def _read_records(what, rdir, paths):
    """({label: record}, {label: path relative to rdir}) of one run's record files {label: path}."""
    labels = dict(RECORD_LABELS)
    records, files = {}, {}
    for label, path in sorted(paths.items()):
        try:
            records[label] = results.read_record(path, kind=labels[label])
        except results.ResultFileError as exc:
            raise CampaignError("%s: %s" % (what, exc)) from None
        files[label] = os.path.relpath(path, rdir)
    return records, files


def load_campaign(results_dir):
    """Read a campaign results directory (see the module docstring).

    Returns {"dir", "campaign", "timestamp", "params", "plan_file", "sweep", "runs", "missing",
    "unplanned", "warnings"}; each run is {"name", "point", "rep", "records" {label: record},
    "files" {label: path relative to the directory}, "artifacts" [relative paths]}, in plan order
    (then name order). ``missing``: planned runs without a migration record (an interrupted
    campaign); ``unplanned``: runs found without a plan entry (their point is read from the
    migration record's extra keys). Raises CampaignError on anything unreadable or inconsistent.
    """
    if not isinstance(results_dir, (str, os.PathLike)) or not os.fspath(results_dir):
        raise CampaignError("results_dir must be a directory path, got %s" % stats.brief(results_dir))
    rdir = os.path.abspath(os.fspath(results_dir))
    if not os.path.isdir(rdir):
        raise CampaignError("results directory %s does not exist or is not a directory" % rdir)
    runs_dir = os.path.join(rdir, RUNS_DIR)
    if not os.path.isdir(runs_dir):
        raise CampaignError("%s has no %s/ directory: not a campaign results directory (docs/campaigns.md)"
                            % (rdir, RUNS_DIR))
    warnings = []
    params = None
    if os.path.exists(os.path.join(rdir, PARAMS_FILE)):
        params = _mapping(_read_json_file(os.path.join(rdir, PARAMS_FILE), PARAMS_FILE), PARAMS_FILE, optional=False)
    plan, plan_file = None, None
    if os.path.exists(os.path.join(rdir, PLAN_FILE)):
        plan_file = PLAN_FILE
        plan = _read_json_file(os.path.join(rdir, PLAN_FILE), PLAN_FILE)
    elif params is not None and "plan" in params:
        plan_file = PARAMS_FILE + " (plan)"
        plan = params["plan"]
    entries = _plan_entries(plan, plan_file) if plan is not None else None

    campaign = None
    for source in (plan if isinstance(plan, dict) else {}, params or {}):
        if source.get("campaign") is not None:
            campaign = source["campaign"]
            break
    if campaign is None:
        campaign = os.path.basename(os.path.dirname(rdir))
    if not isinstance(campaign, str) or not campaign:
        raise CampaignError("the campaign name must be a non-empty string, got %s" % stats.brief(campaign))
    family = FAMILIES.get(campaign)
    declared = None
    for source in (plan if isinstance(plan, dict) else {}, params or {}):
        if source.get("sweep") is not None:
            declared = source["sweep"]
            break
    if declared is None:
        declared = list(family["sweep"]) if family else []
    if isinstance(declared, str):
        declared = [declared]
    if not isinstance(declared, list) or not all(isinstance(v, str) and v for v in declared):
        raise CampaignError("sweep must be a list of variable names, got %s" % stats.brief(declared))

    # Record files, grouped by run.
    try:
        names = sorted(os.listdir(runs_dir))
    except OSError as exc:
        raise CampaignError("cannot list %s: %s" % (runs_dir, exc)) from None
    found = {}
    artifacts = {}
    labels = dict(RECORD_LABELS)
    for fname in names:
        if fname.startswith("."):
            continue  # temporary files of an atomic write in progress
        path = os.path.join(runs_dir, fname)
        rel = os.path.join(RUNS_DIR, fname)
        match = _RECORD_FILE.match(fname)
        if os.path.isdir(path):
            if _RUN_NAME.match(fname):
                for root, dummy, files in os.walk(path):
                    for f in sorted(files):
                        artifacts.setdefault(fname, []).append(os.path.relpath(os.path.join(root, f), rdir))
            continue
        if match and match.group(2) in labels:
            found.setdefault(match.group(1), {})[match.group(2)] = path
        else:
            run = fname.split(".", 1)[0]
            artifacts.setdefault(run, []).append(rel)

    done = dict((run, files) for run, files in found.items() if "migration" in files)
    for run in sorted(set(found) - set(done)):
        warnings.append("run %s has %s but no migration record: left out (interrupted?)"
                        % (run, ", ".join(os.path.join(RUNS_DIR, os.path.basename(p)) for p in found[run].values())))
    if not done:
        raise CampaignError("no migration records (%s/<run>.migration.json) in %s" % (RUNS_DIR, rdir))

    planned = dict((e["name"], e) for e in entries) if entries is not None else {}
    order = [e["name"] for e in entries if e["name"] in done] if entries is not None else []
    unplanned = sorted(set(done) - set(planned)) if entries is not None else []
    order += sorted(set(done) - set(order))
    missing = [e["name"] for e in entries if e["name"] not in done] if entries is not None else []

    runs = []
    for name in order:
        records, files = _read_records("run %s" % name, rdir, done[name])
        extras = _record_extras(records["migration"])
        if "run" in extras and extras["run"] != name:
            raise CampaignError("run %s: its migration record says run %s (%s)"
                                % (name, stats.brief(extras["run"]), files["migration"]))
        entry = planned.get(name)
        if entry is not None:
            point = dict(entry["point"])
            rep = entry["rep"]
            for key, value in point.items():
                if key in extras and not _same_value(extras[key], value):
                    raise CampaignError("run %s: the plan says %s=%s, its migration record %s says %s"
                                        % (name, key, stats.brief(value), files["migration"], stats.brief(extras[key])))
        else:
            point = dict((k, _scalar_value(v)) for k, v in extras.items()
                         if k not in _RUN_KEYS and not isinstance(v, (dict, list)))
            if declared:
                point = dict((k, point.get(k)) for k in declared)
            rep = _scalar_value(extras.get("rep"))
        for key in declared:
            if point.get(key) is None:
                raise CampaignError("run %s: no value for the sweep variable %s (in %s or the record's extra keys of %s)"
                                    % (name, key, plan_file or "a plan", files["migration"]))
        runs.append({"name": name, "point": point, "rep": rep, "records": records, "files": files,
                     "artifacts": sorted(artifacts.get(name, []))})

    # Variables that vary between runs but were not declared count as sweep variables too.
    sweep = list(declared)
    keys = []
    for run in runs:
        keys += [k for k in run["point"] if k not in keys]
    for key in keys:
        if key not in sweep and len(set(json.dumps(r["point"].get(key), sort_keys=True) for r in runs)) > 1:
            sweep.append(key)
            if declared:
                warnings.append("point variable %s varies between runs: treated as a sweep variable" % key)
    if missing:
        warnings.append("%d planned run(s) have no migration record yet: %s" % (len(missing), ", ".join(missing)))
    return {"dir": rdir, "campaign": campaign, "timestamp": os.path.basename(rdir), "params": params,
            "plan_file": plan_file, "sweep": sweep, "runs": runs, "missing": missing, "unplanned": unplanned,
            "warnings": warnings}


# ---------------------------------------------------------------------------------------------
# one run's figures

def _precopy_timing(res, where):
    """Timing and pages from the patched libxenguest's log (results.precopy, precopy_run)."""
    records = res.get("precopy") or []
    if not isinstance(records, list):
        raise CampaignError("%s: results.precopy must be a list, got %s" % (where, stats.brief(records)))
    if not records:
        return None
    for i, rec in enumerate(records):
        if not isinstance(rec, dict) or rec.get("phase") not in ("before", "after"):
            raise CampaignError("%s: results.precopy[%d] is not a policy call record, got %s" % (where, i, stats.brief(rec)))
        for key in ("iteration", "dirty_count", "elapsed_ms"):
            if not _is_number(rec.get(key)):
                raise CampaignError("%s: results.precopy[%d].%s must be a number, got %s"
                                    % (where, i, key, stats.brief(rec.get(key))))
    first = records[0]
    if first["phase"] != "before" or first["iteration"] != 0 or first["dirty_count"] < 1:
        raise CampaignError("%s: results.precopy must start with the iteration-0 before-send call (dirty_count = guest pages)"
                            % where)
    run = _mapping(res.get("precopy_run"), where + ": results.precopy_run")
    start = first["elapsed_ms"]
    pages = first["dirty_count"]
    out = {"guest_pages": pages, "source": "precopy_log", "pass1_ms": None, "live_ms": None, "copy_time_ms": None,
           "stop_copy_ms": None, "pages_sent": None, "dirtied_live": None, "dirtied_pass1": None,
           "dirtied_after1": None, "after1_ms": None,
           "live_passes": None, "policy": run.get("policy"), "params": _mapping(run.get("params"),
                                                                                where + ": precopy_run.params")}
    # Pass k runs from the before-call of iteration k - 1 to the after-call of iteration k; the
    # before-call of iteration k counts the pages dirtied during pass k. Passes 2 .. n - 1 give
    # the unsaturated dirty rate: pass 1 is long enough to saturate the working set, and the last
    # live pass's count is the stop-and-copy batch (of a ballooned guest it also holds the pages
    # the balloon gave back, seen on the lab).
    befores = dict((r["iteration"], r) for r in records if r["phase"] == "before")
    afters = dict((r["iteration"], r) for r in records if r["phase"] == "after")
    middle = [k for k in range(2, max(afters or [0])) if k in befores and k - 1 in befores and k in afters]
    if middle:
        out["dirtied_after1"] = sum(befores[k]["dirty_count"] for k in middle)
        out["after1_ms"] = sum(afters[k]["elapsed_ms"] - befores[k - 1]["elapsed_ms"] for k in middle)
    after1 = [r for r in records if r["phase"] == "after" and r["iteration"] == 1]
    if after1:
        out["pass1_ms"] = after1[0]["elapsed_ms"] - start
    before1 = [r for r in records if r["phase"] == "before" and r["iteration"] == 1]
    live_pages = sum(r["dirty_count"] for r in records if r["phase"] == "before" and r["dirty_count"] > 0)
    final = run.get("final")
    if final is not None:
        final = _mapping(final, where + ": precopy_run.final")
        for key in ("elapsed_ms", "suspend_ms", "dirty_count"):
            if not _is_number(final.get(key)):
                raise CampaignError("%s: precopy_run.final.%s must be a number, got %s"
                                    % (where, key, stats.brief(final.get(key))))
        out["copy_time_ms"] = final["elapsed_ms"] - start
        out["live_ms"] = final["suspend_ms"] - start
        out["stop_copy_ms"] = final["elapsed_ms"] - final["suspend_ms"]
        out["pages_sent"] = live_pages + final["dirty_count"]
        out["dirtied_live"] = out["pages_sent"] - pages
        if before1:
            out["dirtied_pass1"] = before1[0]["dirty_count"]
        elif after1 and len(records) == 2:  # stopped after the first pass
            out["dirtied_pass1"] = final["dirty_count"]
    stop = run.get("stop")
    if isinstance(stop, dict) and _is_number(stop.get("passes")):
        out["live_passes"] = stop["passes"]
    return out


def _progress_timing(res, where):
    """Timing and pages from xl's progress lines (results.iterations, results.phases): coarser."""
    passes = res.get("iterations") or []
    if not isinstance(passes, list):
        raise CampaignError("%s: results.iterations must be a list, got %s" % (where, stats.brief(passes)))
    if not passes:
        return None
    for i, rec in enumerate(passes):
        if not isinstance(rec, dict) or not _is_number(rec.get("total")) or rec.get("phase") not in ("live", "stop_and_copy"):
            raise CampaignError("%s: results.iterations[%d] is not a pass record, got %s" % (where, i, stats.brief(rec)))
        _number(rec.get("t_ms"), "%s: results.iterations[%d].t_ms" % (where, i))
    phases = _mapping(res.get("phases"), where + ": results.phases")
    suspended = _number(phases.get("suspended"), where + ": results.phases.suspended")
    start = passes[0]["t_ms"]
    out = {"guest_pages": passes[0]["total"], "source": "progress", "pass1_ms": None, "live_ms": None,
           "copy_time_ms": None, "stop_copy_ms": None, "pages_sent": sum(p["total"] for p in passes),
           "dirtied_live": sum(p["total"] for p in passes[1:]), "dirtied_pass1": None,
           "live_passes": sum(1 for p in passes if p["phase"] == "live"), "policy": None, "params": {}}
    if len(passes) > 1:
        out["dirtied_pass1"] = passes[1]["total"]
        if start is not None and passes[1]["t_ms"] is not None:
            out["pass1_ms"] = passes[1]["t_ms"] - start
    elif start is not None and suspended is not None:
        out["pass1_ms"] = suspended - start
    if start is not None and suspended is not None:
        out["live_ms"] = suspended - start
    return out


def _policy_limits(policy, params):
    """(max_iterations, target_dirty_count) of the policy that ran, from its logged settings or defaults."""
    name = POLICY_ALIASES.get(policy, policy)
    limits = {}
    try:
        defaults = stop_policy.make_policy(name)
        limits = {"max_iterations": defaults.max_iterations, "target_dirty_count": defaults.target_dirty_count}
    except ValueError:
        limits = {"max_iterations": None, "target_dirty_count": None}
    for key in limits:
        if _is_number(params.get(key)):
            limits[key] = params[key]
    return limits["max_iterations"], limits["target_dirty_count"]


def _voip_figures(record, where):
    res = record["results"]
    summary = _mapping(res.get("summary"), where + ": results.summary")
    streams = res.get("streams") or []
    if not isinstance(streams, list):
        raise CampaignError("%s: results.streams must be a list, got %s" % (where, stats.brief(streams)))
    out = {
        "mos_f1": _number(summary.get("mos_f1_min"), where + ": results.summary.mos_f1_min"),
        "mos_f2": _number(summary.get("mos_f2_min"), where + ": results.summary.mos_f2_min"),
        "mos_adaptive": _number(summary.get("mos_adaptive_min"), where + ": results.summary.mos_adaptive_min"),
        "jitter_max_ms": _number(summary.get("jitter_max_ms"), where + ": results.summary.jitter_max_ms"),
        "packets_lost": _number(summary.get("lost"), where + ": results.summary.lost"),
    }
    for group, keys in (("loss_runs", LOSS_RUN_KEYS), ("pdv", PDV_KEYS)):
        totals = dict((k, 0) for k in keys)
        for i, stream in enumerate(streams):
            bucket = _mapping(stream.get(group) if isinstance(stream, dict) else stream,
                              "%s: results.streams[%d].%s" % (where, i, group))
            for key in keys:
                totals[key] += _number(bucket.get(key, 0), "%s: results.streams[%d].%s.%s" % (where, i, group, key)) or 0
        if streams:
            out.update(totals)
    return out


def run_figures(run, overhead_ms=0.0, downtime_overhead_ms=None):
    """The figures of one run of load_campaign (a dict: run, rep, point, METRICS, sources, artifacts, ...).

    Timing comes from the patched libxenguest's log when the record has it (``timing_source``
    precopy_log), else from xl's progress lines (progress: pass starts as xl printed them, no
    stop-and-copy time). The model's prediction (:func:`model_figures`, with these betas) is
    added. Raises CampaignError when a record's values are not numbers or give figures out of range.
    """
    try:
        fig = _run_figures(run, overhead_ms, downtime_overhead_ms)
    except (OverflowError, ZeroDivisionError) as exc:
        raise CampaignError("run %s: its records' values are out of range (%s)" % (run["name"], exc)) from None
    bad = [k for k in METRIC_NAMES if fig[k] is not None and not _is_number(fig[k])]
    if bad:
        raise CampaignError("run %s: %s out of range (%s): check the values in %s"
                            % (run["name"], ", ".join(bad), ", ".join(_text(fig[k]) for k in bad), " ".join(fig["sources"])))
    return fig


def _run_figures(run, overhead_ms, downtime_overhead_ms):
    name = run["name"]
    mig = run["records"]["migration"]
    where = "run %s (%s)" % (name, run["files"]["migration"])
    res = mig["results"]
    fig = dict((k, None) for k in METRIC_NAMES)
    fig.update(run=name, rep=run.get("rep"))
    fig["migration_time_ms"] = _number(res.get("total_time_ms"), where + ": results.total_time_ms")
    fig["toolstack_downtime_ms"] = _number(res.get("downtime_estimate_ms"), where + ": results.downtime_estimate_ms")
    timing = _precopy_timing(res, where) or _progress_timing(res, where)
    mparams = _mapping(mig.get("params"), where + ": params")
    policy = (timing or {}).get("policy") or mparams.get("policy")
    if policy is None and mparams.get("toolstack") == "xm":
        policy = "xen34"  # xend's own rules (Xen 3.x), as in the thesis
    fig["policy_ran"] = POLICY_ALIASES.get(policy, policy)
    fig["timing_source"] = timing["source"] if timing else None
    if timing:
        for key in ("guest_pages", "pass1_ms", "copy_time_ms", "stop_copy_ms", "pages_sent", "live_passes"):
            fig[key] = timing[key]
        if fig["copy_time_ms"] is not None and fig["pass1_ms"] is not None:
            fig["after_first_ms"] = fig["copy_time_ms"] - fig["pass1_ms"]
        fig["first_pass_pct"] = _ratio_pct(fig["pass1_ms"], fig["migration_time_ms"])
        if fig["pass1_ms"] and fig["pass1_ms"] > 0:
            fig["bandwidth_mbps"] = pages_to_mbit(fig["guest_pages"]) / (fig["pass1_ms"] / 1000.0)
            if timing["dirtied_pass1"] is not None:
                fig["dirty_rate_pass1_mbps"] = pages_to_mbit(timing["dirtied_pass1"]) / (fig["pass1_ms"] / 1000.0)
        if timing["live_ms"] and timing["live_ms"] > 0 and timing["dirtied_live"] is not None:
            fig["dirty_rate_mbps"] = pages_to_mbit(timing["dirtied_live"]) / (timing["live_ms"] / 1000.0)
        if timing.get("after1_ms") and timing["after1_ms"] > 0:
            fig["dirty_rate_after1_mbps"] = pages_to_mbit(timing["dirtied_after1"]) / (timing["after1_ms"] / 1000.0)
        fig["wws_pages"] = timing["dirtied_pass1"]
        fig["max_iterations"], fig["target_dirty_count"] = _policy_limits(fig["policy_ran"], timing["params"])
    else:
        fig["max_iterations"], fig["target_dirty_count"] = _policy_limits(fig["policy_ran"], {})

    records = run["records"]
    if "probe" in records:
        pwhere = "run %s (%s)" % (name, run["files"]["probe"])
        pres = records["probe"]["results"]
        fig["downtime_ms"] = _number(pres.get("downtime_ms"), pwhere + ": results.downtime_ms")
        fig["longest_gap_ms"] = _number(pres.get("longest_gap_ms"), pwhere + ": results.longest_gap_ms")
        ping = pres.get("ping_statistics")
        if ping is not None:
            fig["ping_rtt_ms"] = _number(_mapping(ping, pwhere + ": results.ping_statistics").get("rtt_avg_ms"),
                                         pwhere + ": results.ping_statistics.rtt_avg_ms")
    if "sipp" in records:
        swhere = "run %s (%s)" % (name, run["files"]["sipp"])
        sres = records["sipp"]["results"]
        fig["sip_response_ms"] = _number(sres.get("response_time_mean_ms"), swhere + ": results.response_time_mean_ms")
        fig["failed_calls"] = _number(sres.get("calls_failed"), swhere + ": results.calls_failed")
        fig["calls_total"] = _number(sres.get("calls_total"), swhere + ": results.calls_total")
    if "smtp" in records:
        mwhere = "run %s (%s)" % (name, run["files"]["smtp"])
        mres = records["smtp"]["results"]
        resp = mres.get("response_ms")
        if resp is not None:
            fig["mail_response_ms"] = _number(_mapping(resp, mwhere + ": results.response_ms").get("mean"),
                                              mwhere + ": results.response_ms.mean")
        fig["failed_mails"] = _number(mres.get("failed_mails"), mwhere + ": results.failed_mails")
    if "voip" in records:
        fig.update(_voip_figures(records["voip"], "run %s (%s)" % (name, run["files"]["voip"])))
    fig.update(model_figures(fig, overhead_ms, downtime_overhead_ms))
    fig["point"] = dict(run["point"])
    fig["sources"] = [run["files"][label] for label, dummy in RECORD_LABELS if label in run["files"]]
    fig["artifacts"] = list(run.get("artifacts", []))
    return fig


def model_figures(fig, overhead_ms=0.0, downtime_overhead_ms=None):
    """The pre-copy model's prediction for one run from its measured B, p, W, P and stop limits.

    M = guest_pages x 4096 bytes (decimal MB), B = bandwidth_mbps (first pass), p =
    dirty_rate_after1_mbps (the passes after the first, the last left out; dirty_rate_mbps when
    there are none), W = wws_pages (dirtied during the first pass; docs/precopy.md, "Working set"),
    h = target_dirty_count pages (at least 1), N = max_iterations + 1 rounds, beta = overhead_ms
    on the migration time and ``downtime_overhead_ms`` (default: overhead_ms) on the downtime.
    The thesis's own form (one constant rate dirty_rate_mbps, no W) is given beside it as
    model_const_*. Returns the model_* figures of METRICS (None where an input is missing or out
    of range).
    """
    out = dict((k, None) for k in METRIC_NAMES if k.startswith("model_"))
    beta_s = _number(overhead_ms, "overhead_ms")
    if beta_s is None or beta_s < 0:
        raise CampaignError("overhead_ms must be a number >= 0, got %s" % stats.brief(overhead_ms))
    beta_down_s = beta_s if downtime_overhead_ms is None else _number(downtime_overhead_ms, "downtime_overhead_ms")
    if beta_down_s is None or beta_down_s < 0:
        raise CampaignError("downtime_overhead_ms must be a number >= 0, got %s" % stats.brief(downtime_overhead_ms))
    beta_s /= 1000.0
    beta_down_s /= 1000.0
    pages, bandwidth, rate_all = fig.get("guest_pages"), fig.get("bandwidth_mbps"), fig.get("dirty_rate_mbps")
    rate = fig.get("dirty_rate_after1_mbps")
    if rate is None:
        rate = rate_all
    max_it, target = fig.get("max_iterations"), fig.get("target_dirty_count")
    if None in (pages, bandwidth, rate, max_it, target) or bandwidth <= 0 or rate < 0:
        return out
    wws_mb = fig["wws_pages"] * PAGE_SIZE / 1e6 if fig.get("wws_pages") else None
    params = {"memory_mb": pages * PAGE_SIZE / 1e6, "bandwidth_mbps": bandwidth, "dirty_rate_mbps": rate,
              "threshold_kb": max(target, 1) * PAGE_SIZE / 1000.0, "max_iterations": int(max_it) + 1,
              "overhead_s": beta_s, "downtime_overhead_s": beta_down_s}
    if wws_mb is not None:
        params["wws_mb"] = wws_mb
    try:
        pred = precopy.predict(params)
        const = None
        if rate_all is not None and rate_all >= 0:
            const = precopy.migration_time(params["memory_mb"], bandwidth, rate_all, params["threshold_kb"],
                                           params["max_iterations"]) + beta_s
        eq9 = None
        if pred["iterations"] == params["max_iterations"] and precopy.above_convergence_limit(
                params["memory_mb"], bandwidth, rate, params["threshold_kb"], params["max_iterations"]):
            eq9 = precopy.exponential_downtime(params["memory_mb"], bandwidth, rate, params["max_iterations"]) + beta_down_s
    except ValueError:
        return out
    out.update({
        "model_memory_mb": params["memory_mb"],
        "model_threshold_kb": params["threshold_kb"],
        "model_max_rounds": params["max_iterations"],
        "model_dirty_rate_mbps": rate,
        "model_wws_mb": wws_mb,
        "model_overhead_ms": beta_s * 1000.0,
        "model_downtime_overhead_ms": beta_down_s * 1000.0,
        "model_rounds": pred["iterations"],
        "model_copy_time_ms": (pred["migration_time_s"] - beta_s) * 1000.0,
        "model_migration_time_ms": pred["migration_time_s"] * 1000.0,
        "model_downtime_ms": pred["downtime_s"] * 1000.0,
        "model_downtime_bound_ms": pred["downtime_bound_s"] * 1000.0,
        "model_eq9_downtime_ms": None if eq9 is None else eq9 * 1000.0,
        "model_const_migration_time_ms": None if const is None else const * 1000.0,
    })
    out["model_migration_time_error_pct"] = error_pct(out["model_migration_time_ms"], fig.get("migration_time_ms"))
    out["model_const_migration_time_error_pct"] = error_pct(out["model_const_migration_time_ms"], fig.get("migration_time_ms"))
    out["model_copy_time_error_pct"] = error_pct(out["model_copy_time_ms"], fig.get("copy_time_ms"))
    out["model_downtime_error_pct"] = error_pct(out["model_downtime_ms"], fig.get("downtime_ms"))
    out["model_stop_copy_error_pct"] = error_pct(out["model_downtime_ms"] - beta_down_s * 1000.0, fig.get("stop_copy_ms"))
    return out


# ---------------------------------------------------------------------------------------------
# aggregation

def _sort_key(value):
    if _is_number(value):
        return (0, float(value), "")
    return (1, 0.0, json.dumps(value, sort_keys=True))


def point_label(point, sweep):
    return ";".join("%s=%s" % (k, _text(point.get(k))) for k in sweep)


def aggregate(figures, sweep):
    """Group run figures by sweep point: [{point, label, runs, metrics {name: {n, median, mean, min, max, runs}}}].

    Points are sorted by their sweep values (numbers numerically, in sweep order); without sweep
    variables all runs form one point. A metric's ``runs`` lists the runs that had a value for it.
    """
    groups = []
    index = {}
    for fig in figures:
        point = dict((k, fig.get("point", {}).get(k)) for k in sweep)
        key = json.dumps([point.get(k) for k in sweep], sort_keys=True)
        if key not in index:
            index[key] = len(groups)
            groups.append({"point": point, "label": point_label(point, sweep), "figs": []})
        groups[index[key]]["figs"].append(fig)
    groups.sort(key=lambda g: [_sort_key(g["point"].get(k)) for k in sweep])
    out = []
    for group in groups:
        metrics = {}
        for name in METRIC_NAMES:
            pairs = [(f["run"], f.get(name)) for f in group["figs"] if f.get(name) is not None]
            if pairs:
                entry = describe([v for dummy, v in pairs])
                entry["runs"] = [r for r, dummy in pairs]
                metrics[name] = entry
        out.append({"point": group["point"], "label": group["label"], "runs": [f["run"] for f in group["figs"]],
                    "metrics": metrics})
    return out


def _text(value):
    """A value as CSV/Markdown text: repr for floats (exact round trip), '' for None."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def summary_columns(sweep):
    return ["campaign", "point"] + list(sweep) + ["metric", "n", "median", "mean", "min", "max", "runs"]


def summary_rows(campaign, points, sweep):
    """summary.csv's rows (dicts): one per sweep point and metric with a value."""
    rows = []
    for point in points:
        for name in METRIC_NAMES:
            entry = point["metrics"].get(name)
            if not entry:
                continue
            row = {"campaign": campaign, "point": point["label"], "metric": name, "runs": " ".join(entry["runs"])}
            for key in sweep:
                row[key] = point["point"].get(key)
            for key in STAT_FIELDS:
                row[key] = entry[key]
            rows.append(row)
    return rows


def _csv_text(columns, rows):
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_text(row.get(c)) for c in columns])
    return buf.getvalue()


def summary_csv(campaign, points, sweep):
    return _csv_text(summary_columns(sweep), summary_rows(campaign, points, sweep))


def runs_columns(sweep):
    return ["run", "rep"] + list(sweep) + ["policy_ran", "timing_source", "max_iterations", "target_dirty_count"] + \
        list(METRIC_NAMES) + ["sources", "artifacts"]


def runs_csv(figures, sweep):
    """runs.csv: one row per run with every figure and the record files it was derived from."""
    rows = []
    for fig in figures:
        row = dict(fig)
        for key in sweep:
            row[key] = fig.get("point", {}).get(key)
        row["sources"] = " ".join(fig["sources"])
        row["artifacts"] = " ".join(fig["artifacts"])
        rows.append(row)
    return _csv_text(runs_columns(sweep), rows)


# ---------------------------------------------------------------------------------------------
# trends and the thesis

def load_thesis(path):
    """The variables of playbooks/vars/thesis_tables.yml (needs PyYAML, which Ansible brings)."""
    try:
        import yaml  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise CampaignError("reading %s needs PyYAML (python3-yaml)" % path) from None
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as exc:
        raise CampaignError("cannot read the thesis tables %s: %s" % (path, exc)) from None
    except yaml.YAMLError as exc:
        raise CampaignError("the thesis tables %s are not valid YAML: %s" % (path, exc)) from None
    if not isinstance(data, dict) or not any(str(k).startswith("thesis_") for k in data):
        raise CampaignError("%s holds no thesis_* variables (expected playbooks/vars/thesis_tables.yml)" % path)
    return data


def trend(xs, ys, tolerance_pct=DEFAULT_FLAT_TOLERANCE_PCT):
    """Direction of the least-squares line through (x, y): {slope, change_pct, direction}.

    change_pct = slope x (x range) / mean |y| x 100, the line's rise over the sweep relative to
    the values; ``direction`` is 'rises', 'falls', or 'flat' when |change_pct| < tolerance_pct.
    None when fewer than two distinct x carry a y.
    """
    pairs = [(float(x), float(y)) for x, y in zip(xs, ys) if _is_number(x) and _is_number(y)]
    if len(set(x for x, dummy in pairs)) < 2:
        return None
    dummy, slope = stats.linear_fit([x for x, dummy in pairs], [y for dummy, y in pairs])
    span = max(x for x, dummy in pairs) - min(x for x, dummy in pairs)
    level = stats.mean([abs(y) for dummy, y in pairs])
    rise = None if level == 0 else 100.0 * slope * span / level
    if slope == 0 or (rise is not None and abs(rise) < tolerance_pct):
        direction = "flat"
    else:
        direction = "rises" if slope > 0 else "falls"
    return {"slope": slope, "change_pct": rise, "direction": direction, "points": len(pairs)}


def change(before, after, tolerance_pct=DEFAULT_FLAT_TOLERANCE_PCT):
    """Direction of a change between two conditions: {change_pct, direction 'higher'/'lower'/'same'}.

    change_pct is None when ``before`` is 0 (the direction then follows the sign of ``after``).
    """
    if before is None or after is None:
        return None
    if before == 0:
        pct = None
        direction = "same" if after == 0 else ("higher" if after > 0 else "lower")
    else:
        pct = 100.0 * (after - before) / abs(before)
        direction = "same" if abs(pct) < tolerance_pct else ("higher" if pct > 0 else "lower")
    return {"change_pct": pct, "direction": direction}


def _fmt(value, digits=None):
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not _is_number(value):
        return str(value)
    if digits is not None:
        return "%.*f" % (digits, value)
    if isinstance(value, int) or float(value).is_integer():
        return "%d" % value
    mag = abs(value)
    if mag >= 100:
        return "%.0f" % value
    if mag >= 10:
        return "%.1f" % value
    return "%.2f" % value


def _pct(value):
    if value is None:
        return "-"
    return "%+.1f %%" % value


def compare_trend(label, x_name, ours, thesis, other="the thesis"):
    """A sentence comparing two trend()s (either may be None) and whether the direction was reproduced.

    ``other`` names the second side (the thesis, or the model for the guest-size sweep).
    """
    verdict = None
    if ours is None and thesis is None:
        text = "%s: no trend in ours or %s (fewer than two points)." % (label, other)
    elif ours is None:
        text = "%s %s with %s in %s (%s over its sweep); ours has fewer than two points with a value." % (
            label, thesis["direction"], x_name, other, _pct(thesis["change_pct"]))
    elif thesis is None:
        text = "%s %s with %s in ours (%s over the sweep); %s gives no trend to compare." % (
            label, ours["direction"], x_name, _pct(ours["change_pct"]), other)
    else:
        verdict = ours["direction"] == thesis["direction"]
        text = "%s %s with %s in ours (%s over the sweep, slope %s per unit) and %s in %s (%s, slope %s): %s." % (
            label, ours["direction"], x_name, _pct(ours["change_pct"]), _fmt(ours["slope"]), thesis["direction"],
            other, _pct(thesis["change_pct"]), _fmt(thesis["slope"]), "reproduced" if verdict else "not reproduced")
    return {"metric": label, "ours": ours, "thesis": thesis, "reproduced": verdict, "text": text}


def compare_change(label, condition, ours, thesis):
    """Like compare_trend for a change between two conditions (change() results)."""
    verdict = None
    if ours is None and thesis is None:
        text = "%s: neither ours nor the thesis has both conditions." % label
    elif ours is None:
        text = "%s: %s in the thesis (%s) %s; ours lacks one of the two conditions." % (
            label, thesis["direction"], _pct(thesis["change_pct"]), condition)
    elif thesis is None:
        text = "%s: %s in ours (%s) %s; the thesis gives no figure to compare." % (
            label, ours["direction"], _pct(ours["change_pct"]), condition)
    else:
        verdict = ours["direction"] == thesis["direction"]
        text = "%s: %s in ours (%s) and %s in the thesis (%s) %s: %s." % (
            label, ours["direction"], _pct(ours["change_pct"]), thesis["direction"], _pct(thesis["change_pct"]),
            condition, "reproduced" if verdict else "not reproduced")
    return {"metric": label, "ours": ours, "thesis": thesis, "reproduced": verdict, "text": text}


def _med(point, metric):
    entry = point["metrics"].get(metric) if point else None
    return entry["median"] if entry else None


def _n_runs(point):
    return len(point["runs"])


def _pick_metric(points, candidates):
    for name in candidates:
        if any(p["metrics"].get(name) for p in points):
            return name
    return candidates[0]


def _thesis_rows(thesis, key):
    rows = (thesis or {}).get(key)
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def _thesis_by(rows, key):
    out = {}
    for row in rows:
        if _is_number(row.get(key)):
            out[float(row[key])] = row
    return out


def _xy_series(points, x_key, metric):
    xs, ys, lo, hi = [], [], [], []
    for p in points:
        x = p["point"].get(x_key)
        entry = p["metrics"].get(metric)
        if _is_number(x) and entry:
            xs.append(x)
            ys.append(entry["median"])
            lo.append(entry["min"])
            hi.append(entry["max"])
    return {"x": xs, "y": ys, "lo": lo, "hi": hi}


def _section(sid, title):
    return {"id": sid, "title": title, "tables": [], "notes": [], "trends": [], "plots": [], "facts": {}}


def _sweep_section(sid, title, points, x_key, x_label, columns, thesis_rows, thesis_x, tolerance, plot_file):
    """A table of ours-vs-thesis columns over a numeric sweep, its trends and its plot.

    columns: [(label, our metric, thesis key or None)].
    """
    sec = _section(sid, title)
    by_x = _thesis_by(thesis_rows, thesis_x)
    head = [x_label]
    for label, dummy, tkey in columns:
        head += ["%s (ours)" % label] + (["%s (thesis)" % label] if tkey else [])
    head += ["n", "runs"]
    rows = []
    ours_x = set()
    for p in points:
        x = p["point"].get(x_key)
        ours_x.add(float(x) if _is_number(x) else x)
        trow = by_x.get(float(x)) if _is_number(x) else None
        row = [_fmt(x)]
        for dummy, metric, tkey in columns:
            row.append(_fmt(_med(p, metric)))
            if tkey:
                row.append(_fmt(trow.get(tkey)) if trow else "-")
        row += [str(_n_runs(p)), " ".join(p["runs"])]
        rows.append(row)
    for x in sorted(set(by_x) - ours_x):
        trow = by_x[x]
        row = [_fmt(x)]
        for dummy, metric, tkey in columns:
            row.append("-")
            if tkey:
                row.append(_fmt(trow.get(tkey)))
        row += ["0", ""]
        rows.append(row)
    rows.sort(key=lambda r: _sort_key(_scalar_value(r[0])))
    sec["tables"].append({"title": None, "columns": head, "rows": rows})
    panels = []
    for label, metric, tkey in columns:
        ours = _xy_series(points, x_key, metric)
        t_pairs = [(float(x), r.get(tkey)) for x, r in sorted(by_x.items()) if tkey and _is_number(r.get(tkey))]
        t_trend = trend([x for x, dummy in t_pairs], [y for dummy, y in t_pairs], tolerance) if tkey else None
        sec["trends"].append(compare_trend(label, x_label, trend(ours["x"], ours["y"], tolerance), t_trend))
        series = [dict(ours, label="ours (median, min-max)", axis="left")]
        if t_pairs:
            series.append({"label": "thesis", "x": [x for x, dummy in t_pairs], "y": [y for dummy, y in t_pairs],
                           "axis": "right"})
        panels.append({"kind": "xy", "title": label, "x_label": x_label, "y_label": label, "series": series})
    sec["plots"].append({"file": plot_file, "title": title, "panels": panels})
    return sec


def _downtime_note(metric):
    if metric == "downtime_ms":
        return "Downtime: the probe's Eq. 14 figure (unanswered probes x interval), as the thesis measured it with ping."
    return ("Downtime: no probe record, so xl's suspend-to-started time (toolstack_downtime_ms), which includes the "
            "destination's device hotplug, stands in for the thesis's ping figure.")


def section_table2(points, thesis, tolerance):
    down = _pick_metric(points, ("downtime_ms", "toolstack_downtime_ms"))
    sec = _sweep_section("table2", "Table 2: dirty rate, downtime and failed calls against the SIPp call length",
                         points, "call_length_s", "call length s",
                         [("dirty rate Mbps", "dirty_rate_mbps", "dirty_rate_mbps"), ("downtime ms", down, "downtime_ms"),
                          ("failed calls", "failed_calls", "failed_calls")],
                         _thesis_rows(thesis, "thesis_table2"), "call_length_s", tolerance, "table2.png")
    sec["notes"] += [_downtime_note(down),
                     "Dirty rate: pages dirtied during the live passes over their duration (Xen's 'dirtied Mb/s'); "
                     "failed calls: SIPp's FailedCall count over the whole run."]
    limit = (thesis or {}).get("thesis_table2_max_concurrent_calls")
    if limit:
        sec["notes"].append("The thesis's Asterisk held at most %s simultaneous calls; at d = 30 s every call failed "
                            "even without a migration, so its failed-calls trend is dominated by overload." % limit)
    return sec


def _optimal_cap_rows(points, down, resp):
    rows = []
    for p in points:
        cap, d, r = p["point"].get("cap"), _med(p, down), _med(p, resp)
        if _is_number(cap) and d is not None and r is not None:
            rows.append({"cap": cap, "downtime_ms": d, "response_ms": r})
    return rows


def section_table3_4(points, thesis, tolerance, response_metric=None):
    down = _pick_metric(points, ("downtime_ms", "toolstack_downtime_ms"))
    resp = response_metric or _pick_metric(points, RESPONSE_METRICS)
    iters = dict((r.get("cap"), r) for r in _thesis_rows(thesis, "thesis_iterations_by_cap"))
    t3 = [dict(r, iterations=(iters.get(r.get("cap")) or {}).get("iterations")) for r in _thesis_rows(thesis, "thesis_table3")]
    sec = _sweep_section("table3", "Table 3: downtime, dirty rate and response time against the credit cap",
                         points, "cap", "cap %",
                         [("downtime ms", down, "downtime_ms"), ("dirty rate Mbps", "dirty_rate_mbps", "dirty_rate_mbps"),
                          ("response ms", resp, "response_ms"), ("live passes", "live_passes", "iterations")],
                         t3, "cap", tolerance, "table3.png")
    sec["notes"] += [_downtime_note(down),
                     "Response time: %s (%s). The thesis's is the ping response time of the VoIP VM (section 5.3)."
                     % (resp, dict(METRICS).get(resp, "")),
                     "Live passes: ours are the pre-copy passes before the stop-and-copy; the thesis's are its iteration "
                     "counts (caps 20-30 stopped on < 50 pages, 35-100 ran all 29)."]
    if any(p["point"].get("cap") == 0 for p in points):
        sec["notes"].append("Cap 0 means no cap in Xen; the thesis writes the default as cap 100, so sweep cap 100 "
                            "for a row comparable with the thesis's last one.")
    # Table 4: optimal_cap on the measured medians (precopy.optimal_cap, the filter's code).
    rows = _optimal_cap_rows(points, down, resp)
    t4 = (thesis or {}).get("thesis_table4") or {}
    weight = t4.get("downtime_weight", 0.05) if _is_number(t4.get("downtime_weight")) else 0.05
    t4_by_cap = {}
    for i, cap in enumerate(t4.get("caps") or []):
        try:
            t4_by_cap[cap] = (t4["response_trend_ms"][i], t4["weighted_downtime_trend_ms"][i], t4["max_comparison_ms"][i])
        except (KeyError, IndexError, TypeError):
            pass
    sec4 = _section("table4", "Table 4: choosing the cap from the trend lines (optimal_cap)")
    if len(rows) < 2:
        sec4["notes"].append("Fewer than two caps have both a downtime and a response time: no trend lines, no choice.")
        return [sec, sec4]
    try:
        ours = precopy.optimal_cap(rows, downtime_weight=weight, trend_over="index")
        by_value = precopy.optimal_cap(rows, downtime_weight=weight, trend_over="cap")
    except ValueError as exc:
        sec4["notes"].append("optimal_cap cannot use the measured rows: %s" % exc)
        return [sec, sec4]
    head = ["cap %", "response trend ms (ours)", "response trend ms (thesis)", "weighted downtime trend ms (ours)",
            "weighted downtime trend ms (thesis)", "larger of the two (ours)", "larger of the two (thesis)"]
    trows = []
    for r in ours["rows"]:
        t = t4_by_cap.get(r["cap"])
        trows.append([_fmt(r["cap"]), _fmt(r["response_trend_ms"]), _fmt(t[0]) if t else "-",
                      _fmt(r["weighted_downtime_trend_ms"]), _fmt(t[1]) if t else "-", _fmt(r["score_ms"]),
                      _fmt(t[2]) if t else "-"])
    sec4["tables"].append({"title": None, "columns": head, "rows": trows})
    thesis_cap = t4.get("optimal_cap")
    sec4["facts"] = {"optimal_cap": ours["cap"], "optimal_cap_by_value": by_value["cap"], "thesis_optimal_cap": thesis_cap,
                     "downtime_weight": weight, "response_metric": resp, "downtime_metric": down}
    same_caps = sorted(r["cap"] for r in rows) == sorted(t4_by_cap)
    sec4["notes"] += [
        "Chosen cap (lines over the row positions, as the thesis's spreadsheet; downtime weighted by %s): ours %s, the "
        "thesis's %s: %s." % (_fmt(weight), _fmt(ours["cap"]), _fmt(thesis_cap),
                              "the same" if thesis_cap is not None and float(ours["cap"]) == float(thesis_cap) else "different"),
        "With the lines fitted over the cap values instead, ours would be %s." % _fmt(by_value["cap"]),
    ]
    if not same_caps:
        sec4["notes"].append("Our caps are not the thesis's eight, so the row-position trend values are not comparable "
                             "one to one; the chosen cap is.")
    mean_d = stats.mean([r["downtime_ms"] for r in rows]) * weight
    mean_r = stats.mean([r["response_ms"] for r in rows])
    sec4["notes"].append("The 0.05 weight balanced the thesis's ~1000 ms downtimes against ~35 ms response times; ours "
                         "average %s ms weighted downtime against %s ms response, so %s dominates the choice."
                         % (_fmt(mean_d), _fmt(mean_r), "the downtime" if mean_d > mean_r else "the response time"))
    caps = [r["cap"] for r in ours["rows"]]
    sec4["plots"].append({"file": "table4.png", "title": sec4["title"], "panels": [{
        "kind": "xy", "title": "trend lines (ours); chosen cap %s" % _fmt(ours["cap"]), "x_label": "cap %",
        "y_label": "ms", "series": [
            {"label": "response trend", "x": caps, "y": [r["response_trend_ms"] for r in ours["rows"]], "axis": "left"},
            {"label": "weighted downtime trend", "x": caps, "y": [r["weighted_downtime_trend_ms"] for r in ours["rows"]],
             "axis": "left"},
            {"label": "response (measured)", "x": caps, "y": [r["response_ms"] for r in rows], "axis": "left",
             "style": "points"},
            {"label": "downtime x %s (measured)" % _fmt(weight), "x": caps, "y": [r["downtime_ms"] * weight for r in rows],
             "axis": "left", "style": "points"}],
        "vline": ours["cap"]}]})
    return [sec, sec4]


def _by_condition(points, key):
    out = {}
    for p in points:
        out[str(_scalar_value(p["point"].get(key)))] = p
    return out


def section_table5_6(points, thesis, tolerance, figures=None):
    sec = _section("table5_6", "Tables 5-6: migration time and iterative copying time, xen34 (default) against sd")
    by = _by_condition(points, "policy")
    t5 = (thesis or {}).get("thesis_table5") or {}
    t6 = (thesis or {}).get("thesis_table6") or {}

    def tget(block, key, which):
        value = (block.get(key) or {}) if isinstance(block.get(key), dict) else {}
        return value.get(which)

    head = ["policy", "migration time ms (ours)", "migration time ms (thesis)", "first pass ms (ours)",
            "first pass ms (thesis)", "first pass % (ours)", "first pass % (thesis)", "after first pass ms (ours)",
            "after first pass ms (thesis)", "live passes (ours)", "iterations (thesis)", "n", "runs"]
    rows = []
    conditions = (("xen34", "default"), ("sd", "sd_tracking"))
    for policy, tkey in conditions:
        p = by.get(policy)
        rows.append([policy, _fmt(_med(p, "migration_time_ms")), _fmt(tget(t5, "migration_time_ms", tkey)),
                     _fmt(_med(p, "pass1_ms")), _fmt(tget(t5, "first_iteration_ms", tkey)),
                     _fmt(_med(p, "first_pass_pct")), _fmt(tget(t5, "first_iteration_percent", tkey)),
                     _fmt(_med(p, "after_first_ms")), _fmt(tget(t6, "time_after_first_iteration_ms", tkey)),
                     _fmt(_med(p, "live_passes")), _fmt(tget(t5, "iterations", tkey)),
                     str(_n_runs(p)) if p else "0", " ".join(p["runs"]) if p else ""])
    others = [k for k in by if k not in ("xen34", "sd")]
    for policy in others:
        p = by[policy]
        rows.append([policy, _fmt(_med(p, "migration_time_ms")), "-", _fmt(_med(p, "pass1_ms")), "-",
                     _fmt(_med(p, "first_pass_pct")), "-", _fmt(_med(p, "after_first_ms")), "-",
                     _fmt(_med(p, "live_passes")), "-", str(_n_runs(p)), " ".join(p["runs"])])
    sec["tables"].append({"title": None, "columns": head, "rows": rows})
    base, new = by.get("xen34"), by.get("sd")
    for label, metric, tblock, tkey in (("migration time", "migration_time_ms", t5, "migration_time_ms"),
                                        ("time after the first pass", "after_first_ms", t6, "time_after_first_iteration_ms"),
                                        ("first pass", "pass1_ms", t5, "first_iteration_ms")):
        ours = change(_med(base, metric), _med(new, metric), tolerance)
        th = change(tget(tblock, tkey, "default"), tget(tblock, tkey, "sd_tracking"), tolerance)
        sec["trends"].append(compare_change(label, "from xen34 to sd", ours, th))
    red_ours = [None if c is None else -c["change_pct"] for c in
                (change(_med(base, "migration_time_ms"), _med(new, "migration_time_ms"), tolerance),
                 change(_med(base, "after_first_ms"), _med(new, "after_first_ms"), tolerance))]
    sec["facts"] = {"migration_time_reduction_pct": red_ours[0], "after_first_reduction_pct": red_ours[1],
                    "thesis_migration_time_reduction_pct": t5.get("reduction_percent"),
                    "thesis_after_first_reduction_pct": t6.get("reduction_percent")}
    sec["notes"] += [
        "Reduction by sd (negative: longer): migration time %s %% (thesis %s %%), time after the first pass %s %% "
        "(thesis %s %%)." % (_fmt(red_ours[0], 2), _fmt(t5.get("reduction_percent"), 2), _fmt(red_ours[1], 2),
                             _fmt(t6.get("reduction_percent"), 2)),
        "Migration time: xl's wall clock (all phases); first pass and after-first times from the patched "
        "libxenguest's log. Our first pass % is of the run's own migration time; the thesis's are both shares of "
        "the default's 13441 ms.",
    ]
    if t5.get("cap") is not None:
        caps = sorted(set(_fmt(f["point"].get("cap")) for f in figures or [] if f["point"].get("cap") is not None))
        sec["notes"].append("The thesis ran both at cap %s%s." % (t5["cap"], "; ours at cap %s" % ", ".join(caps) if caps else ""))
    cats = [c for c, dummy in conditions] + others
    panels = []
    for label, metric, tblock, tkey in (("migration time ms", "migration_time_ms", t5, "migration_time_ms"),
                                        ("after first pass ms", "after_first_ms", t6, "time_after_first_iteration_ms")):
        tvals = {"xen34": tget(tblock, tkey, "default"), "sd": tget(tblock, tkey, "sd_tracking")}
        panels.append({"kind": "bars", "title": label, "y_label": label, "categories": cats, "series": [
            {"label": "ours (median)", "values": [_med(by.get(c), metric) for c in cats], "axis": "left"},
            {"label": "thesis", "values": [tvals.get(c) for c in cats], "axis": "right"}]})
    sec["plots"].append({"file": "table5_6.png", "title": sec["title"], "panels": panels})
    return [sec]


def section_table7_9(points, thesis, tolerance):
    sec = _section("table7_9", "Tables 7-9: call quality during the migration, cap 100 (default) against cap 35")
    by = {}
    for p in points:
        cap = p["point"].get("cap")
        by[float(cap) if _is_number(cap) else cap] = p
    trows = _thesis_rows(thesis, "thesis_table7_9")
    tby = _thesis_by(trows, "cap")
    caps = [c for c in (100.0, 35.0) if c in by or c in tby] + sorted(
        (c for c in set(by) | set(tby) if c not in (100.0, 35.0)), key=_sort_key)

    def tval(cap, group, key):
        row = tby.get(cap)
        if not row:
            return None
        if group:
            return (row.get(group) or {}).get(key) if isinstance(row.get(group), dict) else None
        return row.get(key)

    head = ["figure"]
    for cap in caps:
        head += ["cap %s (ours)" % _fmt(cap), "cap %s (thesis)" % _fmt(cap)]
    for title, metrics in (("Table 7: packet loss distribution (runs of n lost packets)", [(k, k, "loss_runs", k) for k in LOSS_RUN_KEYS]),
                           ("Table 8: packet delay variation (packets per bucket)", [(k, k, "delay_buckets", k) for k in PDV_KEYS]),
                           ("Table 9: MOS and jitter", [("MOS F1 (50 ms)", "mos_f1", None, "mos_f1"),
                                                        ("MOS F2 (200 ms)", "mos_f2", None, "mos_f2"),
                                                        ("MOS adaptive", "mos_adaptive", None, "mos_adapt"),
                                                        ("max jitter ms", "jitter_max_ms", None, "max_jitter_ms")])):
        rows = []
        for label, metric, group, tkey in metrics:
            row = [label]
            for cap in caps:
                row += [_fmt(_med(by.get(cap), metric)), _fmt(tval(cap, group, tkey))]
            rows.append(row)
        sec["tables"].append({"title": title, "columns": head, "rows": rows})
    runs_row = ["runs"]
    for cap in caps:
        p = by.get(cap)
        runs_row += [" ".join(p["runs"]) if p else "", ""]
    sec["tables"][-1]["rows"].append(runs_row)

    def total(p, keys):
        vals = [_med(p, k) for k in keys]
        return None if all(v is None for v in vals) else sum(v for v in vals if v is not None)

    def ttotal(cap, group, keys):
        vals = [tval(cap, group, k) for k in keys]
        return None if all(v is None for v in vals) else sum(v for v in vals if _is_number(v))

    base, new = by.get(100.0), by.get(35.0)
    for label, ours_b, ours_n, th_b, th_n in (
            ("MOS F1", _med(base, "mos_f1"), _med(new, "mos_f1"), tval(100.0, None, "mos_f1"), tval(35.0, None, "mos_f1")),
            ("MOS F2", _med(base, "mos_f2"), _med(new, "mos_f2"), tval(100.0, None, "mos_f2"), tval(35.0, None, "mos_f2")),
            ("MOS adaptive", _med(base, "mos_adaptive"), _med(new, "mos_adaptive"), tval(100.0, None, "mos_adapt"),
             tval(35.0, None, "mos_adapt")),
            ("max jitter", _med(base, "jitter_max_ms"), _med(new, "jitter_max_ms"), tval(100.0, None, "max_jitter_ms"),
             tval(35.0, None, "max_jitter_ms")),
            ("loss runs (all lengths)", total(base, LOSS_RUN_KEYS), total(new, LOSS_RUN_KEYS),
             ttotal(100.0, "loss_runs", LOSS_RUN_KEYS), ttotal(35.0, "loss_runs", LOSS_RUN_KEYS)),
            ("delayed packets (all buckets)", total(base, PDV_KEYS), total(new, PDV_KEYS),
             ttotal(100.0, "delay_buckets", PDV_KEYS), ttotal(35.0, "delay_buckets", PDV_KEYS))):
        sec["trends"].append(compare_change(label, "from cap 100 to cap 35", change(ours_b, ours_n, tolerance),
                                            change(th_b, th_n, tolerance)))
    sec["notes"] += ["MOS: the lowest over the call's RTP streams (voip_quality, VoIPmonitor's scoring); loss runs and "
                     "delay buckets summed over the streams; medians over the repetitions."]
    cats = ["cap %s" % _fmt(c) for c in caps]
    panels = []
    for label, metric, tkey in (("MOS F1", "mos_f1", "mos_f1"), ("MOS F2", "mos_f2", "mos_f2"),
                                ("MOS adaptive", "mos_adaptive", "mos_adapt"), ("max jitter ms", "jitter_max_ms", "max_jitter_ms")):
        panels.append({"kind": "bars", "title": label, "y_label": label, "categories": cats, "same_axis": True, "series": [
            {"label": "ours (median)", "values": [_med(by.get(c), metric) for c in caps], "axis": "left"},
            {"label": "thesis", "values": [tval(c, None, tkey) for c in caps], "axis": "left"}]})
    sec["plots"].append({"file": "table7_9.png", "title": sec["title"], "panels": panels})
    return [sec]


def section_guest_size(points, thesis, tolerance, figures=None, overheads=None):
    sec = _section("guest_size", "Guest size sweep: measured migration time and downtime against the pre-copy model")
    down = _pick_metric(points, ("downtime_ms", "toolstack_downtime_ms"))
    head = ["guest MiB", "migration time ms", "model ms", "error %", "thesis's form ms", "error %", "copy time ms",
            "model copy ms", "error vs copy %", "downtime ms", "stop-copy ms", "model downtime ms", "rounds (ours)",
            "rounds (Eq. 2)", "B Mbps", "p Mbps", "W MB", "n", "runs"]
    rows = []
    for p in points:
        rounds = _med(p, "live_passes")
        rows.append([_fmt(p["point"].get("guest_memory_mib")), _fmt(_med(p, "migration_time_ms")),
                     _fmt(_med(p, "model_migration_time_ms")), _pct(_med(p, "model_migration_time_error_pct")),
                     _fmt(_med(p, "model_const_migration_time_ms")), _pct(_med(p, "model_const_migration_time_error_pct")),
                     _fmt(_med(p, "copy_time_ms")), _fmt(_med(p, "model_copy_time_ms")),
                     _pct(_med(p, "model_copy_time_error_pct")), _fmt(_med(p, down)),
                     _fmt(_med(p, "stop_copy_ms")), _fmt(_med(p, "model_downtime_ms")),
                     _fmt(None if rounds is None else rounds + 1), _fmt(_med(p, "model_rounds")),
                     _fmt(_med(p, "bandwidth_mbps")), _fmt(_med(p, "model_dirty_rate_mbps")),
                     _fmt(_med(p, "model_wws_mb")), str(_n_runs(p)), " ".join(p["runs"])])
    sec["tables"].append({"title": None, "columns": head, "rows": rows})
    figures = figures or []
    errors = {}
    for key in ("model_migration_time_error_pct", "model_const_migration_time_error_pct", "model_copy_time_error_pct",
                "model_downtime_error_pct", "model_stop_copy_error_pct"):
        vals = [(f["run"], f[key]) for f in figures if f.get(key) is not None]
        if vals:
            worst = max(vals, key=lambda rv: abs(rv[1]))
            errors[key] = {"n": len(vals), "median_abs": median([abs(v) for dummy, v in vals]),
                           "max_abs": abs(worst[1]), "worst_run": worst[0],
                           "within_15": all(abs(v) <= 15.0 for dummy, v in vals)}
    beta = overheads or {"overhead_ms": None, "source": "none"}
    sec["facts"] = {"errors": errors, "downtime_metric": down, "overheads": beta}
    if beta.get("source") == "calibration":
        sec["notes"].append("beta measured by the idle calibration migration before the sweep (%s): %.0f ms on the "
                            "migration time (xl's wall clock - the memory copy), %.0f ms on the downtime (downtime - "
                            "stop-and-copy); not fitted on the runs below."
                            % (", ".join(beta["runs"]), beta["overhead_ms"], beta["downtime_overhead_ms"]))
    elif beta.get("source") == "given":
        sec["notes"].append("beta set for the report: %.0f ms on the migration time, %.0f ms on the downtime."
                            % (beta["overhead_ms"], beta["downtime_overhead_ms"]))
    else:
        sec["notes"].append("beta = 0: no calibration migration in this directory and none set for the report, so the "
                            "errors against xl's wall clock contain the fixed overheads (ssh setup, suspend, the "
                            "destination's device hand-over).")
    if "model_migration_time_error_pct" in errors:
        e = errors["model_migration_time_error_pct"]
        sec["notes"].append("Predicted against measured migration time (xl's wall clock): median |error| %.1f %%, "
                            "largest %.1f %% (run %s) over %d runs; every run within 15 %%: %s."
                            % (e["median_abs"], e["max_abs"], e["worst_run"], e["n"], "yes" if e["within_15"] else "no"))
    if "model_const_migration_time_error_pct" in errors:
        e = errors["model_const_migration_time_error_pct"]
        sec["notes"].append("The thesis's form (one constant rate over all live passes, no working set, same beta): "
                            "median |error| %.1f %%, largest %.1f %% (run %s); within 15 %%: %s."
                            % (e["median_abs"], e["max_abs"], e["worst_run"], "yes" if e["within_15"] else "no"))
    if "model_copy_time_error_pct" in errors:
        e = errors["model_copy_time_error_pct"]
        sec["notes"].append("Against the memory-copy time alone (first pass to the end of the stop-and-copy, what "
                            "Eq. 3 models): median |error| %.1f %%, largest %.1f %% (run %s); within 15 %%: %s."
                            % (e["median_abs"], e["max_abs"], e["worst_run"], "yes" if e["within_15"] else "no"))
    for key, what in (("model_downtime_error_pct", down), ("model_stop_copy_error_pct", "stop_copy_ms")):
        if key in errors:
            e = errors[key]
            sec["notes"].append("Predicted downtime (last round) against %s: median |error| %.1f %%, largest %.1f %%."
                                % (what, e["median_abs"], e["max_abs"]))
    sec["notes"] += [
        "Model inputs per run: M = the first pass's pages x 4096 bytes, B = those pages / the first pass's duration, "
        "p = pages dirtied during the live passes after the first (the last one's batch left out) / their duration, "
        "W = the pages dirtied during the first pass (the writable working set: every round copies at most "
        "min(p t, W)), h = the policy's target_dirty_count pages, N = its max_iterations + 1 rounds. "
        "The first round is exact by construction (t_1 = M/B), so the error comes from the later rounds and from "
        "beta (ssh setup, suspend, device hand-over on the destination). docs/precopy.md, \"Working set\".",
    ]
    tg = (thesis or {}).get("thesis_guest_size") or {}
    ours_t = trend(*_xs_ys(points, "guest_memory_mib", "migration_time_ms"), tolerance_pct=tolerance)
    model_t = trend(*_xs_ys(points, "guest_memory_mib", "model_migration_time_ms"), tolerance_pct=tolerance)
    th = {"slope": None, "change_pct": None, "direction": tg["migration_time_trend"]} \
        if tg.get("migration_time_trend") in ("rises", "falls", "flat") else None
    sec["trends"].append(compare_trend("migration time", "guest memory", ours_t, model_t, other="the model"))
    if th is not None:
        verdict = None if ours_t is None else ours_t["direction"] == th["direction"]
        sec["trends"].append({"metric": "migration time (thesis, Fig. 5-1)", "ours": ours_t, "thesis": th,
                              "reproduced": verdict,
                              "text": "migration time %s with guest memory in ours; the thesis (section 5.2, Fig. 5-1, "
                                      "64-1024 MB) says it %s: %s." % (
                                          ours_t["direction"] if ours_t else "has no trend", th["direction"],
                                          "n/a" if verdict is None else ("reproduced" if verdict else "not reproduced"))})
    sec["trends"].append(compare_trend("downtime", "guest memory",
                                       trend(*_xs_ys(points, "guest_memory_mib", down), tolerance_pct=tolerance),
                                       trend(*_xs_ys(points, "guest_memory_mib", "model_downtime_ms"), tolerance_pct=tolerance),
                                       other="the model"))
    panels = [
        {"kind": "xy", "title": "migration time", "x_label": "guest memory MiB", "y_label": "ms", "series": [
            dict(_xy_series(points, "guest_memory_mib", "migration_time_ms"), label="measured (median, min-max)", axis="left"),
            dict(_xy_series(points, "guest_memory_mib", "copy_time_ms"), label="memory copy (measured)", axis="left"),
            dict(_xy_series(points, "guest_memory_mib", "model_migration_time_ms"), label="model (Eq. 3, W, beta)",
                 axis="left", style="dashed"),
            dict(_xy_series(points, "guest_memory_mib", "model_const_migration_time_ms"),
                 label="thesis's form (constant p)", axis="left", style="dashed")]},
        {"kind": "xy", "title": "downtime", "x_label": "guest memory MiB", "y_label": "ms", "series": [
            dict(_xy_series(points, "guest_memory_mib", down), label="%s (measured)" % down, axis="left"),
            dict(_xy_series(points, "guest_memory_mib", "stop_copy_ms"), label="stop-and-copy (measured)", axis="left"),
            dict(_xy_series(points, "guest_memory_mib", "model_downtime_ms"), label="model, last round", axis="left",
                 style="dashed")]},
        {"kind": "xy", "title": "model error", "x_label": "guest memory MiB", "y_label": "%", "series": [
            {"label": "migration time", "x": [f["point"].get("guest_memory_mib") for f in figures
                                              if f.get("model_migration_time_error_pct") is not None],
             "y": [f["model_migration_time_error_pct"] for f in figures if f.get("model_migration_time_error_pct") is not None],
             "axis": "left", "style": "points"},
            {"label": "copy time", "x": [f["point"].get("guest_memory_mib") for f in figures
                                         if f.get("model_copy_time_error_pct") is not None],
             "y": [f["model_copy_time_error_pct"] for f in figures if f.get("model_copy_time_error_pct") is not None],
             "axis": "left", "style": "points"}],
         "hlines": [-15.0, 15.0]},
    ]
    sec["plots"].append({"file": "guest_size.png", "title": sec["title"], "panels": panels})
    return [sec]


def _xs_ys(points, x_key, metric):
    s = _xy_series(points, x_key, metric)
    return s["x"], s["y"]


GENERIC_METRICS = ("migration_time_ms", "downtime_ms", "toolstack_downtime_ms", "after_first_ms", "live_passes",
                   "dirty_rate_mbps", "bandwidth_mbps", "failed_calls", "sip_response_ms", "mos_f1",
                   "model_migration_time_error_pct")


def section_generic(points, sweep):
    sec = _section("generic", "Figures per sweep point")
    metrics = [m for m in GENERIC_METRICS if any(p["metrics"].get(m) for p in points)]
    head = list(sweep or ["point"]) + metrics + ["n", "runs"]
    rows = []
    for p in points:
        row = [_fmt(p["point"].get(k)) for k in sweep] if sweep else ["all runs"]
        row += [_fmt(_med(p, m)) for m in metrics] + [str(_n_runs(p)), " ".join(p["runs"])]
        rows.append(row)
    sec["tables"].append({"title": None, "columns": head, "rows": rows})
    sec["notes"].append("No thesis table belongs to this campaign; summary.csv holds every figure.")
    return [sec]


def sections(campaign, points, thesis=None, tolerance_pct=DEFAULT_FLAT_TOLERANCE_PCT, figures=None, sweep=None,
             response_metric=None, overheads=None):
    """The report's sections for the campaign's table family (or a generic table for others)."""
    if campaign == "call_length_sweep":
        return [section_table2(points, thesis, tolerance_pct)]
    if campaign == "cap_sweep":
        return section_table3_4(points, thesis, tolerance_pct, response_metric)
    if campaign == "sd_tracking":
        return section_table5_6(points, thesis, tolerance_pct, figures)
    if campaign == "voip_quality_caps":
        return section_table7_9(points, thesis, tolerance_pct)
    if campaign == "guest_size_sweep":
        return section_guest_size(points, thesis, tolerance_pct, figures, overheads)
    return section_generic(points, sweep)


# ---------------------------------------------------------------------------------------------
# report

def _md_cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def md_table(columns, rows):
    lines = ["| " + " | ".join(_md_cell(c) for c in columns) + " |", "|" + " --- |" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
    return "\n".join(lines) + "\n"


def render_report(data, secs, plots_rel=None, thesis_source=None):
    """report.md's text. ``plots_rel``: {plot file: path relative to the report} of the drawn plots."""
    plots_rel = plots_rel or {}
    camp = data["campaign"]
    family = FAMILIES.get(camp)
    out = ["# Campaign %s, %s" % (camp, data["timestamp"]), ""]
    n_runs = len(data["figures"])
    planned = n_runs + len(data["missing"])
    out.append("%s. %d run(s)%s at %d sweep point(s) (%s)." % (
        family["title"] if family else "Campaign without a thesis table", n_runs,
        " of %d planned" % planned if data["plan_file"] else "", len(data["points"]),
        ", ".join(data["sweep"]) or "no sweep variable"))
    out.append("")
    out.append("Thesis: P. U. Nkubito, *Aggregated Service Consolidation by Multi-Server Virtualization*, MSc thesis, "
               "University of Cape Town, 2012; its numbers from %s." % (thesis_source or "-- (none given: no comparison)"))
    out.append("")
    out.append("Ours are medians over the repetitions at each point; summary.csv has n, median, mean, min and max "
               "of every figure with the runs behind it, runs.csv each run's figures and the record files they come "
               "from. \"Reproduced\" compares directions only (the thesis's testbed was real hardware, ours may be the "
               "emulated lab): a linear fit's rise over the sweep, or the change between two conditions, counts as "
               "flat/same below %s %%." % _fmt(data["tolerance_pct"]))
    out.append("")
    if data["params"]:
        out.append("Parameters (%s): %s" % (PARAMS_FILE, ", ".join(
            "%s=%s" % (k, json.dumps(v, sort_keys=True)) for k, v in sorted(data["params"].items()) if k != "plan")))
        out.append("")
    for sec in secs:
        out.append("## " + sec["title"])
        out.append("")
        for table in sec["tables"]:
            if table["title"]:
                out += ["### " + table["title"], ""]
            out.append(md_table(table["columns"], table["rows"]))
        for note in sec["notes"]:
            out.append("- " + note)
        if sec["notes"]:
            out.append("")
        if sec["trends"]:
            out += ["Trends:", ""]
            for t in sec["trends"]:
                out.append("- " + t["text"])
            out.append("")
        for plot in sec["plots"]:
            if plot["file"] in plots_rel:
                out += ["![%s](%s)" % (plot["title"], plots_rel[plot["file"]]), ""]
    verdicts = [t for sec in secs for t in sec["trends"] if t["reproduced"] is not None]
    if verdicts:
        out += ["## Trends reproduced", "",
                "%d of %d compared directions reproduced: %s." % (
                    sum(1 for t in verdicts if t["reproduced"]), len(verdicts),
                    "; ".join("%s %s" % (t["metric"], "yes" if t["reproduced"] else "no") for t in verdicts)), ""]
    out += ["## Runs", ""]
    rows = []
    for fig in data["figures"]:
        rows.append([fig["run"], point_label(fig.get("point", {}), data["sweep"]) or "-", _fmt(fig.get("rep")),
                     fig.get("policy_ran") or "-", fig.get("timing_source") or "-", " ".join(fig["sources"]),
                     str(len(fig["artifacts"]))])
    out.append(md_table(["run", "point", "rep", "policy", "timing", "records", "raw files"], rows))
    if data["missing"]:
        out += ["Planned but without a migration record (not run yet, or failed): %s." % ", ".join(data["missing"]), ""]
    for warning in data["warnings"]:
        out.append("- warning: " + warning)
    if data["warnings"]:
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def have_matplotlib():
    try:
        import matplotlib  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    except ImportError:
        return False
    return True


def render_plots(secs):
    """{file name: PNG bytes} of every section's plots (matplotlib, Agg canvas, no pyplot state)."""
    try:
        # pylint: disable=import-outside-toplevel
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise CampaignError("the plots need matplotlib (pip install matplotlib, or python3-matplotlib): %s" % exc) from None
    out = {}
    for sec in secs:
        for plot in sec["plots"]:
            panels = plot["panels"]
            cols = min(len(panels), 2) or 1
            rows = (len(panels) + cols - 1) // cols
            fig = Figure(figsize=(6.0 * cols, 4.2 * rows), dpi=90)
            FigureCanvasAgg(fig)
            fig.suptitle(plot["title"], fontsize=11)
            for i, panel in enumerate(panels):
                ax = fig.add_subplot(rows, cols, i + 1)
                if panel["kind"] == "bars":
                    _draw_bars(ax, panel)
                else:
                    _draw_xy(ax, panel)
            fig.tight_layout(rect=(0, 0, 1, 0.95))
            buf = io.BytesIO()
            fig.savefig(buf, format="png", metadata={"Software": None})
            out[plot["file"]] = buf.getvalue()
    return out


def _draw_xy(ax, panel):
    right = None
    handles, labels = [], []
    for series in panel["series"]:
        pts = [(x, y) for x, y in zip(series["x"], series["y"]) if _is_number(x) and _is_number(y)]
        if not pts:
            continue
        target = ax
        if series.get("axis") == "right":
            right = right or ax.twinx()
            target = right
            right.set_ylabel("%s (%s)" % (panel["y_label"], series["label"]))
        style = series.get("style")
        xs, ys = [x for x, dummy in pts], [y for dummy, y in pts]
        if style == "points":
            handle = target.plot(xs, ys, "o")[0]
        elif style == "dashed":
            handle = target.plot(xs, ys, "--", marker="x")[0]
        elif series.get("lo"):
            below = [y - lo for y, lo in zip(series["y"], series["lo"])]
            above = [hi - y for y, hi in zip(series["y"], series["hi"])]
            handle = target.errorbar(series["x"], series["y"], yerr=[below, above], marker="o", capsize=3)
        else:
            handle = target.plot(xs, ys, marker="s", color="tab:red" if target is right else None)[0]
        handles.append(handle)
        labels.append(series["label"])
    if panel.get("vline") is not None:
        ax.axvline(panel["vline"], color="grey", linestyle=":")
    for y in panel.get("hlines", []):
        ax.axhline(y, color="grey", linestyle=":")
    ax.set_title(panel["title"], fontsize=10)
    ax.set_xlabel(panel["x_label"])
    ax.set_ylabel(panel["y_label"] + (" (ours)" if right is not None else ""))
    if handles:
        ax.legend(handles, labels, fontsize=8)


def _draw_bars(ax, panel):
    cats = panel["categories"]
    n = len(panel["series"])
    width = 0.8 / max(n, 1)
    handles = []
    right = None
    for i, series in enumerate(panel["series"]):
        target = ax
        if series.get("axis") == "right" and not panel.get("same_axis"):
            right = right or ax.twinx()
            target = right
            right.set_ylabel("%s (%s)" % (panel["y_label"], series["label"]))
        pairs = [(j + (i - (n - 1) / 2.0) * width, v) for j, v in enumerate(series["values"]) if _is_number(v)]
        handles.append(target.bar([x for x, dummy in pairs], [v for dummy, v in pairs], width, color="C%d" % i))
    ax.set_xticks(list(range(len(cats))))
    ax.set_xticklabels(cats)
    ax.set_title(panel["title"], fontsize=10)
    ax.set_ylabel(panel["y_label"] + (" (ours)" if right is not None else ""))
    ax.legend(handles, [series["label"] for series in panel["series"]], fontsize=8)


def load_calibration(results_dir):
    """The idle migrations a campaign made before its sweep: ``calibration/<name>.migration.json``.

    Each may have a ``<name>.probe.json`` beside it. Returns a list of runs as load_campaign
    gives them (name, records, files relative to the directory), [] when there are none.
    """
    rdir = os.path.abspath(os.fspath(results_dir))
    cdir = os.path.join(rdir, CALIBRATION_DIR)
    if not os.path.isdir(cdir):
        return []
    try:
        names = sorted(os.listdir(cdir))
    except OSError as exc:
        raise CampaignError("cannot list %s: %s" % (cdir, exc)) from None
    found = {}
    labels = dict(RECORD_LABELS)
    for fname in names:
        match = _RECORD_FILE.match(fname)
        if match and match.group(2) in labels and not fname.startswith("."):
            found.setdefault(match.group(1), {})[match.group(2)] = os.path.join(cdir, fname)
    out = []
    for name in sorted(found):
        if "migration" not in found[name]:
            continue
        records, files = _read_records("calibration %s" % name, rdir, found[name])
        out.append({"name": name, "point": {}, "rep": None, "records": records, "files": files, "artifacts": []})
    return out


def calibration_overheads(results_dir):
    """The model's betas measured by the directory's calibration migrations, or None without any.

    beta (migration time) = xl's wall-clock time - the memory-copy time: ssh setup, domain
    creation on the destination, suspend, device hand-over and resume (Eq. 10's phases besides
    the iterative and stop-and-copy ones); the downtime's beta = the downtime (probe, else xl's
    suspend-to-started) - the stop-and-copy (Eq. 11's commitment and activation). Medians over
    the calibration runs. Measured once, on an idle guest, before the sweep: not fitted on the
    runs the model is compared with.
    """
    runs = load_calibration(results_dir)
    if not runs:
        return None
    overheads, downs = [], []
    for run in runs:
        fig = run_figures(run)
        if fig["copy_time_ms"] is None or fig["stop_copy_ms"] is None:
            raise CampaignError("calibration %s (%s) has no memory-copy time: it needs the patched libxenguest's log "
                                "(results.precopy_run.final)" % (run["name"], run["files"]["migration"]))
        overheads.append(max(fig["migration_time_ms"] - fig["copy_time_ms"], 0.0))
        down = fig["downtime_ms"] if fig["downtime_ms"] is not None else fig["toolstack_downtime_ms"]
        if down is not None:
            downs.append(max(down - fig["stop_copy_ms"], 0.0))
    return {"overhead_ms": median(overheads), "downtime_overhead_ms": median(downs) if downs else median(overheads),
            "source": "calibration", "runs": [r["files"]["migration"] for r in runs]}


def resolve_overheads(results_dir, overhead_ms=None, downtime_overhead_ms=None):
    """The betas a report uses: as given, else the calibration's (calibration_overheads), else 0.

    Giving either beta turns the calibration off: an unset ``overhead_ms`` is then 0 and an unset
    ``downtime_overhead_ms`` is ``overhead_ms``. Returns {"overhead_ms", "downtime_overhead_ms", "source" (given, calibration or none), "runs"}.
    """
    if overhead_ms is not None or downtime_overhead_ms is not None:
        beta = 0.0 if overhead_ms is None else overhead_ms
        return {"overhead_ms": beta, "downtime_overhead_ms": beta if downtime_overhead_ms is None else downtime_overhead_ms,
                "source": "given", "runs": []}
    cal = calibration_overheads(results_dir)
    if cal is not None:
        return cal
    return {"overhead_ms": 0.0, "downtime_overhead_ms": 0.0, "source": "none", "runs": []}


def build_report(results_dir, thesis=None, thesis_source=None, overhead_ms=None, plots=True,
                 tolerance_pct=DEFAULT_FLAT_TOLERANCE_PCT, response_metric=None, downtime_overhead_ms=None):
    """Everything the report needs, nothing written: {campaign data, figures, points, sections, texts, plots}.

    ``thesis``: the variables of thesis_tables.yml (load_thesis) or None; ``plots``: draw the
    PNGs (needs matplotlib); ``response_metric``: Table 3's response time, one of
    RESPONSE_METRICS (None: the first with data, in that order); ``overhead_ms`` and
    ``downtime_overhead_ms``: the model's betas (None: resolve_overheads).
    """
    if response_metric is not None and response_metric not in RESPONSE_METRICS:
        raise CampaignError("response_metric must be one of %s, got %s"
                            % (", ".join(RESPONSE_METRICS), stats.brief(response_metric)))
    tol = _number(tolerance_pct, "tolerance_pct")
    if tol is None or tol < 0:
        raise CampaignError("tolerance_pct must be a number >= 0, got %s" % stats.brief(tolerance_pct))
    if thesis is not None and not isinstance(thesis, dict):
        raise CampaignError("thesis must be the mapping of thesis_tables.yml, got %s" % stats.brief(thesis))
    data = load_campaign(results_dir)
    beta = resolve_overheads(results_dir, overhead_ms, downtime_overhead_ms)
    figures = [run_figures(run, beta["overhead_ms"], beta["downtime_overhead_ms"]) for run in data["runs"]]
    points = aggregate(figures, data["sweep"])
    data.update(figures=figures, points=points, tolerance_pct=tol, overheads=beta)
    secs = sections(data["campaign"], points, thesis, tol, figures, data["sweep"], response_metric, overheads=beta)
    pngs = render_plots(secs) if plots else {}
    plots_rel = dict((name, PLOTS_DIR + "/" + name) for name in pngs)
    data.update(sections=secs, plots=pngs,
                summary_csv=summary_csv(data["campaign"], points, data["sweep"]),
                runs_csv=runs_csv(figures, data["sweep"]),
                report_md=render_report(data, secs, plots_rel, thesis_source))
    return data


def _write_bytes_atomic(path, payload, mode=0o644):
    """Bytes version of results.write_text_atomic (temporary file, fsync, rename) for the PNGs."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _differs(path, payload):
    try:
        with open(path, "rb") as handle:
            return handle.read() != payload
    except OSError:
        return True


def write_report(data, dest=None, check_mode=False):
    """Write plots/*.png, summary.csv, runs.csv and report.md (last) into ``dest`` (default: the results directory).

    Each file atomically and only when its content changes. Returns the list of paths written
    (in check mode: that would be written).
    """
    dest = os.path.abspath(dest or data["dir"])
    files = [(os.path.join(dest, PLOTS_DIR, name), payload) for name, payload in sorted(data["plots"].items())]
    files += [(os.path.join(dest, SUMMARY_FILE), data["summary_csv"].encode("utf-8")),
              (os.path.join(dest, RUNS_FILE), data["runs_csv"].encode("utf-8")),
              (os.path.join(dest, REPORT_FILE), data["report_md"].encode("utf-8"))]
    changed = [path for path, payload in files if _differs(path, payload)]
    if check_mode:
        return changed
    try:
        os.makedirs(dest, exist_ok=True)
        if data["plots"]:
            os.makedirs(os.path.join(dest, PLOTS_DIR), exist_ok=True)
        for path, payload in files:
            if path not in changed:
                continue
            if path.endswith(".png"):
                _write_bytes_atomic(path, payload)
            else:
                results.write_text_atomic(path, payload.decode("utf-8"))
    except OSError as exc:
        raise CampaignError("cannot write the report into %s: %s" % (dest, exc)) from None
    return changed


# ---------------------------------------------------------------------------------------------
# provenance

def _parse_cell(text):
    if text == "":
        return None
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def _read_csv(path, text=None):
    try:
        if text is not None:
            return list(csv.DictReader(io.StringIO(text)))
        with open(path, encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle))
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise CampaignError("cannot read %s: %s" % (path, exc)) from None


def _close(a, b):
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) or isinstance(b, str):
        return str(a) == str(b)
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


def check_provenance(results_dir, summary_dir=None, overhead_ms=None, summary_text=None, runs_text=None,
                     downtime_overhead_ms=None):
    """Problems (a list of strings, empty when none) tracing summary.csv back to the run files.

    runs.csv must hold, for every run, the figures derived afresh from the run's record files
    and name those files; every summary.csv row's n, median, mean, min and max must follow from
    the values its ``runs`` have for that metric in runs.csv, and those must be all the runs of
    the point with a value. ``summary_dir``: where the CSVs are (default: results_dir);
    ``summary_text``/``runs_text``: check these CSV texts instead of the files. ``overhead_ms``
    and ``downtime_overhead_ms`` must be the betas the report was built with (None: resolved
    the same way, resolve_overheads).
    """
    sdir = os.path.abspath(summary_dir or results_dir)
    data = load_campaign(results_dir)
    beta = resolve_overheads(results_dir, overhead_ms, downtime_overhead_ms)
    fresh = dict((r["name"], run_figures(r, beta["overhead_ms"], beta["downtime_overhead_ms"])) for r in data["runs"])
    problems = []
    run_rows = _read_csv(os.path.join(sdir, RUNS_FILE), runs_text)
    by_run = {}
    for row in run_rows:
        name = row.get("run")
        by_run[name] = row
        fig = fresh.get(name)
        if fig is None:
            problems.append("runs.csv: run %s has no migration record in %s" % (name, data["dir"]))
            continue
        sources = (row.get("sources") or "").split()
        if sources != fig["sources"]:
            problems.append("runs.csv: run %s: sources %s, its record files are %s" % (name, " ".join(sources),
                                                                                       " ".join(fig["sources"])))
        for metric in METRIC_NAMES:
            if not _close(_parse_cell(row.get(metric, "")), fig.get(metric)):
                problems.append("runs.csv: run %s: %s is %s, its records give %s"
                                % (name, metric, row.get(metric), _text(fig.get(metric))))
    for name in sorted(set(fresh) - set(by_run)):
        problems.append("runs.csv lacks run %s" % name)
    point_runs = {}
    for fig in fresh.values():
        point_runs.setdefault(point_label(fig.get("point", {}), data["sweep"]), []).append(fig["run"])
    for i, row in enumerate(_read_csv(os.path.join(sdir, SUMMARY_FILE), summary_text)):
        where = "summary.csv row %d (%s, %s)" % (i + 2, row.get("point"), row.get("metric"))
        metric = row.get("metric")
        runs = (row.get("runs") or "").split()
        if metric not in METRIC_NAMES:
            problems.append("%s: unknown metric" % where)
            continue
        if not runs:
            problems.append("%s: no runs listed" % where)
            continue
        unknown = [r for r in runs if r not in by_run]
        if unknown:
            problems.append("%s: runs not in runs.csv: %s" % (where, ", ".join(unknown)))
            continue
        expected = [r for r in point_runs.get(row.get("point"), []) if fresh[r].get(metric) is not None]
        if sorted(expected) != sorted(runs):
            problems.append("%s: lists runs %s, the point's runs with a value are %s" % (where, " ".join(runs),
                                                                                         " ".join(expected)))
        values = [_parse_cell(by_run[r].get(metric, "")) for r in runs]
        if any(not _is_number(v) for v in values):
            problems.append("%s: a listed run has no number for %s in runs.csv" % (where, metric))
            continue
        want = describe(values)
        for key in STAT_FIELDS:
            if not _close(_parse_cell(row.get(key, "")), want[key]):
                problems.append("%s: %s is %s, the runs give %s" % (where, key, row.get(key), _text(want[key])))
    return problems
