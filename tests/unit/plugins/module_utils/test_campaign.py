# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""campaign: loading a results directory, per-run figures, aggregation, model errors, trends, provenance.

There is no real campaign results directory yet. The records here are built the way the modules
build them: xen_migrate's record from an xl-like stderr (libxc progress lines and the patched
libxenguest's log, produced from a stop_policy.simulate run and parsed with precopy_log, with
xen_migrate's own phases_of and RECORD_KEYS), the probe's from a real ping capture
(tests/fixtures/probe), SIPp's from real statistics (tests/fixtures/sipp), SMTP's from a real
sender log (tests/fixtures/smtp) and voip_quality's from a real pcap (tests/fixtures/rtp); some
figures are then set to the values a test needs. A real directory committed under
tests/fixtures/campaign/<campaign>/<UTC timestamp>/ is picked up by test_real_fixture_directories.
"""

from __future__ import annotations

import csv
import functools
import glob
import io
import json
import os
import shutil

import pytest

from ansible_collections.xenlab.migration.plugins.module_utils import campaign as cp
from ansible_collections.xenlab.migration.plugins.module_utils import downtime, parsers, precopy_log, results, rtp, sipp
from ansible_collections.xenlab.migration.plugins.module_utils import smtp_load, stop_policy
from ansible_collections.xenlab.migration.plugins.modules import sipp_load, xen_migrate

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
FIX = os.path.join(REPO, "tests", "fixtures")
THESIS_FILE = os.path.join(REPO, "playbooks", "vars", "thesis_tables.yml")
TS = "20261201T120000Z"
P = 65536            # a 256 MiB guest
LINK_PPS = 10000     # pages per second the link carries (41 MB/s)


# ---------------------------------------------------------------------------------------------
# record builders (the exact schema of the modules)

def _progress(label, done, total):
    pct = done * 100 // total if total else 0
    return "xc: progress: %s: %d/%d  %3d%%" % (label, done, total, pct)


def xl_output(sim, policy, params, pre_ms=500.0, hotplug_ms=1000.0, with_log=True, with_progress=True):
    """(lines [(t_ms, text)], policy log text, total_ms) of one xl migrate run of a simulate() result.

    The pre-copy starts pre_ms after the command (ssh, domain info), the guest is suspended at the
    end of the live passes, the destination reports its start hotplug_ms after the stop-and-copy.
    """
    lines, log = [], []
    t = pre_ms
    lines.append((0.0, "Saving to migration stream new xl format (info 0x3/0x0/1244)"))
    start = "event=start v=1 domid=7 pid=4242 policy=%s source=env %s decider=%s" % (
        policy, " ".join("%s=%d" % kv for kv in params.items()),
        "simple_precopy_policy" if policy == "xen417" else "xenlab")
    log.append(start)
    durations = [r["duration_s"] * 1000.0 for r in sim["records"]]
    passes = 0
    decisions = {0: "continue", 1: "stop", -1: "abort"}
    for i, (it, tw, dc, decision) in enumerate(sim["calls"]):
        last = i == len(sim["calls"]) - 1
        reason = sim["reason"] if last and decision == 1 else "-"
        phase = "before" if dc >= 0 else "after"
        log.append("event=call domid=7 elapsed_ms=%.3f phase=%s iteration=%d dirty_count=%d total_written=%d sd=- "
                   "decision=%s reason=%s" % (t - pre_ms, phase, it, dc, tw, decisions[decision], reason))
        if phase == "before" and dc > 0:
            label = "Frames iteration %d" % it
            lines.append((t, _progress(label, 0, dc)))
            t += durations[passes]
            passes += 1
            lines.append((t, _progress(label, dc, dc)))
    suspend = t
    lines.append((t, _progress("Domain now suspended", 0, 0)))
    final_pages = sim["final_pages"]
    final_it = sim["calls"][-1][0]
    lines.append((t, _progress("Frames iteration %d" % final_it, 0, final_pages)))
    t += final_pages * stop_policy.DEFAULT_PAGE_SIZE / (LINK_PPS * stop_policy.DEFAULT_PAGE_SIZE) * 1000.0
    lines.append((t, _progress("Frames iteration %d" % final_it, final_pages, final_pages)))
    log.append("event=final domid=7 elapsed_ms=%.3f iteration=%d dirty_count=%d suspend_ms=%.3f paused_ms=%.3f"
               % (t - pre_ms, final_it, final_pages, suspend - pre_ms, suspend - pre_ms))
    lines.append((t + 5.0, "migration sender: Target has acknowledged transfer."))
    t += hotplug_ms
    lines.append((t, "migration sender: Target reports successful startup."))
    lines.append((t + 20.0, "Migration successful."))
    total = t + 30.0
    if not with_progress:
        lines = [(tm, text) for tm, text in lines if "Frames iteration" not in text]
    return lines, ("\n".join("xenlab-precopy: " + x for x in log) + "\n") if with_log else "", total


def migration_record(sim, policy="xen34", params=None, extra=None, **timing):
    """A kind=migration record as xen_migrate writes it (same parsers, phases_of and RECORD_KEYS)."""
    if params is None:
        params = {"max_iterations": 29, "target_dirty_count": 50, "max_factor": 3} if policy != "xen417" \
            else {"max_iterations": 5, "target_dirty_count": 50}
    lines, policy_text, total_ms = xl_output(sim, policy, params, **timing)
    text = "\n".join(line for dummy, line in lines)
    times = dict((i + 1, t) for i, (t, dummy) in enumerate(lines))
    iterations = []
    for rec in precopy_log.parse_xc_progress(text):
        rec = dict(rec)
        rec["t_ms"] = times.get(rec.pop("line"))
        iterations.append(rec)
    precopy, precopy_run = [], None
    if policy_text.strip():
        mig = precopy_log.parse_precopy_log(policy_text)[-1]
        precopy = mig["records"]
        precopy_run = dict((k, mig.get(k)) for k in ("policy", "source", "decider", "params", "stop", "final"))
    phases = xen_migrate.phases_of(lines)
    phases["done"] = phases.get("done", round(total_ms, 1))
    out = dict(total_time_ms=round(total_ms, 1), phases=phases, iterations=iterations, precopy=precopy,
               precopy_run=precopy_run)
    if "suspended" in phases and "target_started" in phases:
        out["downtime_estimate_ms"] = round(phases["target_started"] - phases["suspended"], 1)
    return results.measurement_record(
        "migration", dict((k, out.get(k)) for k in xen_migrate.RECORD_KEYS),
        params=dict(domain="voip", target="192.168.77.12", toolstack="xl", policy=policy if policy != "xen417" else None,
                    policy_options={}),
        host="dom0-a", started=1795600000.0, finished=1795600000.0 + total_ms / 1000.0, extra=extra or None)


def simulate(policy="xen34", rate_pps=1000.0, pages=P, hot=None):
    model = stop_policy.HotSetModel(pages, hot[0], hot[1], hot[2]) if hot else stop_policy.ConstantRateModel(pages, rate_pps)
    return stop_policy.simulate(policy, model, LINK_PPS * stop_policy.DEFAULT_PAGE_SIZE)


def _read(*parts):
    with open(os.path.join(FIX, *parts), encoding="utf-8") as f:
        return f.read()


@functools.lru_cache(maxsize=None)
def _probe_figures():
    parsed = parsers.parse_ping(_read("probe", "ping", "d-o-10ms-outage300.txt"), partial_ok=True)
    figures = downtime.analyse(parsers.records_from_ping(parsed), 0.01)
    figures["ping_statistics"] = parsed["statistics"]
    return json.dumps(figures)


def probe_record(downtime_ms=None, rtt_ms=None):
    """downtime_probe's record of a real 10 ms ping run with a 300 ms outage (figures optionally set)."""
    figures = json.loads(_probe_figures())
    if downtime_ms is not None:
        figures["downtime_ms"] = downtime_ms
    if rtt_ms is not None:
        figures["ping_statistics"]["rtt_avg_ms"] = rtt_ms
    return results.measurement_record("downtime_probe", figures, params={"probe_type": "icmp", "interval_ms": 10.0},
                                      host="client", started=1795600000.0, finished=1795600010.0)


