# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""precopy_log: the patched libxenguest's log lines and libxc's progress lines.

The fixtures (tests/fixtures/precopy_log/, see its README.md) are what the patch's C code and
Xen's own libxentoollog printed in the harness of tests/unit/xen_build; expected.json holds the
dirty counts each run was given and the harness's own account of where it stopped.
"""

from __future__ import annotations

import json
import os
import statistics

import pytest

from ansible_collections.xenlab.migration.plugins.module_utils import precopy_log as pl
from ansible_collections.xenlab.migration.plugins.module_utils import stop_policy as sp

FIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "fixtures", "precopy_log")
NAMES = {"xen": "xen417", "xen34": "xen34", "sd": "sd", "adaptive": "adaptive"}


def fixture(name):
    with open(os.path.join(FIX, name), encoding="utf-8") as f:
        return f.read()


EXPECTED = json.loads(fixture("expected.json"))
RUNS = EXPECTED["runs"]


def harness_stop(answer):
    word = answer.split()
    assert word[0] == "stopped"
    return int(word[1]), word[2] + "_send", int(word[3]), int(word[4])


# --- the patched libxenguest's lines ---------------------------------------------------------

@pytest.mark.parametrize("run", RUNS, ids=[r["file"] for r in RUNS])
def test_xl_stderr_parses_into_one_migration(run):
    text = fixture(run["file"])
    migs = pl.parse_precopy_log(text)
    assert len(migs) == 1
    mig = migs[0]
    counts = EXPECTED["traces"][run["trace"]]
    assert mig["policy"] == NAMES[run["policy"]] and mig["source"] == "env" and mig["error"] is None
    assert mig["decider"] == ("simple_precopy_policy" if run["policy"] == "xen" else "xenlab")
    assert all(mig["params"][k] == v for k, v in run["params"].items())
    iteration, stopped, passes, final = harness_stop(run["harness"])
    assert (mig["stop"]["iteration"], mig["stop"]["stopped"], mig["stop"]["passes"]) == (iteration, stopped, passes)
    assert mig["final"]["dirty_count"] == final == counts[passes] and mig["final"]["iteration"] == iteration
    # Every call: 2 per pass, less the after-send call that a before-send stop leaves out.
    records = mig["records"]
    assert len(records) == 2 * passes - (1 if stopped == "before_send" else 0)
    assert [r["dirty_count"] for r in records if r["phase"] == "before"] == counts[:len(records) // 2 + len(records) % 2]
    assert all(r["decision"] == "continue" for r in records[:-1]) and records[-1]["decision"] == "stop"
    assert pl.precopy_records(text) == records


@pytest.mark.parametrize("run", RUNS, ids=[r["file"] for r in RUNS])
def test_offline_replay_of_the_log_predicts_the_stop(run):
    mig = pl.parse_precopy_log(fixture(run["file"]))[0]
    got = sp.replay(mig["policy"], mig["records"], details=True, **run["params"])
    assert {k: got[k] for k in ("iteration", "stopped", "passes", "reason")} == \
        {k: mig["stop"][k] for k in ("iteration", "stopped", "passes", "reason")}
    assert [c[3] for c in got["calls"]] == [pl.DECISIONS[r["decision"]] for r in mig["records"]]


def test_logged_values_follow_their_definitions():
    mig = pl.parse_precopy_log(fixture("xl-migrate-03-sd-plateau.stderr"))[0]
    records = mig["records"]
    assert mig["stop"]["reason"] == "sd_band" and mig["stop"]["iteration"] == 10
    for index, r in enumerate(records):
        samples = [x["dirty_count"] for x in records[:index + 1] if x["phase"] == "before" and x["iteration"] >= 2]
        assert (r["sd"] is None) == (not samples)
        if samples:
            assert abs(r["sd"] - statistics.pstdev(samples)) < 5e-4
    # The thesis's band: 200 < sigma of D_2..D_10 < 350 at the stop, not before.
    assert 200 < records[-1]["sd"] < 350
    times = [r["elapsed_ms"] for r in records]
    assert times == sorted(times)
    final = mig["final"]
    assert times[-1] <= final["suspend_ms"] <= final["paused_ms"] <= final["elapsed_ms"]


def test_log_file_with_several_migrations_and_a_refused_one():
    migs = pl.parse_precopy_log(fixture("precopy-file.log"))
    assert [m["domid"] for m in migs] == [1, 2, 3, 4, 5, 6, 7, 99]
    for mig, run in zip(migs, RUNS):
        assert mig["policy"] == NAMES[run["policy"]]
        assert (mig["stop"]["iteration"], mig["stop"]["stopped"], mig["stop"]["passes"]) == harness_stop(run["harness"])[:3]
    refused = migs[-1]
    assert refused["error"] == "sd_high must be greater than sd_low, got [400, 350]"
    assert refused["records"] == [] and refused["policy"] is None and refused["stop"] is None
    with pytest.raises(pl.PrecopyLogError, match="exactly one migration, found 8"):
        pl.precopy_records(fixture("precopy-file.log"))


def test_timestamps_and_other_prefixes_are_ignored():
    text = fixture("xl-migrate-07-xen-idle.stderr")
    stamped = "\n".join("2026-11-25 09:37:01 UTC [4242] " + line if line else line for line in text.split("\n"))
    assert pl.parse_precopy_log(stamped)[0]["records"] == pl.parse_precopy_log(text)[0]["records"]
    shifted = pl.parse_precopy_log(b"junk\n" + text.encode())[0]["stop"]
    assert shifted == dict(pl.parse_precopy_log(text)[0]["stop"], line=pl.parse_precopy_log(text)[0]["stop"]["line"] + 1)
    assert pl.parse_precopy_log("migration target: Ready to receive domain.\n") == []


def test_warnings_before_the_start_line_belong_to_that_migration():
    start = fixture("xl-migrate-07-xen-idle.stderr")
    warn = "xc: error: xenlab-precopy: event=warning domid=7 message=cannot open log file /x (Permission denied)\n"
    mig = pl.parse_precopy_log(warn + start)
    assert len(mig) == 1 and mig[0]["warnings"] == ["cannot open log file /x (Permission denied)"]


START = ("xenlab-precopy: event=start v=1 domid=3 pid=9 policy=xen34 source=env max_iterations=29 "
         "target_dirty_count=50 max_factor=3 decider=xenlab")


def call(phase, it, dc, tw, decision="continue", reason="-", ms="1.000", sd="-"):
    return ("xenlab-precopy: event=call domid=3 elapsed_ms=%s phase=%s iteration=%d dirty_count=%d total_written=%d "
            "sd=%s decision=%s reason=%s" % (ms, phase, it, dc, tw, sd, decision, reason))


GOOD = [START, call("before", 0, 1000, 0), call("after", 1, -1, 1000), call("before", 1, 40, 1000, "stop", "dirty_count")]


def test_minimal_log_parses():
    mig = pl.parse_precopy_log("\n".join(GOOD))[0]
    assert mig["stop"] == {"iteration": 1, "stopped": "before_send", "passes": 2, "decision": 1,
                           "reason": "dirty_count", "line": 4}
    assert mig["records"][1] == {"iteration": 1, "dirty_count": -1, "total_written": 1000, "elapsed_ms": 1.0,
                                 "sd": None, "decision": "continue", "phase": "after", "reason": None, "line": 3}


# Fakes for the error paths: one broken line each, the 1-based line named.
@pytest.mark.parametrize("lines, lineno, message", [
    ([START.replace("v=1", "v=2")] + GOOD[1:], 1, "log format version '2' is not supported"),
    ([START.replace("policy=xen34", "policy=thesis")] + GOOD[1:], 1, "policy must be one of"),
    ([START.replace(" decider=xenlab", "")] + GOOD[1:], 1, "start line without decider="),
    ([START.replace("max_iterations=29 ", "")] + GOOD[1:], 1, "without max_iterations="),
    (GOOD[:1] + [GOOD[1].replace("elapsed_ms=1.000", "elapsed_ms=soon")] + GOOD[2:], 2,
     "elapsed_ms must be a number of milliseconds, got 'soon'"),
    (GOOD[:2] + [GOOD[2].replace("total_written=1000", "total_written=999")] + GOOD[3:], 3,
     "send_memory_live would make the call phase=after iteration=1 total_written=1000 here"),
    (GOOD[:2] + [GOOD[2].replace("phase=after", "phase=before")] + GOOD[3:], 3, "phase before does not fit dirty_count -1"),
    (GOOD[:3] + [call("before", 1, 40, 1000, "stop", "-")], 4, "reason must be one of"),
    (GOOD[:3] + [call("before", 1, 40, 1000, "continue", "sd_band")], 4, "a continue decision has reason '-'"),
    (GOOD[:3] + [call("before", 1, 40, 1000, ms="0.500")], 4, "elapsed_ms goes backwards"),
    (GOOD[:3] + [call("before", 1, 40, 1000, sd="-3.0")], 4, "sd must be '-' or a number of pages >= 0"),
    (GOOD + [call("after", 2, -1, 1040)], 5, "a call after the decision stop of line 4"),
    (GOOD[1:], 1, "call line for domid 3 without its start line"),
    ([START, call("before", 1, 40, 1000)], 2, "the first call of a migration must be phase=before iteration=0"),
    (GOOD + ["xenlab-precopy: event=final domid=3 elapsed_ms=2 iteration=2 dirty_count=5 suspend_ms=1 paused_ms=2"], 5,
     "final line has iteration 2, the last call had 1"),
    (GOOD + ["xenlab-precopy: event=final domid=3 elapsed_ms=2 iteration=1 dirty_count=5 suspend_ms=3 paused_ms=2"], 5,
     "expected last call <= suspend_ms <= paused_ms <= elapsed_ms"),
    (GOOD[:3] + ["xenlab-precopy: event=final domid=3 elapsed_ms=2 iteration=1 dirty_count=5 suspend_ms=1 paused_ms=2"],
     4, "final line for domid 3 before its policy said stop"),
    (GOOD + ["xenlab-precopy: event=resume domid=3"], 5, "event must be one of"),
    (GOOD + ["xenlab-precopy: event=error domid=3"], 5, "error line without message="),
    (GOOD + ["xenlab-precopy: event=call domid=3 iteration=2 iteration=3"], 5, "key iteration appears twice"),
    (GOOD + ["xenlab-precopy: event=call domid=3 iteration:2"], 5, "expected key=value tokens"),
    (GOOD[:1] + [GOOD[1].replace("iteration=0", "iteration=zero")] + GOOD[2:], 2, "iteration must be an integer"),
])
def test_malformed_logs_name_the_line(lines, lineno, message):
    with pytest.raises(pl.PrecopyLogError) as err:
        pl.parse_precopy_log("\n".join(lines) + "\n")
    assert err.value.lineno == lineno
    assert str(err.value).startswith("line %d: " % lineno) and message in str(err.value)


def test_not_text_is_refused():
    with pytest.raises(pl.PrecopyLogError, match="expected the log as a string, got int"):
        pl.parse_precopy_log(42)
    with pytest.raises(pl.PrecopyLogError, match="expected the log as a string"):
        pl.parse_xc_progress(None)


# --- libxc's progress lines ------------------------------------------------------------------

@pytest.mark.parametrize("run", RUNS, ids=[r["file"] for r in RUNS])
def test_progress_lines_give_every_pass(run):
    passes = pl.parse_xc_progress(fixture(run["file"]))
    iteration, stopped, npasses, final = harness_stop(run["harness"])
    counts = EXPECTED["traces"][run["trace"]]
    # Live passes 1..n, labelled with the iteration of the call before them, then the stop-and-copy.
    assert pl.progress_counts(passes) == counts[:npasses + 1]
    assert [p["pass"] for p in passes] == list(range(1, npasses + 2))
    assert [p["iteration"] for p in passes[:-1]] == list(range(npasses))
    assert passes[-1]["iteration"] == iteration and passes[-1]["total"] == final
    assert [p["phase"] for p in passes] == ["live"] * npasses + ["stop_and_copy"]
    assert all(0 < p["sent"] <= p["total"] and p["complete"] == (p["sent"] == p["total"]) for p in passes)
    # A before-send stop repeats the label: the last live pass and the stop-and-copy share it.
    if stopped == "before_send":
        assert passes[-2]["iteration"] == passes[-1]["iteration"]
    # The pages of the passes are a TraceModel: the simulator replays the same stop.
    sim = sp.simulate(NAMES[run["policy"]], sp.TraceModel(pl.progress_counts(passes)), 40960000, **run["params"])
    assert sim["iterations"] == npasses and sim["final_pages"] == final


def test_no_progress_without_the_shim():
    text = fixture("xl-migrate-noshim.stderr")
    assert pl.parse_xc_progress(text) == []
    assert pl.parse_precopy_log(text)[0]["stop"]["passes"] == 5


def test_progress_first_pass_lines():
    passes = pl.parse_xc_progress(fixture("xl-migrate-01-xen-nonconverging.stderr"))
    # The first line of pass 1 (0 %) is not printed: xl's logger starts at 0 % and prints a
    # line only when the percentage changes, and at default verbosity only jumps of 5 %.
    assert passes[0]["line"] == 3 and passes[0]["sent"] == passes[0]["total"] == 65536


def test_progress_variants_verbose_cr_and_timestamps():
    lines = ["xc: detail: Frames iteration 0: 1024/65536    1%",
             "2026-11-25 09:00:00 UTC [77] xc: progress: Frames iteration 0: 65536/65536  100%",
             "xc: progress: Domain now suspended: 0/0    0%",
             "\rxc: Frames iteration 1: 0/300    0%\r                  \rxc: Frames iteration 1: 300/300  100%",
             "xc: info: Saving domain 5, type x86 PV"]
    passes = pl.parse_xc_progress("\n".join(lines))
    assert [(p["iteration"], p["sent"], p["total"], p["phase"], p["line"]) for p in passes] == \
        [(0, 65536, 65536, "live", 1), (1, 300, 300, "stop_and_copy", 4)]


@pytest.mark.parametrize("line, message", [
    ("xc: progress: Frames iteration 2: 1024/1000  102%", "progress count 1024 is above its total 1000"),
    ("xc: progress: Frames iteration 2: 500/1000   49%", "500/1000 is 50%, the line says 49%"),
    ("xc: progress: Frames iteration two: 500/1000   50%", "expected 'Frames iteration N', got 'Frames iteration two'"),
    ("xc: progress: Frames iteration 2: 500 of 1000", "expected 'xc: progress: Frames iteration N: done/total  pct%'"),
])
def test_malformed_progress_names_the_line(line, message):
    with pytest.raises(pl.PrecopyLogError) as err:
        pl.parse_xc_progress("xc: info: Saving domain 5, type x86 PV\n" + line + "\n")
    assert err.value.lineno == 2 and str(err.value).startswith("line 2: ") and message in str(err.value)


def test_progress_counts_needs_parsed_passes():
    with pytest.raises(pl.PrecopyLogError, match="expected the list parse_xc_progress returns"):
        pl.progress_counts([{"sent": 1}])
