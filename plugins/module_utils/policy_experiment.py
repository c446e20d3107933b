# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Figures of stop-policy experiments (stdlib only).

A run is one migration record written by ``xen_migrate`` (kind ``migration``) with the patched
libxenguest's log (``results.precopy`` and ``results.precopy_run``), optionally paired with the
``downtime_probe`` record of the same migration. :func:`run_figures` derives what the stop
policy changes:

* ``pass1_ms``: end of the first pass (all of RAM), ms after the pre-copy started;
* ``after_first_ms``: from there to the end of the stop-and-copy (the later live passes plus
  the pages sent while the guest is paused): the time a stop policy can shorten;
* ``stop_copy_ms``: suspend requested to last page sent (the part of the downtime the policy
  decides; the rest is libxl's device hand-over);
* ``pages_sent``: pages sent live plus in the stop-and-copy;
* ``downtime_ms``: the probe's Eq. (14) figure, else None; ``toolstack_downtime_ms``: suspend
  to "target reports successful startup" in xl's output;
* ``replay_*``: :func:`stop_policy.replay` of the recorded calls through the policy that ran,
  which must stop at the same call (``replay_match``).

:func:`aggregate` groups runs by (workload, policy) with medians, and :func:`ratio_table` sets
each policy beside the baselines ``xen`` and ``xen34``.
"""

from __future__ import annotations

import csv
import io

from ansible_collections.xenlab.migration.plugins.module_utils import stats, stop_policy

# precopy_log reports Xen's own rule as xen417; experiments call it xen.
POLICY_ALIASES = {"xen417": "xen"}
RUN_FIELDS = ("run", "workload", "policy", "rep", "source", "target", "total_time_ms", "pass1_ms",
              "after_first_ms", "iterative_ms", "stop_copy_ms", "suspend_wait_ms", "last_batch_ms",
              "toolstack_downtime_ms", "downtime_ms", "longest_gap_ms", "pages_sent", "pages_after_first",
              "pages_live", "pages_stop_copy", "live_passes", "stop_iteration", "stop_reason", "replay_iteration",
              "replay_passes", "replay_match", "dirty_rate", "dirty_wss_mb")
MEDIAN_FIELDS = ("total_time_ms", "after_first_ms", "stop_copy_ms", "suspend_wait_ms", "last_batch_ms",
                 "toolstack_downtime_ms", "downtime_ms", "pages_sent", "pages_after_first", "pages_stop_copy",
                 "live_passes")


class ExperimentDataError(ValueError):
    """A record that cannot be a run of a stop-policy experiment."""


def policy_name(name):
    return POLICY_ALIASES.get(name, name)


def _need(mapping, key, where):
    if not isinstance(mapping, dict) or key not in mapping or mapping[key] is None:
        raise ExperimentDataError("%s has no %s" % (where, key))
    return mapping[key]


def run_figures(migration, probe=None, name=None):
    """The figures of one run (a dict with RUN_FIELDS) from its migration record (and probe record).

    Raises ExperimentDataError when the record is not a successful migration with the patched
    library's log, naming the run.
    """
    where = "run %s" % (name or "?")
    if not isinstance(migration, dict) or migration.get("kind") != "migration":
        raise ExperimentDataError("%s: not a migration record" % where)
    res = _need(migration, "results", where)
    records = res.get("precopy") or []
    run = res.get("precopy_run")
    if not records or not run:
        raise ExperimentDataError("%s: no stop-policy log in the record (was the patched libxenguest installed?)" % where)
    final = _need(run, "final", where + " precopy_run")
    stop = _need(run, "stop", where + " precopy_run")
    after1 = [r for r in records if r["phase"] == "after" and r["iteration"] == 1]
    if not after1:
        raise ExperimentDataError("%s: the log has no end of the first pass" % where)
    pass1 = after1[0]["elapsed_ms"]
    first = next(r for r in records if r["phase"] == "before")  # iteration 0: all P pages
    live = sum(r["dirty_count"] for r in records if r["phase"] == "before")
    extra = dict((k, migration.get(k)) for k in ("workload", "rep", "dirty_rate", "dirty_wss_mb"))
    params = migration.get("params") or {}
    ran = policy_name(run.get("policy") or "xen417")
    fig = {
        "run": name,
        "workload": extra["workload"],
        "policy": ran,
        "rep": extra["rep"],
        "source": migration.get("host"),
        "target": params.get("target"),
        "total_time_ms": res.get("total_time_ms"),
        "pass1_ms": round(pass1, 3),
        "after_first_ms": round(final["elapsed_ms"] - pass1, 3),
        "iterative_ms": round(final["suspend_ms"] - pass1, 3),
        "stop_copy_ms": round(final["elapsed_ms"] - final["suspend_ms"], 3),
        # The stop-and-copy split: the guest's answer to the suspend request (no policy changes
        # it) and the last batch after the domain paused (what a stop policy controls).
        "suspend_wait_ms": round(final["paused_ms"] - final["suspend_ms"], 3),
        "last_batch_ms": round(final["elapsed_ms"] - final["paused_ms"], 3),
        "toolstack_downtime_ms": res.get("downtime_estimate_ms"),
        "downtime_ms": None,
        "longest_gap_ms": None,
        "pages_sent": live + final["dirty_count"],
        # The work after the first pass in pages: what after_first_ms measures, free of the
        # link's speed (which varies 2-3x between runs on an emulated lab).
        "pages_after_first": live + final["dirty_count"] - first["dirty_count"],
        "pages_live": live,
        "pages_stop_copy": final["dirty_count"],
        "live_passes": stop["passes"],
        "stop_iteration": stop["iteration"],
        "stop_reason": stop["reason"],
        "dirty_rate": extra["dirty_rate"],
        "dirty_wss_mb": extra["dirty_wss_mb"],
    }
    if probe is not None:
        pres = _need(probe, "results", "probe of " + where)
        fig["downtime_ms"] = pres.get("downtime_ms")
        fig["longest_gap_ms"] = pres.get("longest_gap_ms")
    rep = replay_run(records, run)
    fig["replay_iteration"] = rep["iteration"]
    fig["replay_passes"] = rep["passes"]
    fig["replay_match"] = (rep["iteration"] == stop["iteration"] and rep["stopped"] == stop["stopped"]
                           and rep["passes"] == stop["passes"])
    return fig


def replay_run(records, run, policy=None):
    """stop_policy.replay of the recorded calls, with the settings the run logged.

    ``policy``: another policy to ask instead (its defaults; None: the one that ran). Returns
    replay's details dict, or {'iteration': None, 'passes': None, 'stopped': None, 'error': ...}
    when that policy would have continued past the recorded trace.
    """
    params = dict((k, v) for k, v in (run.get("params") or {}).items() if v is not None)
    name = policy or run.get("policy") or "xen417"
    if policy is not None:
        params = {}
    if name == "xen":
        name = "xen417"
    try:
        return stop_policy.replay(name, records, details=True, **params)
    except stop_policy.TraceTooShort as e:
        return {"iteration": None, "passes": None, "stopped": None, "error": str(e)}


median = stats.median_present


def aggregate(runs):
    """{(workload, policy): {n, replay_matches, median_<field>...}} in first-seen order."""
    groups = {}
    for r in runs:
        groups.setdefault((r["workload"], r["policy"]), []).append(r)
    out = {}
    for key, rs in groups.items():
        row = {"workload": key[0], "policy": key[1], "n": len(rs),
               "replay_matches": sum(1 for r in rs if r["replay_match"])}
        for f in MEDIAN_FIELDS:
            row["median_" + f] = median(r[f] for r in rs)
        out[key] = row
    return out


def _ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return round(float(a) / float(b), 3)


RATIO_FIELDS = ("after_first_ms", "downtime_ms", "toolstack_downtime_ms", "pages_sent")


def ratio_table(agg, baselines=("xen", "xen34"), fields=RATIO_FIELDS):
    """Rows of aggregate() with ratio_<field>_vs_<baseline> added (median over median)."""
    rows = []
    for (workload, dummy), row in agg.items():
        row = dict(row)
        for base in baselines:
            ref = agg.get((workload, base))
            for f in fields:
                row["ratio_%s_vs_%s" % (f, base)] = _ratio(row["median_" + f], ref and ref["median_" + f])
        rows.append(row)
    return rows


def runs_csv(runs):
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=RUN_FIELDS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in runs:
        w.writerow(dict((k, "" if r.get(k) is None else r.get(k)) for k in RUN_FIELDS))
    return buf.getvalue()


def _fmt(value, scale=1.0, digits=0):
    if value is None:
        return "-"
    return "%.*f" % (digits, value / scale)


def format_table(rows):
    """A Markdown table: per workload and policy, medians in seconds/pages and the ratios."""
    head = ("| workload | policy | n | after 1st pass s | downtime s (probe) | downtime s (xl) | stop-copy ms "
            "| pages sent | passes | replay | after1st/xen | after1st/xen34 | downtime/xen | downtime/xen34 "
            "| pages/xen34 |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        def ratio(key):
            v = r.get(key)
            return "-" if v is None else "%.2f" % v
        down = "ratio_downtime_ms_vs_%s" if r["median_downtime_ms"] is not None else "ratio_toolstack_downtime_ms_vs_%s"
        lines.append("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %d/%d | %s | %s | %s | %s | %s |" % (
            r["workload"], r["policy"], r["n"], _fmt(r["median_after_first_ms"], 1000.0, 2),
            _fmt(r["median_downtime_ms"], 1000.0, 2), _fmt(r["median_toolstack_downtime_ms"], 1000.0, 2),
            _fmt(r["median_stop_copy_ms"], 1.0, 0), _fmt(r["median_pages_sent"]), _fmt(r["median_live_passes"], 1.0, 1),
            r["replay_matches"], r["n"], ratio("ratio_after_first_ms_vs_xen"), ratio("ratio_after_first_ms_vs_xen34"),
            ratio(down % "xen"), ratio(down % "xen34"), ratio("ratio_pages_sent_vs_xen34")))
    return "\n".join(lines) + "\n"