def sipp_record(failed=None, response_ms=None):
    """sipp_load's record of a real SIPp run against a dropped link (figures optionally set)."""
    figures = sipp.stat_figures(parsers.parse_sipp_stat(_read("probe", "sipp", "uac-stat-outage.csv")))
    figures["sipp_warnings"] = figures.pop("warnings", None)
    figures.update(sipp.rtt_figures(parsers.parse_sipp_rtt(_read("probe", "sipp", "uac-rtt-outage.csv"))))
    figures.update(outcome=sipp.outcome(figures, 1), exit_code=1, exit_meaning=sipp.exit_meaning(1), stop_signals=[],
                   limit_reached=False, duration_s=4.2)
    if failed is not None:
        figures["calls_failed"] = failed
    if response_ms is not None:
        figures["response_time_mean_ms"] = response_ms
    return results.measurement_record("sipp_load", dict((k, figures.get(k)) for k in sipp_load.FIGURE_KEYS),
                                      params={"scenario": "uac"}, host="client", started=1795600000.0,
                                      finished=1795600004.2)


def smtp_record(response_ms=None):
    parsed = smtp_load.parse_log(_read("smtp", "sender-complete.log"))
    figures = smtp_load.summarize(parsed["records"], attempted=parsed["end"]["attempted"])
    figures.pop("unfinished", None)
    if response_ms is not None:
        figures["response_ms"]["mean"] = response_ms
    return results.measurement_record("smtp_load", figures, params={"count": 5}, host="client")


@functools.lru_cache(maxsize=None)
def _voip_figures():
    with open(os.path.join(FIX, "rtp", "impaired.pcap"), "rb") as f:
        analysis = rtp.analyze_capture(f.read())
    return json.dumps(dict((k, analysis[k]) for k in ("streams", "summary", "frames", "rtp_packets", "detection")))


def voip_record(mos=None, jitter_ms=None, loss_runs=None, pdv=None):
    """voip_quality's record of the real impaired.pcap (4 streams); summary MOS/jitter and stream 0's buckets settable."""
    figures = json.loads(_voip_figures())
    if mos is not None:
        for key, value in zip(("mos_f1_min", "mos_f2_min", "mos_adaptive_min"), mos):
            figures["summary"][key] = value
    if jitter_ms is not None:
        figures["summary"]["jitter_max_ms"] = jitter_ms
    for group, values in (("loss_runs", loss_runs), ("pdv", pdv)):
        if values is not None:
            for i, stream in enumerate(figures["streams"]):
                stream[group] = dict((k, values.get(k, 0) if i == 0 else 0) for k in stream[group])
    return results.measurement_record("voip_quality", figures, params={"detect": "auto"}, host="client")


def make_campaign(root, name, runs, sweep=None, plan=True, params=None):
    """results/<name>/<TS>/ with params.json, plan.json and runs/<run>.<label>.json.

    runs: [{"name", "point", "rep", "records": {label: record}}]. Returns the directory.
    """
    rdir = os.path.join(str(root), "results", name, TS)
    os.makedirs(os.path.join(rdir, "runs"))
    results.write_json_atomic(os.path.join(rdir, "params.json"),
                              params if params is not None else {"campaign": name, "repetitions": 3, "guest": "voip"})
    if plan:
        body = {"campaign": name, "runs": [{"name": r["name"], "point": r["point"], "rep": r.get("rep", 1)} for r in runs]}
        if sweep is not None:
            body["sweep"] = sweep
        results.write_json_atomic(os.path.join(rdir, "plan.json"), body)
    for r in runs:
        for label, record in r.get("records", {}).items():
            results.write_json_atomic(os.path.join(rdir, "runs", "%s.%s.json" % (r["name"], label)), record)
    return rdir


def run_entry(name, point, rep=1, sim=None, policy="xen34", timing=None, **records):
    sim = sim or simulate(policy if policy != "xen417" else "xen417")
    extra = dict(point, run=name, rep=rep)
    recs = {"migration": migration_record(sim, policy, extra=extra, **(timing or {}))}
    recs.update(records)
    return {"name": name, "point": point, "rep": rep, "records": recs}


def load_figures(rdir, overhead_ms=0.0):
    data = cp.load_campaign(rdir)
    figs = [cp.run_figures(r, overhead_ms) for r in data["runs"]]
    return data, figs, cp.aggregate(figs, data["sweep"])


@pytest.fixture(scope="module")
def thesis():
    return cp.load_thesis(THESIS_FILE)


# ---------------------------------------------------------------------------------------------
# loading and per-run figures

def test_figures_from_the_patched_library_log(tmp_path):
    # Constant 1000 pages/s on a 10000 pages/s link: P, D_1 = 6554, 655, 66, 7 (< 50: stop), final 1.
    sim = simulate("xen34", 1000.0)
    assert sim["trace"] == [P, 6554, 655, 66, 7, 1]
    rdir = make_campaign(tmp_path, "guest_size_sweep", [
        run_entry("001-m256-1", {"guest_memory_mib": 256}, sim=sim, timing={"pre_ms": 500.0, "hotplug_ms": 1000.0},
                  probe=probe_record(downtime_ms=1234.5, rtt_ms=0.8))])
    data, figs, dummy = load_figures(rdir)
    fig = figs[0]
    assert data["campaign"] == "guest_size_sweep" and data["sweep"] == ["guest_memory_mib"] and data["missing"] == []
    assert fig["timing_source"] == "precopy_log" and fig["policy_ran"] == "xen34"
    assert fig["guest_pages"] == P and fig["pages_sent"] == sum(sim["trace"]) and fig["live_passes"] == 5
    assert fig["pass1_ms"] == pytest.approx(6553.6, abs=0.002)
    assert fig["copy_time_ms"] == pytest.approx(sum(sim["trace"]) / LINK_PPS * 1000.0, abs=0.003)
    assert fig["after_first_ms"] == pytest.approx(fig["copy_time_ms"] - fig["pass1_ms"])
    assert fig["stop_copy_ms"] == pytest.approx(0.1, abs=0.002)
    # B = P pages / first pass: 10000 pages/s = 327.68 Mbps; p = pages dirtied live / live time
    assert fig["bandwidth_mbps"] == pytest.approx(LINK_PPS * 4096 * 8 / 1e6, rel=1e-6)
    live_s = sum(sim["trace"][:-1]) / LINK_PPS
    assert fig["dirty_rate_mbps"] == pytest.approx((sum(sim["trace"]) - P) * 4096 * 8 / 1e6 / live_s, rel=1e-6)
    assert fig["dirty_rate_pass1_mbps"] == pytest.approx(6554 * 4096 * 8 / 1e6 / 6.5536, rel=1e-6)
    assert fig["migration_time_ms"] == pytest.approx(500.0 + fig["copy_time_ms"] + 1000.0 + 30.0, abs=0.1)
    assert fig["toolstack_downtime_ms"] == pytest.approx(1000.0 + 0.1, abs=0.1)
    assert fig["downtime_ms"] == 1234.5 and fig["ping_rtt_ms"] == 0.8
    assert fig["first_pass_pct"] == pytest.approx(100 * fig["pass1_ms"] / fig["migration_time_ms"])
    assert fig["sources"] == ["runs/001-m256-1.migration.json", "runs/001-m256-1.probe.json"]


def _hand_rounds(pages, link_pps, rate_pps, wws_pages, target=50, max_rounds=30):
    """Rounds (pages copied) of Eq. 1 with rounds capped at W, computed here without precopy.py."""
    rounds = [float(pages)]
    while len(rounds) < max_rounds:
        nxt = min(rate_pps * rounds[-1] / link_pps, wws_pages, pages)
        rounds.append(nxt)
        if nxt <= target:
            break
    return rounds


