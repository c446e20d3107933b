# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""policy_experiment: run figures and replay on the patched library's real logs.

The records are built the way xen_migrate builds them, from the logs the patch's C code wrote
(tests/fixtures/precopy_log, see its README); the lab runs live in tests/fixtures/stop_policy.
"""

from __future__ import annotations

import copy
import json
import os

import pytest

from ansible_collections.xenlab.migration.plugins.module_utils import policy_experiment as pe
from ansible_collections.xenlab.migration.plugins.module_utils import precopy_log, results

FIX = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures", "precopy_log")
with open(os.path.join(FIX, "expected.json"), encoding="utf-8") as _f:
    EXPECTED = json.load(_f)


def record_from_log(name, workload="w", rep=1):
    with open(os.path.join(FIX, name), encoding="utf-8") as f:
        mig = precopy_log.parse_precopy_log(f.read())[-1]
    run = dict((k, mig.get(k)) for k in ("policy", "source", "decider", "params", "stop", "final"))
    return results.measurement_record(
        "migration", {"total_time_ms": 1000.0, "downtime_estimate_ms": 50.0, "precopy": mig["records"],
                      "precopy_run": run},
        params={"target": "192.168.77.12"}, host="source",
        extra={"workload": workload, "rep": rep, "dirty_rate": 1, "dirty_wss_mb": 2})


@pytest.mark.parametrize("entry", EXPECTED["runs"], ids=lambda e: e["file"])
def test_figures_of_real_logs(entry):
    rec = record_from_log(entry["file"], workload=entry["trace"])
    fig = pe.run_figures(rec, name=entry["file"])
    # the harness printed "stopped IT before|after PASSES FINAL"
    dummy, it, when, passes, final = entry["harness"].split()
    assert fig["stop_iteration"] == int(it) and fig["live_passes"] == int(passes)
    assert fig["pages_stop_copy"] == int(final)
    assert fig["replay_match"] is True and fig["replay_passes"] == int(passes)
    assert fig["policy"] == ("xen" if entry["policy"] in ("xen", "xen417") else entry["policy"])
    trace = EXPECTED["traces"][entry["trace"]]
    # live passes send P, D_1, ..., D_(passes-1); the stop-and-copy sends the rest
    assert fig["pages_live"] == sum(trace[:int(passes)])
    assert fig["pages_sent"] == fig["pages_live"] + int(final)
    assert fig["pages_after_first"] == fig["pages_sent"] - trace[0]
    records = rec["results"]["precopy"]
    end1 = [r["elapsed_ms"] for r in records if r["phase"] == "after" and r["iteration"] == 1][0]
    assert fig["after_first_ms"] == pytest.approx(rec["results"]["precopy_run"]["final"]["elapsed_ms"] - end1, abs=1e-3)
    assert fig["stop_copy_ms"] >= 0 and fig["iterative_ms"] <= fig["after_first_ms"]
    final = rec["results"]["precopy_run"]["final"]
    assert fig["suspend_wait_ms"] == pytest.approx(final["paused_ms"] - final["suspend_ms"], abs=1e-3)
    assert fig["last_batch_ms"] == pytest.approx(final["elapsed_ms"] - final["paused_ms"], abs=1e-3)
    assert fig["suspend_wait_ms"] + fig["last_batch_ms"] == pytest.approx(fig["stop_copy_ms"], abs=2e-3)


def test_replay_mismatch_is_detected():
    rec = record_from_log("xl-migrate-03-sd-plateau.stderr")
    # the same calls replayed with another band must not stop where Xen stopped
    rec["results"]["precopy_run"]["params"]["sd_high"] = 100000
    rec["results"]["precopy_run"]["params"]["sd_low"] = 99999
    fig = pe.run_figures(rec, name="tampered")
    assert fig["replay_match"] is False


def test_probe_figures_are_taken():
    rec = record_from_log("xl-migrate-07-xen-idle.stderr")
    probe = results.measurement_record("downtime_probe", {"downtime_ms": 4321.5, "longest_gap_ms": 4400.0})
    fig = pe.run_figures(rec, probe, name="idle")
    assert fig["downtime_ms"] == 4321.5 and fig["longest_gap_ms"] == 4400.0


@pytest.mark.parametrize("mutate,message", [
    (lambda r: r.update(kind="downtime_probe"), "not a migration record"),
    (lambda r: r["results"].update(precopy_run=None), "no stop-policy log"),
    (lambda r: r["results"]["precopy_run"].update(final=None), "no final"),
    (lambda r: r["results"].update(precopy=[x for x in r["results"]["precopy"] if x["phase"] == "before"]),
     "no end of the first pass"),
])
def test_bad_records(mutate, message):
    rec = record_from_log("xl-migrate-01-xen-nonconverging.stderr")
    mutate(rec)
    with pytest.raises(pe.ExperimentDataError, match=message):
        pe.run_figures(rec, name="bad")


def test_aggregate_and_ratios():
    runs = []
    for name, policy in (("xl-migrate-01-xen-nonconverging.stderr", "xen"),
                         ("xl-migrate-02-xen34-nonconverging.stderr", "xen34"),
                         ("xl-migrate-05-adaptive-nonconverging.stderr", "adaptive")):
        for rep in (1, 2, 3):
            rec = record_from_log(name, workload="nc", rep=rep)
            rec["results"]["downtime_estimate_ms"] = 100.0 * rep
            runs.append(pe.run_figures(rec, name="%s-%d" % (policy, rep)))
    agg = pe.aggregate(runs)
    assert set(agg) == {("nc", "xen"), ("nc", "xen34"), ("nc", "adaptive")}
    assert all(row["n"] == 3 and row["replay_matches"] == 3 for row in agg.values())
    assert agg[("nc", "xen")]["median_toolstack_downtime_ms"] == 200.0
    rows = dict((r["policy"], r) for r in pe.ratio_table(agg))
    a, x34 = agg[("nc", "adaptive")], agg[("nc", "xen34")]
    assert rows["adaptive"]["ratio_pages_sent_vs_xen34"] == round(a["median_pages_sent"] / x34["median_pages_sent"], 3)
    assert rows["adaptive"]["ratio_pages_sent_vs_xen34"] < 1.0  # adaptive stops after 6 passes, xen34 after 29
    assert rows["xen34"]["ratio_pages_sent_vs_xen34"] == 1.0
    assert rows["xen"]["ratio_downtime_ms_vs_xen"] is None  # no probe: no Eq. (14) downtime
    table = pe.format_table(pe.ratio_table(agg))
    assert table.count("\n") == 2 + 3 and "| nc | adaptive | 3 |" in table
    csv_text = pe.runs_csv(runs)
    assert csv_text.splitlines()[0].split(",") == list(pe.RUN_FIELDS) and len(csv_text.splitlines()) == 10


def test_median():
    assert pe.median([3, None, 1, 2]) == 2 and pe.median([4, 1]) == 2.5 and pe.median([None]) is None


def test_replay_other_policy_on_recorded_trace():
    rec = record_from_log("xl-migrate-02-xen34-nonconverging.stderr")
    run = rec["results"]["precopy_run"]
    other = pe.replay_run(rec["results"]["precopy"], run, policy="adaptive")
    assert other["passes"] == 6  # where adaptive stops on xen34's 29-pass trace (its own run: 6 passes)
    short = pe.replay_run(copy.deepcopy(rec["results"]["precopy"])[:6], run, policy="xen34")
    assert short["iteration"] is None and "continues past the end" in short["error"]