def test_model_prediction_against_a_hand_computation(tmp_path):
    sim = simulate("xen34", 1000.0)
    rdir = make_campaign(tmp_path, "guest_size_sweep", [
        run_entry("001-m256-1", {"guest_memory_mib": 256}, sim=sim, timing={"pre_ms": 500.0, "hotplug_ms": 1000.0})])
    dummy, figs, dummy = load_figures(rdir)
    fig = figs[0]
    # The thesis's form, independently of precopy.py: t_1 = M/B, r = p/B, round i dirties P r^i
    # pages; the first i with P r^i <= h = 50 pages ends the loop with round i + 1;
    # T = t_1 (1 - r^n) / (1 - r).
    t1 = P / LINK_PPS
    r = fig["dirty_rate_mbps"] / fig["bandwidth_mbps"]
    i = 1
    while P * r ** i > 50:
        i += 1
    n = i + 1
    assert n == 5 and fig["model_rounds"] == n and fig["model_max_rounds"] == 30
    assert fig["model_memory_mb"] == pytest.approx(P * 4096 / 1e6) and fig["model_threshold_kb"] == pytest.approx(204.8)
    assert fig["model_const_migration_time_ms"] == pytest.approx(t1 * (1 - r ** n) / (1 - r) * 1000.0, rel=1e-9)
    # Ours: p from the passes after the first, every round capped at W = the pages dirtied in pass 1.
    # A constant-rate guest dirties p t_1 in pass 1, so W binds nowhere and both forms agree.
    assert fig["wws_pages"] == sim["trace"][1] == round(1000.0 * t1)
    assert fig["model_wws_mb"] == pytest.approx(fig["wws_pages"] * 4096 / 1e6)
    assert fig["model_dirty_rate_mbps"] == fig["dirty_rate_after1_mbps"]
    assert fig["dirty_rate_after1_mbps"] == pytest.approx(fig["dirty_rate_mbps"], rel=1e-3)
    rate_pps = fig["dirty_rate_after1_mbps"] * 1e6 / 8 / 4096
    rounds = _hand_rounds(P, LINK_PPS, rate_pps, fig["wws_pages"])
    assert len(rounds) == n
    assert fig["model_copy_time_ms"] == pytest.approx(sum(rounds) / LINK_PPS * 1000.0, rel=1e-9)
    assert fig["model_migration_time_ms"] == fig["model_copy_time_ms"]  # beta = 0
    assert fig["model_migration_time_ms"] == pytest.approx(fig["model_const_migration_time_ms"], rel=1e-4)
    assert fig["model_downtime_ms"] == pytest.approx(rounds[-1] / LINK_PPS * 1000.0, rel=1e-9)
    assert fig["model_downtime_bound_ms"] == pytest.approx(50 / LINK_PPS * 1000.0, rel=1e-6)  # Eq. 12: h/B
    assert fig["model_eq9_downtime_ms"] is None  # converged before N
    # the model is the pre-copy only: close to the copy time, 1.5 s short of xl's wall clock
    assert abs(fig["model_copy_time_error_pct"]) < 0.05
    want = 100.0 * (fig["model_migration_time_ms"] - fig["migration_time_ms"]) / fig["migration_time_ms"]
    assert fig["model_migration_time_error_pct"] == pytest.approx(want) and -18.0 < want < -16.0
    assert fig["model_stop_copy_error_pct"] == pytest.approx(
        100.0 * (fig["model_downtime_ms"] - fig["stop_copy_ms"]) / fig["stop_copy_ms"])


def test_working_set_model_on_a_hot_set_guest(tmp_path):
    # A guest rewriting a hot set of 4096 pages at 2500 pages/s (+ 50 pages/s elsewhere) saturates
    # the set during the 6.6 s first pass; the later passes are short and dirty p t < W. The
    # constant-rate form takes p over all live passes (pass 1's saturated rate included) and
    # predicts the wrong later rounds; the working-set model follows the copy closely.
    sim = simulate("xen417", hot=(4096, 2500.0, 50.0))
    rdir = make_campaign(tmp_path, "guest_size_sweep", [
        run_entry("001-m256-1", {"guest_memory_mib": 256}, sim=sim, policy="xen417")])
    dummy, figs, dummy = load_figures(rdir)
    fig = figs[0]
    assert fig["wws_pages"] == sim["trace"][1] and 4096 < fig["wws_pages"] < 4096 + 400
    assert fig["dirty_rate_after1_mbps"] > 1.5 * fig["dirty_rate_mbps"]
    rate_pps = fig["dirty_rate_after1_mbps"] * 1e6 / 8 / 4096
    rounds = _hand_rounds(P, LINK_PPS, rate_pps, fig["wws_pages"], max_rounds=6)
    assert fig["model_rounds"] == len(rounds) == 6
    assert fig["model_copy_time_ms"] == pytest.approx(sum(rounds) / LINK_PPS * 1000.0, rel=1e-9)
    assert abs(fig["model_copy_time_error_pct"]) < 2.0
    const_copy = fig["model_const_migration_time_ms"]  # beta = 0: the constant-rate form's copy time
    assert abs(100.0 * (const_copy - fig["copy_time_ms"]) / fig["copy_time_ms"]) > 3 * abs(fig["model_copy_time_error_pct"])


def test_beta_and_eq9_above_the_convergence_limit(tmp_path):
    # Xen 4.17's rule (N = 6 rounds) at 5000 of 10000 pages/s: p/B = 0.5 > (h/M)^(1/5) = 0.24, so all
    # six rounds run and Eq. 9 gives the downtime: M/B (p/B)^5 = 6.5536 s / 32 = 204.8 ms.
    sim = simulate("xen417", 5000.0)
    assert sim["trace"] == [P, 32768, 16384, 8192, 4096, 2048]
    rdir = make_campaign(tmp_path, "guest_size_sweep", [run_entry("001-m256-1", {"guest_memory_mib": 256}, sim=sim,
                                                                  policy="xen417")])
    data = cp.load_campaign(rdir)
    fig = cp.run_figures(data["runs"][0])
    assert fig["policy_ran"] == "xen417" and fig["live_passes"] == 5 and fig["model_rounds"] == 6
    r = fig["dirty_rate_mbps"] / fig["bandwidth_mbps"]
    assert r == pytest.approx(0.5, rel=1e-6)
    assert fig["model_eq9_downtime_ms"] == pytest.approx(P / LINK_PPS * r ** 5 * 1000.0, rel=1e-9)
    assert fig["model_eq9_downtime_ms"] == pytest.approx(204.8, rel=1e-5)
    assert fig["model_downtime_ms"] == pytest.approx(fig["model_eq9_downtime_ms"], rel=1e-9)
    # the lab's stop-and-copy sent the 2048 pages dirtied during pass 5: the same 204.8 ms
    assert fig["stop_copy_ms"] == pytest.approx(204.8, abs=0.01) and abs(fig["model_stop_copy_error_pct"]) < 0.01
    assert abs(fig["model_copy_time_error_pct"]) < 0.01
    with_beta = cp.run_figures(data["runs"][0], overhead_ms=1500.0)
    assert with_beta["model_migration_time_ms"] == pytest.approx(fig["model_migration_time_ms"] + 1500.0)
    assert with_beta["model_downtime_bound_ms"] == pytest.approx(fig["model_downtime_bound_ms"] + 1500.0)
    assert with_beta["model_eq9_downtime_ms"] == pytest.approx(fig["model_eq9_downtime_ms"] + 1500.0)
    with pytest.raises(cp.CampaignError, match="overhead_ms"):
        cp.run_figures(data["runs"][0], overhead_ms=-1)
    # Eq. 11's beta apart from Eq. 10's: only the downtime figures move
    split = cp.run_figures(data["runs"][0], overhead_ms=1500.0, downtime_overhead_ms=400.0)
    assert split["model_migration_time_ms"] == with_beta["model_migration_time_ms"]
    assert split["model_downtime_ms"] == pytest.approx(fig["model_downtime_ms"] + 400.0)
    assert split["model_downtime_bound_ms"] == pytest.approx(fig["model_downtime_bound_ms"] + 400.0)
    assert split["model_stop_copy_error_pct"] == pytest.approx(fig["model_stop_copy_error_pct"])
    assert split["model_copy_time_error_pct"] == pytest.approx(fig["model_copy_time_error_pct"])
    with pytest.raises(cp.CampaignError, match="downtime_overhead_ms"):
        cp.run_figures(data["runs"][0], downtime_overhead_ms="soon")


def test_stock_library_falls_back_to_the_progress_lines(tmp_path):
    # Stock libxenguest: no policy log; xl's progress lines (with the shim) still give the passes.
    sim = simulate("xen417", 1000.0)
    rec = migration_record(sim, "xen417", extra={"guest_memory_mib": 256})
    lines, policy_text, dummy = xl_output(sim, "xen417", {"max_iterations": 5, "target_dirty_count": 50})
    assert policy_text
    rec["results"]["precopy"], rec["results"]["precopy_run"] = [], None
    rdir = make_campaign(tmp_path, "guest_size_sweep", [{"name": "001-m256-1", "point": {"guest_memory_mib": 256},
                                                         "records": {"migration": rec}}])
    dummy, figs, dummy = load_figures(rdir)
    fig = figs[0]
    assert fig["timing_source"] == "progress" and fig["policy_ran"] == "xen417"
    assert fig["guest_pages"] == P and fig["live_passes"] == len(sim["trace"]) - 1
    assert fig["pass1_ms"] == pytest.approx(6553.6, abs=0.01)  # pass starts as xl printed them
    assert fig["bandwidth_mbps"] == pytest.approx(LINK_PPS * 4096 * 8 / 1e6, rel=1e-5)
    assert fig["copy_time_ms"] is None and fig["stop_copy_ms"] is None and fig["model_copy_time_error_pct"] is None
    assert fig["model_max_rounds"] == 6  # Xen 4.17's 5 live passes + the stop-and-copy
    assert fig["model_migration_time_ms"] is not None and fig["model_migration_time_error_pct"] is not None


def test_service_records_give_their_figures(tmp_path):
    rdir = make_campaign(tmp_path, "call_length_sweep", [run_entry(
        "001-d5-1", {"call_length_s": 5}, sipp=sipp_record(), smtp=smtp_record(), voip=voip_record(),
        probe=probe_record())])
    dummy, figs, dummy = load_figures(rdir)
    fig = figs[0]
    stat = sipp.stat_figures(parsers.parse_sipp_stat(_read("probe", "sipp", "uac-stat-outage.csv")))
    assert fig["failed_calls"] == stat["calls_failed"] and fig["calls_total"] == stat["calls_total"]
    assert fig["sip_response_ms"] == sipp.rtt_figures(parsers.parse_sipp_rtt(_read("probe", "sipp", "uac-rtt-outage.csv")))[
        "response_time_mean_ms"]
    voip = json.loads(_voip_figures())
    assert fig["mos_f1"] == voip["summary"]["mos_f1_min"] and fig["jitter_max_ms"] == voip["summary"]["jitter_max_ms"]
    assert fig["packets_lost"] == voip["summary"]["lost"]
    for key in cp.LOSS_RUN_KEYS:
        assert fig[key] == sum(s["loss_runs"][key] for s in voip["streams"])
    probe = json.loads(_probe_figures())
    assert fig["downtime_ms"] == probe["downtime_ms"] and fig["ping_rtt_ms"] == probe["ping_statistics"]["rtt_avg_ms"]
    assert 250 < fig["downtime_ms"] < 400  # the fixture's 300 ms outage
    smtp = smtp_load.summarize(**{"records": smtp_load.parse_log(_read("smtp", "sender-complete.log"))["records"]})
    assert fig["mail_response_ms"] == smtp["response_ms"]["mean"] and fig["failed_mails"] == 0


# ---------------------------------------------------------------------------------------------
# aggregation, summary.csv, runs.csv

def cap_runs(times, downtimes=None, probe_missing=()):
    """cap 35 and cap 50 with three repetitions each; migration times set per run."""
    out = []
    k = 0
    for cap in (50, 35):
        for rep in (1, 2, 3):
            name = "%03d-cap%d-%d" % (k + 1, cap, rep)
            entry = run_entry(name, {"cap": cap}, rep=rep)
            entry["records"]["migration"]["results"]["total_time_ms"] = times[k]
            if name not in probe_missing:
                entry["records"]["probe"] = probe_record(downtime_ms=(downtimes or [500.0] * 6)[k], rtt_ms=10.0 + k)
            out.append(entry)
            k += 1
    return out


def test_medians_per_point_with_their_runs(tmp_path):
    rdir = make_campaign(tmp_path, "cap_sweep", cap_runs([9000.0, 7000.0, 8000.0, 1000.0, 3000.0, 2500.0],
                                                         downtimes=[5, 6, 7, 100, 200, 400.0],
                                                         probe_missing=("006-cap35-3",)))
    data, figs, points = load_figures(rdir)
    assert [p["label"] for p in points] == ["cap=35", "cap=50"]  # sorted by cap, not plan order
    p35, p50 = points
    assert p35["runs"] == ["004-cap35-1", "005-cap35-2", "006-cap35-3"]
    mt = p35["metrics"]["migration_time_ms"]
    assert (mt["n"], mt["median"], mt["mean"], mt["min"], mt["max"]) == (3, 2500.0, 6500.0 / 3, 1000.0, 3000.0)
    dt = p35["metrics"]["downtime_ms"]
    assert dt["n"] == 2 and dt["median"] == 150.0 and dt["runs"] == ["004-cap35-1", "005-cap35-2"]
    assert p50["metrics"]["migration_time_ms"]["median"] == 8000.0 and p50["metrics"]["downtime_ms"]["median"] == 6
    assert "failed_calls" not in p50["metrics"]  # no SIPp record: no row


def test_summary_csv_columns_and_rows(tmp_path):
    rdir = make_campaign(tmp_path, "cap_sweep", cap_runs([9000.0, 7000.0, 8000.0, 1000.0, 3000.0, 2500.0]))
    data, figs, points = load_figures(rdir)
    text = cp.summary_csv(data["campaign"], points, data["sweep"])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["campaign", "point", "cap", "metric", "n", "median", "mean", "min", "max", "runs"]
    by = dict(((r[1], r[3]), r) for r in rows[1:])
    row = by[("cap=50", "migration_time_ms")]
    assert row[0] == "cap_sweep" and row[2] == "50" and row[4:9] == ["3", "8000.0", "8000.0", "7000.0", "9000.0"]
    assert row[9] == "001-cap50-1 002-cap50-2 003-cap50-3"
    assert set(r[3] for r in rows[1:]) <= set(cp.METRIC_NAMES)
    # metric order follows METRICS within a point
    metrics35 = [r[3] for r in rows[1:] if r[1] == "cap=35"]
    assert metrics35 == [m for m in cp.METRIC_NAMES if m in metrics35]
    runs = list(csv.DictReader(io.StringIO(cp.runs_csv(figs, data["sweep"]))))
    assert [r["run"] for r in runs] == [f["run"] for f in figs]
    assert list(runs[0])[:3] == ["run", "rep", "cap"] and list(runs[0])[-2:] == ["sources", "artifacts"]
    assert runs[0]["sources"] == "runs/001-cap50-1.migration.json runs/001-cap50-1.probe.json"
    assert float(runs[0]["migration_time_ms"]) == 9000.0 and runs[0]["timing_source"] == "precopy_log"


def test_unplanned_runs_take_their_point_from_the_record(tmp_path):
    rdir = make_campaign(tmp_path, "cap_sweep", cap_runs([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), plan=False,
                         params={"guest": "voip"})
    data, dummy, points = load_figures(rdir)
    assert data["plan_file"] is None and data["sweep"] == ["cap"] and len(data["runs"]) == 6
    assert [p["point"] for p in points] == [{"cap": 35}, {"cap": 50}]


def test_interrupted_campaign(tmp_path):
    runs = cap_runs([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    # the last run got its probe fetched but not its migration record: not done
    del runs[-1]["records"]["migration"]
    rdir = make_campaign(tmp_path, "cap_sweep", runs)
    os.makedirs(os.path.join(rdir, "runs", "004-cap35-1"))
    with open(os.path.join(rdir, "runs", "004-cap35-1", "call.pcap"), "wb") as f:
        f.write(b"\xd4\xc3\xb2\xa1")
    data = cp.load_campaign(rdir)
    assert data["missing"] == ["006-cap35-3"] and len(data["runs"]) == 5
    assert any("006-cap35-3" in w and "no migration record" in w for w in data["warnings"])
    run4 = [r for r in data["runs"] if r["name"] == "004-cap35-1"][0]
    assert run4["artifacts"] == ["runs/004-cap35-1/call.pcap"]


def test_undeclared_varying_variable_becomes_a_sweep_variable(tmp_path):
    runs = [run_entry("001-a", {"policy": "xen34", "cap": 35}), run_entry("002-b", {"policy": "xen34", "cap": 50})]
    rdir = make_campaign(tmp_path, "sd_tracking", runs)
    data, dummy, points = load_figures(rdir)
    assert data["sweep"] == ["policy", "cap"] and len(points) == 2
    assert any("cap varies" in w for w in data["warnings"])


# ---------------------------------------------------------------------------------------------
# trends and sections

def test_trend_directions():
    assert cp.trend([1, 2, 3], [10, 20, 30])["direction"] == "rises"
    down = cp.trend([20, 35, 100], [60, 40, 10])
    assert down["direction"] == "falls" and down["slope"] < 0
    flat = cp.trend([1, 2, 3], [100, 101, 100.5])
    assert flat["direction"] == "flat" and abs(flat["change_pct"]) < 5
    assert cp.trend([1, 2, 3], [100, 101, 100.5], tolerance_pct=0.1)["direction"] == "rises"
    assert cp.trend([5], [1]) is None and cp.trend([5, 5], [1, 2]) is None
    assert cp.change(100, 50)["direction"] == "lower" and cp.change(100, 102)["direction"] == "same"
    assert cp.change(0, 3) == {"change_pct": None, "direction": "higher"}


def test_thesis_trends_of_table_2_and_3(thesis):
    t2 = thesis["thesis_table2"]
    for key in ("dirty_rate_mbps", "downtime_ms", "failed_calls"):
        assert cp.trend([r["call_length_s"] for r in t2], [r[key] for r in t2])["direction"] == "rises"
    t3 = thesis["thesis_table3"]
    caps = [r["cap"] for r in t3]
    assert cp.trend(caps, [r["downtime_ms"] for r in t3])["direction"] == "rises"
    assert cp.trend(caps, [r["response_ms"] for r in t3])["direction"] == "falls"


def thesis_cap_sweep(root, thesis, reverse_downtime=False):
    """A cap sweep whose measured medians are the thesis's Table 3 (downtime by probe, response by ping)."""
    runs = []
    for i, row in enumerate(thesis["thesis_table3"]):
        for rep in (1, 2):
            name = "%03d-cap%d-%d" % (2 * i + rep, row["cap"], rep)
            down = row["downtime_ms"] if not reverse_downtime else 2000.0 - row["downtime_ms"]
            # the two repetitions straddle the thesis's value, so the median is exactly it
            delta = 10.0 if rep == 1 else -10.0
            runs.append(run_entry(name, {"cap": row["cap"]}, rep=rep,
                                  probe=probe_record(downtime_ms=down + delta, rtt_ms=row["response_ms"] + delta / 100)))
    return make_campaign(root, "cap_sweep", runs)


def test_table4_cap_choice_on_measured_data_reuses_optimal_cap(tmp_path, thesis):
    data = cp.build_report(thesis_cap_sweep(tmp_path, thesis), thesis=thesis, plots=False)
    secs = dict((s["id"], s) for s in data["sections"])
    facts = secs["table4"]["facts"]
    assert facts["optimal_cap"] == 35 == facts["thesis_optimal_cap"] and facts["optimal_cap_by_value"] == 40
    assert facts["response_metric"] == "ping_rtt_ms" and facts["downtime_metric"] == "downtime_ms"
    # every trend value equals the thesis's Table 4 within its rounding
    t4 = thesis["thesis_table4"]
    rows = secs["table4"]["tables"][0]["rows"]
    assert [float(r[0]) for r in rows] == t4["caps"]
    for i, r in enumerate(rows):
        assert abs(float(r[1]) - t4["response_trend_ms"][i]) <= 0.06 and r[2] == cp._fmt(t4["response_trend_ms"][i])
        assert abs(float(r[3]) - t4["weighted_downtime_trend_ms"][i]) <= 0.06
    trends = dict((t["metric"], t) for t in secs["table3"]["trends"])
    assert trends["downtime ms"]["reproduced"] is True and trends["downtime ms"]["ours"]["direction"] == "rises"
    assert trends["response ms"]["reproduced"] is True and trends["response ms"]["ours"]["direction"] == "falls"
    assert "reproduced" in trends["response ms"]["text"] and "falls with cap % in ours" in trends["response ms"]["text"]
    # the table has our medians next to the thesis's
    t3 = secs["table3"]["tables"][0]
    assert t3["columns"][:5] == ["cap %", "downtime ms (ours)", "downtime ms (thesis)", "dirty rate Mbps (ours)",
                                 "dirty rate Mbps (thesis)"]
    row35 = [r for r in t3["rows"] if r[0] == "35"][0]
    assert row35[1] == "800" and row35[2] == "800" and row35[6] == "38.5" and row35[-2] == "2"


def test_a_reversed_trend_is_not_reproduced(tmp_path, thesis):
    data = cp.build_report(thesis_cap_sweep(tmp_path, thesis, reverse_downtime=True), thesis=thesis, plots=False)
    sec = [s for s in data["sections"] if s["id"] == "table3"][0]
    t = [t for t in sec["trends"] if t["metric"] == "downtime ms"][0]
    assert t["ours"]["direction"] == "falls" and t["thesis"]["direction"] == "rises" and t["reproduced"] is False
    assert t["text"].endswith("not reproduced.")
    assert "downtime ms no" in data["report_md"]


def test_table2_section(tmp_path, thesis):
    runs = []
    for i, (d, failed) in enumerate(((5, 40), (10, 90), (20, 150))):
        runs.append(run_entry("%03d-d%d-1" % (i + 1, d), {"call_length_s": d}, sim=simulate("xen34", 500.0 * (i + 1)),
                              sipp=sipp_record(failed=failed), probe=probe_record(downtime_ms=800.0 + 100 * i)))
    data = cp.build_report(make_campaign(tmp_path, "call_length_sweep", runs), thesis=thesis, plots=False)
    sec = data["sections"][0]
    table = sec["tables"][0]
    assert table["columns"] == ["call length s", "dirty rate Mbps (ours)", "dirty rate Mbps (thesis)", "downtime ms (ours)",
                                "downtime ms (thesis)", "failed calls (ours)", "failed calls (thesis)", "n", "runs"]
    assert [r[0] for r in table["rows"]] == ["5", "10", "15", "20", "30"]  # thesis-only rows kept, in order
    assert table["rows"][2][1] == "-" and table["rows"][2][2] == "1117" and table["rows"][2][-2] == "0"
    assert table["rows"][0][5:7] == ["40", "45"] and table["rows"][0][3:5] == ["800", "881"]
    assert all(t["reproduced"] is True for t in sec["trends"]), [t["text"] for t in sec["trends"]]


def test_table5_6_section(tmp_path, thesis):
    runs = []
    # docs/precopy.md's non-converging guest: a 2000-page hot set rewritten faster than the link + 500 pages/s
    hot = (2000, 1e6, 500.0)
    for rep in (1, 2):
        runs.append(run_entry("%d-xen34" % rep, {"policy": "xen34"}, rep=rep, sim=simulate("xen34", hot=hot)))
        runs.append(run_entry("%d-sd" % rep, {"policy": "sd"}, rep=rep, policy="sd",
                              sim=stop_policy.simulate("sd", stop_policy.HotSetModel(P, *hot), LINK_PPS * 4096,
                                                       track_from=4, sd_low=0, sd_high=600)))
    data = cp.build_report(make_campaign(tmp_path, "sd_tracking", runs), thesis=thesis, plots=False)
    sec = data["sections"][0]
    rows = dict((r[0], r) for r in sec["tables"][0]["rows"])
    assert rows["xen34"][2] == "13441" and rows["sd"][2] == "12369" and rows["xen34"][10] == "29"
    assert rows["xen34"][9] == "29" and rows["sd"][9] == "5"
    facts = sec["facts"]
    assert facts["after_first_reduction_pct"] > 50 and facts["thesis_after_first_reduction_pct"] == 58.01
    trends = dict((t["metric"], t) for t in sec["trends"])
    assert trends["time after the first pass"]["reproduced"] is True
    assert trends["time after the first pass"]["ours"]["direction"] == "lower"


def test_table7_9_section(tmp_path, thesis):
    good = voip_record(mos=(4.3, 4.5, 4.2), jitter_ms=12.0, loss_runs={"a_sl2": 1}, pdv={"a_d90": 2})
    bad = voip_record(mos=(3.1, 2.0, 1.5), jitter_ms=15.0, loss_runs={"a_sl1": 2, "a_sl10": 7}, pdv={"a_d50": 9})
    runs = [run_entry("001-cap100-1", {"cap": 100}, voip=good), run_entry("002-cap35-1", {"cap": 35}, voip=bad)]
    data = cp.build_report(make_campaign(tmp_path, "voip_quality_caps", runs), thesis=thesis, plots=False)
    sec = data["sections"][0]
    t7, t8, t9 = sec["tables"]
    assert t7["columns"] == ["figure", "cap 100 (ours)", "cap 100 (thesis)", "cap 35 (ours)", "cap 35 (thesis)"]
    assert t7["rows"][9] == ["a_sl10", "0", "0", "7", "73"] and t8["rows"][0] == ["a_d50", "0", "0", "9", "43"]
    assert t9["rows"][0] == ["MOS F1 (50 ms)", "4.30", "4.28", "3.10", "3.54"]
    assert t9["rows"][-1] == ["runs", "001-cap100-1", "", "002-cap35-1", ""]
    trends = dict((t["metric"], t) for t in sec["trends"])
    assert all(trends[k]["reproduced"] for k in ("MOS F1", "MOS F2", "MOS adaptive", "max jitter", "loss runs (all lengths)"))
    assert trends["MOS F2"]["ours"]["direction"] == "lower" and trends["max jitter"]["thesis"]["direction"] == "higher"


def guest_size_runs(hotplug_ms=300.0):
    runs = []
    for size in (128, 256, 512):
        for rep in (1, 2):
            sim = stop_policy.simulate("xen417", stop_policy.ConstantRateModel(size * 256, 2000.0), LINK_PPS * 4096)
            runs.append(run_entry("m%d-%d" % (size, rep), {"guest_memory_mib": size}, rep=rep, sim=sim, policy="xen417",
                                  timing={"pre_ms": 200.0 * rep, "hotplug_ms": hotplug_ms},
                                  probe=probe_record(downtime_ms=hotplug_ms + 50.0)))
    return runs


def test_guest_size_section_against_the_model(tmp_path, thesis):
    data = cp.build_report(make_campaign(tmp_path, "guest_size_sweep", guest_size_runs()), thesis=thesis, plots=False)
    sec = data["sections"][0]
    errors = sec["facts"]["errors"]
    mt = errors["model_migration_time_error_pct"]
    per_run = [f["model_migration_time_error_pct"] for f in data["figures"]]
    assert mt["n"] == 6 and mt["max_abs"] == pytest.approx(max(abs(e) for e in per_run))
    assert mt["within_15"] is (mt["max_abs"] <= 15.0) and all(e < 0 for e in per_run)  # the model leaves out overheads
    assert errors["model_copy_time_error_pct"]["max_abs"] < 1.0
    note = [n for n in sec["notes"] if n.startswith("Predicted against measured migration time")][0]
    assert ("%.1f %%" % mt["max_abs"]) in note
    trends = dict((t["metric"], t) for t in sec["trends"])
    assert trends["migration time"]["ours"]["direction"] == "rises" and trends["migration time"]["reproduced"] is True
    assert "in the model" in trends["migration time"]["text"]
    assert trends["migration time (thesis, Fig. 5-1)"]["reproduced"] is True
    rows = sec["tables"][0]["rows"]
    assert [r[0] for r in rows] == ["128", "256", "512"] and rows[0][-1] == "m128-1 m128-2"


def test_big_fixed_overheads_fail_the_15_percent(tmp_path, thesis):
    data = cp.build_report(make_campaign(tmp_path, "guest_size_sweep", guest_size_runs(hotplug_ms=5000.0)),
                           thesis=thesis, plots=False)
    errors = data["sections"][0]["facts"]["errors"]
    assert errors["model_migration_time_error_pct"]["within_15"] is False
    assert "within 15 %: no" in data["report_md"]
    # beta = the known overheads brings the prediction back
    fixed = cp.build_report(data["dir"], thesis=thesis, plots=False, overhead_ms=5230.0)
    assert fixed["sections"][0]["facts"]["errors"]["model_migration_time_error_pct"]["max_abs"] < 3.0


def add_calibration(rdir, name="idle", pre_ms=700.0, hotplug_ms=2300.0, probe_ms=None, with_log=True):
    """calibration/<name>.migration.json (+ .probe.json) of an idle migration, as the campaign fetches it."""
    sim = stop_policy.simulate("xen417", stop_policy.ConstantRateModel(P, 20.0), LINK_PPS * 4096)
    rec = migration_record(sim, "xen417", extra={"campaign": "guest_size_sweep", "run": "calibration-" + name},
                           pre_ms=pre_ms, hotplug_ms=hotplug_ms)
    if not with_log:
        rec["results"]["precopy"], rec["results"]["precopy_run"] = [], None
    os.makedirs(os.path.join(rdir, "calibration"), exist_ok=True)
    results.write_json_atomic(os.path.join(rdir, "calibration", name + ".migration.json"), rec)
    if probe_ms is not None:
        results.write_json_atomic(os.path.join(rdir, "calibration", name + ".probe.json"), probe_record(downtime_ms=probe_ms))
    return rec


def test_beta_from_the_calibration_migration(tmp_path, thesis):
    rdir = make_campaign(tmp_path, "guest_size_sweep", guest_size_runs(hotplug_ms=5000.0))
    plain = cp.build_report(rdir, thesis=thesis, plots=False)
    assert plain["overheads"]["source"] == "none" and "beta = 0" in plain["report_md"]
    rec = add_calibration(rdir, pre_ms=200.0, hotplug_ms=5000.0, probe_ms=5150.0)
    res = rec["results"]
    copy_ms = res["precopy_run"]["final"]["elapsed_ms"] - res["precopy"][0]["elapsed_ms"]
    stop_ms = res["precopy_run"]["final"]["elapsed_ms"] - res["precopy_run"]["final"]["suspend_ms"]
    beta = cp.calibration_overheads(rdir)
    assert beta["source"] == "calibration" and beta["runs"] == ["calibration/idle.migration.json"]
    assert beta["overhead_ms"] == pytest.approx(res["total_time_ms"] - copy_ms) and 5200 < beta["overhead_ms"] < 5300
    assert beta["downtime_overhead_ms"] == pytest.approx(5150.0 - stop_ms)
    data = cp.build_report(rdir, thesis=thesis, plots=False)
    assert data["overheads"] == beta
    fig = data["figures"][0]
    assert fig["model_overhead_ms"] == beta["overhead_ms"] and fig["model_downtime_overhead_ms"] == beta["downtime_overhead_ms"]
    assert fig["model_migration_time_ms"] == pytest.approx(fig["model_copy_time_ms"] + beta["overhead_ms"])
    errors = data["sections"][0]["facts"]["errors"]
    assert errors["model_migration_time_error_pct"]["max_abs"] < 3.0
    assert plain["sections"][0]["facts"]["errors"]["model_migration_time_error_pct"]["within_15"] is False
    assert "measured by the idle calibration migration" in data["report_md"]
    # the calibration run is not a run of the sweep
    assert [r["name"] for r in data["runs"]] == [r["name"] for r in plain["runs"]]
    # a beta set for the report wins; provenance resolves beta the way the report did
    given = cp.build_report(rdir, thesis=thesis, plots=False, overhead_ms=0.0)
    assert given["overheads"]["source"] == "given" and given["figures"][0]["model_overhead_ms"] == 0.0
    # the downtime's beta alone also turns the calibration off: the migration time's is then 0
    assert cp.resolve_overheads(rdir, downtime_overhead_ms=300.0) == {
        "overhead_ms": 0.0, "downtime_overhead_ms": 300.0, "source": "given", "runs": []}
    out = os.path.join(str(tmp_path), "out")
    os.makedirs(out)
    cp.write_report(data, dest=out)
    assert cp.check_provenance(rdir, summary_dir=out) == []
    assert cp.check_provenance(rdir, summary_dir=out, overhead_ms=0.0)


def test_calibration_without_the_policy_log_is_refused(tmp_path, thesis):
    rdir = make_campaign(tmp_path, "guest_size_sweep", guest_size_runs())
    add_calibration(rdir, with_log=False)
    with pytest.raises(cp.CampaignError, match="calibration idle .*no memory-copy time"):
        cp.build_report(rdir, thesis=thesis, plots=False)
    with open(os.path.join(rdir, "calibration", "idle.migration.json"), "w", encoding="utf-8") as f:
        f.write("{not json")
    with pytest.raises(cp.CampaignError, match="calibration idle"):
        cp.calibration_overheads(rdir)


def test_unknown_campaign_gets_a_generic_table(tmp_path):
    runs = [run_entry("001-a", {"dirty_rate": 0}), run_entry("002-b", {"dirty_rate": 2000})]
    rdir = make_campaign(tmp_path, "migrate_many", runs)
    data = cp.build_report(rdir, plots=False)
    assert data["sweep"] == ["dirty_rate"] and data["sections"][0]["id"] == "generic"
    assert data["sections"][0]["tables"][0]["columns"][0] == "dirty_rate"
    assert "Campaign without a thesis table" in data["report_md"]


# ---------------------------------------------------------------------------------------------
# writing and provenance

def test_report_files_and_provenance(tmp_path, thesis):
    rdir = thesis_cap_sweep(tmp_path, thesis)
    data = cp.build_report(rdir, thesis=thesis, thesis_source="playbooks/vars/thesis_tables.yml", plots=False)
    written = cp.write_report(data)
    assert sorted(os.path.basename(p) for p in written) == ["report.md", "runs.csv", "summary.csv"]
    assert cp.write_report(data) == []  # unchanged content is not rewritten
    assert cp.check_provenance(rdir) == []
    report = open(os.path.join(rdir, "report.md"), encoding="utf-8").read()
    assert report.startswith("# Campaign cap_sweep, %s" % TS) and "## Table 4: choosing the cap" in report
    assert "| 35 | 800 | 800 |" in report and "## Runs" in report and "16 run(s) of 16 planned" in report

    summary = os.path.join(rdir, "summary.csv")
    original = open(summary, encoding="utf-8").read()
    rows = list(csv.DictReader(io.StringIO(original)))
    i = [k for k, r in enumerate(rows) if r["metric"] == "downtime_ms" and r["point"] == "cap=35"][0]

    def rewrite(mutate):
        changed = [dict(r) for r in rows]
        mutate(changed[i])
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(changed)
        with open(summary, "w", encoding="utf-8") as f:
            f.write(buf.getvalue())
        return cp.check_provenance(rdir)

    assert any("median is 801" in p for p in rewrite(lambda r: r.update(median="801")))
    assert any("lists runs" in p for p in rewrite(lambda r: r.update(runs=r["runs"].split()[0])))
    assert any("not in runs.csv" in p for p in rewrite(lambda r: r.update(runs="nobody")))
    with open(summary, "w", encoding="utf-8") as f:
        f.write(original)
    runs_file = os.path.join(rdir, "runs.csv")
    text = open(runs_file, encoding="utf-8").read()
    with open(runs_file, "w", encoding="utf-8") as f:
        f.write(text.replace(",precopy_log,", ",progress,", 1).replace("810.0", "811.0", 1))
    problems = cp.check_provenance(rdir)
    assert any("downtime_ms is 811.0, its records give 810.0" in p for p in problems), problems
    # a changed run record is caught too
    with open(runs_file, "w", encoding="utf-8") as f:
        f.write(text)
    rec = results.read_json(os.path.join(rdir, "runs", "001-cap20-1.probe.json"))
    rec["results"]["downtime_ms"] = 1.0
    results.write_json_atomic(os.path.join(rdir, "runs", "001-cap20-1.probe.json"), rec)
    assert any("001-cap20-1: downtime_ms" in p for p in cp.check_provenance(rdir))


def test_plots_are_png_and_deterministic(tmp_path, thesis):
    pytest.importorskip("matplotlib")
    rdir = make_campaign(tmp_path, "guest_size_sweep", guest_size_runs())
    data = cp.build_report(rdir, thesis=thesis)
    assert sorted(data["plots"]) == ["guest_size.png"]
    assert data["plots"]["guest_size.png"].startswith(b"\x89PNG\r\n\x1a\n")
    assert "![Guest size sweep" in data["report_md"] and "(plots/guest_size.png)" in data["report_md"]
    again = cp.build_report(rdir, thesis=thesis)
    assert again["plots"] == data["plots"]
    written = cp.write_report(data)
    assert os.path.join(rdir, "plots", "guest_size.png") in written and cp.write_report(again) == []


def test_dest_elsewhere(tmp_path, thesis):
    rdir = make_campaign(tmp_path, "guest_size_sweep", guest_size_runs())
    data = cp.build_report(rdir, thesis=thesis, plots=False)
    out = str(tmp_path / "out")
    cp.write_report(data, out)
    assert sorted(os.listdir(out)) == ["report.md", "runs.csv", "summary.csv"]
    assert cp.check_provenance(rdir, summary_dir=out) == []
    assert cp.check_provenance(rdir, summary_dir=out, overhead_ms=100.0)  # another beta gives other model figures


# ---------------------------------------------------------------------------------------------
# bad input: every problem is a CampaignError naming what is wrong

def one_run_dir(tmp_path, **records):
    return make_campaign(tmp_path, "cap_sweep", [run_entry("001-cap35-1", {"cap": 35}, **records)])


def test_bad_directories(tmp_path):
    with pytest.raises(cp.CampaignError, match="does not exist"):
        cp.load_campaign(str(tmp_path / "nope"))
    with pytest.raises(cp.CampaignError, match="has no runs/ directory"):
        cp.load_campaign(str(tmp_path))
    os.makedirs(str(tmp_path / "runs"))
    with pytest.raises(cp.CampaignError, match="no migration records"):
        cp.load_campaign(str(tmp_path))
    with pytest.raises(cp.CampaignError, match="directory path"):
        cp.load_campaign(None)


@pytest.mark.parametrize("mutate,message", [
    (lambda d: _write(d, "runs/001-cap35-1.migration.json", "{not json"), "001-cap35-1.migration.json is not valid JSON"),
    (lambda d: _write(d, "runs/001-cap35-1.migration.json", "[1, 2]"), "must be a JSON object"),
    (lambda d: _write(d, "runs/001-cap35-1.probe.json", json.dumps(sipp_record())), "expected a 'downtime_probe' record"),
    (lambda d: _edit(d, "runs/001-cap35-1.migration.json", lambda r: r.pop("results")), "lacks results"),
    (lambda d: _edit(d, "runs/001-cap35-1.migration.json", lambda r: r.update(schema_version=7)), "unsupported schema_version"),
    (lambda d: _edit(d, "runs/001-cap35-1.migration.json", lambda r: r["results"].update(total_time_ms="fast")),
     "results.total_time_ms must be a number"),
    (lambda d: _edit(d, "runs/001-cap35-1.migration.json", lambda r: r.update(cap=50)), "the plan says cap=35"),
    (lambda d: _edit(d, "runs/001-cap35-1.migration.json", lambda r: r.update(run="other")), "says run 'other'"),
    (lambda d: _edit(d, "runs/001-cap35-1.migration.json", lambda r: r["results"]["precopy"][0].update(elapsed_ms=None)),
     r"results.precopy\[0\].elapsed_ms must be a number"),
    (lambda d: _edit(d, "runs/001-cap35-1.migration.json", lambda r: r["results"].update(precopy={"a": 1})),
     "results.precopy must be a list"),
    (lambda d: _edit(d, "runs/001-cap35-1.migration.json", lambda r: r["results"]["precopy_run"].update(final=[])),
     "precopy_run.final must be an object"),
    (lambda d: _edit(d, "runs/001-cap35-1.probe.json", lambda r: r["results"].update(ping_statistics=3)),
     "ping_statistics must be an object"),
    (lambda d: _write(d, "plan.json", "{}"), "expected a list of runs"),
    (lambda d: _write(d, "plan.json", json.dumps({"runs": [{"name": "a.b"}]})), "no valid name"),
    (lambda d: _write(d, "plan.json", json.dumps({"runs": [{"name": "a"}, {"name": "a"}]})), "appears twice"),
    (lambda d: _write(d, "plan.json", json.dumps({"runs": [{"name": "001-cap35-1", "point": 35}]})), "point must be an object"),
    (lambda d: _write(d, "plan.json", json.dumps({"runs": [{"name": "001-cap35-1", "point": {}}]})),
     "no value for the sweep variable cap"),
    (lambda d: _write(d, "plan.json", json.dumps({"sweep": 3, "runs": []})), "sweep must be a list"),
    (lambda d: _write(d, "params.json", "[]"), "params.json must be an object"),
])
def test_garbled_input_names_the_problem(tmp_path, mutate, message):
    rdir = one_run_dir(tmp_path, probe=probe_record())
    mutate(rdir)
    with pytest.raises(cp.CampaignError, match=message):
        cp.build_report(rdir, plots=False)


def _write(rdir, rel, text):
    with open(os.path.join(rdir, rel), "w", encoding="utf-8") as f:
        f.write(text)


def _edit(rdir, rel, mutate):
    path = os.path.join(rdir, rel)
    rec = results.read_json(path)
    mutate(rec)
    results.write_json_atomic(path, rec)


BAD_VALUES = ("x", None, {}, -1, 1e308)


def _paths(value, prefix=()):
    """Every (path) into a JSON value, dicts and lists included (lists: their first item)."""
    yield prefix
    if isinstance(value, dict):
        for key in value:
            yield from _paths(value[key], prefix + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value[:1]):
            yield from _paths(item, prefix + (i,))


def test_any_garbled_field_gives_a_campaign_error_or_figures(tmp_path):
    """Replace each field of the records with bad values: never an exception other than CampaignError."""
    rdir = one_run_dir(tmp_path, probe=probe_record(), sipp=sipp_record(), voip=voip_record())
    base = dict((label, results.read_json(os.path.join(rdir, "runs", "001-cap35-1.%s.json" % label)))
                for label in ("migration", "probe", "sipp", "voip"))
    tried = 0
    for label, record in base.items():
        for path in _paths(record["results"], ("results",)):
            if len(path) > 4:
                continue
            for bad in BAD_VALUES:
                rec = json.loads(json.dumps(record))
                node = rec
                for key in path[:-1]:
                    node = node[key]
                node[path[-1]] = bad
                _write(rdir, "runs/001-cap35-1.%s.json" % label, json.dumps(rec))  # no fsync: many writes
                try:
                    data = cp.build_report(rdir, plots=False)
                    assert data["summary_csv"].startswith("campaign,point,cap,metric")
                except cp.CampaignError:
                    pass
                tried += 1
        _write(rdir, "runs/001-cap35-1.%s.json" % label, json.dumps(record))
    assert tried > 250, tried


def test_bad_options(tmp_path):
    rdir = one_run_dir(tmp_path)
    with pytest.raises(cp.CampaignError, match="response_metric"):
        cp.build_report(rdir, plots=False, response_metric="rtt")
    with pytest.raises(cp.CampaignError, match="tolerance_pct"):
        cp.build_report(rdir, plots=False, tolerance_pct=-1)
    with pytest.raises(cp.CampaignError, match="thesis must be the mapping"):
        cp.build_report(rdir, plots=False, thesis=[1])
    bad = tmp_path / "thesis.yml"
    bad.write_text("a: [1,\n")
    with pytest.raises(cp.CampaignError, match="not valid YAML"):
        cp.load_thesis(str(bad))
    bad.write_text("a: 1\n")
    with pytest.raises(cp.CampaignError, match="no thesis_"):
        cp.load_thesis(str(bad))
    with pytest.raises(cp.CampaignError, match="cannot read"):
        cp.load_thesis(str(tmp_path / "none.yml"))


def test_missing_matplotlib_is_a_clear_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    assert cp.have_matplotlib() is False
    with pytest.raises(cp.CampaignError, match="the plots need matplotlib"):
        cp.render_plots([{"plots": [{"file": "x.png", "title": "x", "panels": []}]}])


# ---------------------------------------------------------------------------------------------
# real campaign directories (committed by the lead after lab runs)

REAL = sorted(d for d in glob.glob(os.path.join(FIX, "campaign", "*", "*")) if os.path.isdir(os.path.join(d, "runs")))


@pytest.mark.skipif(not REAL, reason="no real campaign results under tests/fixtures/campaign/<campaign>/<timestamp>/ yet")
@pytest.mark.parametrize("rdir", REAL, ids=lambda d: os.path.relpath(d, os.path.join(FIX, "campaign")))
def test_real_fixture_directories(tmp_path, rdir, thesis):
    copy = str(tmp_path / "results")
    shutil.copytree(rdir, copy)
    data = cp.build_report(copy, thesis=thesis, plots=cp.have_matplotlib())
    assert data["figures"] and data["points"] and data["summary_csv"].count("\n") > 1
    cp.write_report(data)
    assert cp.check_provenance(copy) == []
    for fig in data["figures"]:
        assert fig["migration_time_ms"] and fig["migration_time_ms"] > 0
        assert fig["sources"][0] == "runs/%s.migration.json" % fig["run"]


@pytest.mark.skipif(not REAL, reason="no real campaign results under tests/fixtures/campaign/<campaign>/<timestamp>/ yet")
@pytest.mark.parametrize("rdir", REAL, ids=lambda d: os.path.relpath(d, os.path.join(FIX, "campaign")))
def test_real_fixture_summary_is_what_the_lab_run_wrote(tmp_path, rdir, thesis):
    """The aggregation, re-run on the records of a real campaign, gives the summary.csv and
    runs.csv written on the controller when that campaign ran (byte for byte), and every
    migration record belongs to a run of the plan (an interrupted campaign's missing runs are
    allowed: the report lists them)."""
    copy = str(tmp_path / "results")
    shutil.copytree(rdir, copy)
    data = cp.build_report(copy, thesis=thesis, plots=False)
    for name, key in (("summary.csv", "summary_csv"), ("runs.csv", "runs_csv")):
        with open(os.path.join(rdir, name), encoding="utf-8", newline="") as f:
            assert data[key] == f.read(), name
    loaded = cp.load_campaign(copy)
    assert loaded["runs"] and loaded["unplanned"] == [], (loaded["runs"], loaded["unplanned"])


def test_real_guest_size_sweep_against_the_model(tmp_path, thesis):
    """The lab's guest-size sweep of 2026-12-07 (9 runs at 224/240/256 MiB and an idle calibration
    migration): beta comes from the calibration, every sweep point's median prediction is within
    15 % of the measured migration time, and the working-set model beats the thesis's
    constant-rate form on the same runs and the same beta."""
    rdir = os.path.join(FIX, "campaign", "guest_size_sweep", "20261207T041243Z")
    copy = str(tmp_path / "results")
    shutil.copytree(rdir, copy)
    data = cp.build_report(copy, thesis=thesis, plots=False)
    beta = data["overheads"]
    assert beta["source"] == "calibration" and beta["runs"] == ["calibration/idle.migration.json"]
    cal = cp.run_figures(cp.load_calibration(copy)[0])
    assert beta["overhead_ms"] == cal["migration_time_ms"] - cal["copy_time_ms"]
    assert len(data["figures"]) == 9 and not data["missing"]
    for point in data["points"]:
        med = point["metrics"]["model_migration_time_error_pct"]["median"]
        assert abs(med) <= 15.0, (point["point"], med)
    ours = sorted(abs(f["model_migration_time_error_pct"]) for f in data["figures"])
    const = sorted(abs(f["model_const_migration_time_error_pct"]) for f in data["figures"])
    assert ours[4] < const[4]  # medians over the 9 runs
    assert sum(e <= 15.0 for e in ours) > sum(e <= 15.0 for e in const)
    # W binds: the first pass dirtied the 16 MiB working set and a little more, far below p t_1
    for f in data["figures"]:
        assert 4096 <= f["wws_pages"] < 2 * 4096 + 2048
        assert f["wws_pages"] < f["dirty_rate_after1_mbps"] * 1e6 / 8 / 4096 * f["pass1_ms"] / 1000.0
