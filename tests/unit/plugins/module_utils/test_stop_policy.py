# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stop policies on the exact call sequence of Xen 4.17's send_memory_live, and the simulator."""

from __future__ import annotations

import math
import os
import random
import re
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.xenlab.migration.plugins.module_utils import stats
from ansible_collections.xenlab.migration.plugins.module_utils import stop_policy as sp

C, S = sp.XGS_POLICY_CONTINUE_PRECOPY, sp.XGS_POLICY_STOP_AND_COPY

# Simulations: a 256 MiB guest (65536 pages of 4096 bytes) over a link of 10000 pages/s, so a pass
# of n pages lasts n / 10000 s and pass 1 lasts 6.5536 s.
P = 65536
BW = 4096 * 10000


def run_calls(policy, calls):
    """Feed (iteration, total_written, dirty_count) tuples; return the decisions."""
    return [policy(*c) for c in calls]


def loop_calls(guest_pages, dirty):
    """The calls send_memory_live makes when pass k dirties dirty[k-1] pages, until the list ends."""
    calls, tw, dc = [(0, 0, guest_pages)], 0, guest_pages
    for k, d in enumerate(dirty, 1):
        tw += dc
        calls += [(k, tw, -1), (k, tw, d)]
        dc = d
    return calls


# --- xen417 -------------------------------------------------------------------------------

def test_xen417_runs_five_passes():
    pol = sp.make_policy("xen417", 1000)
    calls = loop_calls(1000, [400, 300, 200, 100]) + [(5, 2000, -1)]
    # Nothing stops until the after call of pass 5 (iteration 5 >= 5).
    assert run_calls(pol, calls) == [C] * 9 + [S]
    assert pol.reason == "iterations"


def test_xen417_dirty_count_edges():
    pol = sp.Xen417Policy(1000)
    assert pol(2, 1400, 50) == C  # exactly 50 is not "< 50"
    assert pol(2, 1400, 49) == S
    assert pol.reason == "dirty_count"
    assert pol(3, 1450, -1) == C  # -1 (after a send) never counts as few pages
    assert pol(3, 1450, 0) == S
    assert pol(4, 1450, -1) == C
    assert pol(5, 1450, -1) == S
    # A 30-page guest: stop before pass 1 (which is still sent); P is learnt from this call.
    tiny = sp.Xen417Policy()
    assert tiny(0, 0, 30) == S and tiny.guest_pages == 30
    with pytest.raises(ValueError, match="must carry the guest's 1000 pages"):
        pol(0, 0, 30)


# --- xen34 --------------------------------------------------------------------------------

def test_xen34_three_times_ram_rule():
    pol = sp.make_policy("xen34", 1000)
    # Every pass dirties all 1000 pages: after pass 3 total_written = 3000 = 3 P, not more;
    # after pass 4 it is 4000 > 3000.
    calls = loop_calls(1000, [1000, 1000, 1000]) + [(4, 4000, -1)]
    assert run_calls(pol, calls) == [C] * 7 + [S]
    assert pol.reason == "total_written"
    assert sp.Xen34Policy(1000)(3, 3001, -1) == S


def test_xen34_iterations_and_50_pages():
    pol = sp.Xen34Policy(262144)
    assert pol(28, 300000, -1) == C
    assert pol(28, 300000, 50) == C
    assert pol(29, 300050, -1) == S
    assert pol.reason == "iterations"
    assert sp.Xen34Policy(262144)(12, 300000, 49) == S


# --- sd -----------------------------------------------------------------------------------

def test_sd_stops_in_band_from_iteration_10():
    # D_1 = 30000 is left out; D_2..D_10 = 1500, 2000, ... , 1500 (5 x 1500, 4 x 2000):
    # n = 9, S1 = 15500, S2 = 27 250 000, V = 9 * S2 - S1^2 = 245 250 000 - 240 250 000 = 5 000 000,
    # sigma = sqrt(V) / 9 = 2236.07 / 9 = 248.45; (200*9)^2 = 3 240 000 < V < (350*9)^2 = 9 922 500 -> stop.
    dirty = [30000] + [1500, 2000] * 4 + [1500]
    pol = sp.make_policy("sd", 262144)
    decisions = run_calls(pol, loop_calls(262144, dirty))
    # 1 call for round 0, then 2 per pass; only the last one (before call, iteration 10) stops.
    assert decisions == [C] * 20 + [S]
    assert pol.reason == "sd_band"
    assert pol.samples == dirty[1:]
    assert pol.sd == pytest.approx(248.45, abs=0.005)


def test_sd_not_before_track_from_and_band_is_strict():
    # Same band values at iteration 9 do not stop (tracking starts at 10).
    pol = sp.SDPolicy(262144)
    decisions = run_calls(pol, loop_calls(262144, [30000] + [1500, 2000] * 4))
    assert S not in decisions
    # track_from = 3: D_2, D_3 = 800, 1200 give sigma = 200 exactly: not inside (200, 350).
    pol = sp.SDPolicy(262144, track_from=3)
    assert run_calls(pol, loop_calls(262144, [30000, 800, 1200])) == [C] * 7
    # D_4 = 1000: mean 1000, sigma = sqrt(80000 / 3) = 163.3: below the band, continue.
    # (total_written after pass 4 = P + 30000 + 800 + 1200 = 294144.)
    assert pol(4, 294144, -1) == C and pol(4, 294144, 1000) == C
    # D_5 = 1500: [800, 1200, 1000, 1500], mean 1125, sigma = sqrt(267500 / 4) = 258.6: stop.
    assert pol(5, 295144, -1) == C and pol(5, 295144, 1500) == S


def test_sd_keeps_xen34_limits_and_ignores_repeated_calls():
    pol = sp.SDPolicy(1000, track_from=3)
    assert pol(2, 1200, 600) == C
    assert pol(2, 1200, 600) == C  # a repeated call is not a second sample
    assert pol.samples == [600]
    assert pol(3, 1800, 40) == S and pol.reason == "dirty_count"
    assert sp.SDPolicy(1000)(29, 5000, -1) == S


# --- adaptive -----------------------------------------------------------------------------

def test_adaptive_continues_while_shrinking_then_stops():
    # P = 65536: noise allowance P / 1024 = 64 pages; stop once D_(k-3) - D_k < D_(k-3)/16 + 64.
    dirty = [4000, 3000, 2500, 2300, 2200, 2150, 2100]
    pol = sp.make_policy("adaptive", P)
    decisions = run_calls(pol, loop_calls(P, dirty))
    # k = 4: 4000 - 2300 = 1700 >= 250 + 64; k = 5: 3000 - 2200 = 800 >= 251.5;
    # k = 6: 2500 - 2150 = 350 >= 220.25; k = 7: 2300 - 2100 = 200 < 143.75 + 64 = 207.75 -> stop.
    assert decisions == [C] * 14 + [S]
    assert pol.reason == "no_shrink"


def test_adaptive_threshold_edge_is_strict():
    # old = D_1 = 1600: threshold 1600/16 + 64 = 164 pages. In integers:
    # 16 * 1024 * 164 = 2 686 976 = 1024 * 1600 + 16 * 65536, not less -> continue; 163 -> stop.
    # (early = 0: D_1 -> D_2 = 1600 -> 1500 would stop the early check already.)
    assert run_calls(sp.AdaptivePolicy(P, early=0), loop_calls(P, [1600, 1500, 1450, 1436]))[-1] == C
    assert run_calls(sp.AdaptivePolicy(P, early=0), loop_calls(P, [1600, 1500, 1450, 1437]))[-1] == S
    # The early check's edge, the same arithmetic on D_1 -> D_2: 164 pages continue, 163 stop.
    assert run_calls(sp.AdaptivePolicy(P), loop_calls(P, [1600, 1436])) == [C] * 5
    pol = sp.AdaptivePolicy(P)
    assert run_calls(pol, loop_calls(P, [1600, 1437])) == [C] * 4 + [S] and pol.reason == "no_progress"


def test_adaptive_early_check_stops_a_set_the_first_live_pass_did_not_shrink():
    # Non-converging: D_2 as large as D_1 -> stop before sending D_2 (3 passes with the
    # stop-and-copy), where the window check alone waits for D_4 (5 passes).
    pol = sp.AdaptivePolicy(P)
    assert run_calls(pol, loop_calls(P, [30000, 29950])) == [C] * 4 + [S] and pol.reason == "no_progress"
    assert sp.replay("adaptive", loop_calls(P, [30000, 29950, 29990, 30010, 29900])) == 2
    assert sp.replay("adaptive", loop_calls(P, [30000, 29950, 29990, 30010, 29900]), early=0) == 4
    # A set the first live pass shrank is left to the window check, whatever comes next.
    pol = sp.AdaptivePolicy(P)
    assert run_calls(pol, loop_calls(P, [30000, 9000, 9000])) == [C] * 7
    # Only for window >= 2: with window = 1 the window check is this test already.
    assert sp.replay("adaptive", loop_calls(P, [30000, 29950]), window=1, early=0) == 2
    with pytest.raises(ValueError, match="early must be at most 1"):
        sp.AdaptivePolicy(P, early=2)


def test_adaptive_growth_stops_and_first_check_is_pass_5():
    pol = sp.AdaptivePolicy(P, early=0)
    # No verdict before window + 1 = 4 samples (D_1..D_4), even on a flat set.
    assert run_calls(pol, loop_calls(P, [2000, 2000, 2000])) == [C] * 7
    assert pol(4, P + 6000, -1) == C
    assert pol(4, P + 6000, 2100) == S  # grew: gain = -100
    assert pol.history == [2000, 2000, 2000, 2100]


def test_adaptive_keeps_safety_limits():
    assert sp.AdaptivePolicy(P)(1, P, 49) == S
    assert sp.AdaptivePolicy(P)(29, 2 * P, -1) == S
    assert sp.AdaptivePolicy(P)(3, 3 * P + 1, -1) == S


# --- policy state: P from the iteration-0 call, C's int64 bounds ---------------------------

def test_policy_learns_guest_pages_from_the_iteration_0_call():
    pol = sp.Xen34Policy()
    assert pol(0, 0, 1000) == C and pol.guest_pages == 1000
    assert pol(3, 3000, -1) == C  # 3 P, not more
    assert pol(3, 3001, -1) == S and pol.reason == "total_written"
    # A new iteration-0 call starts a new migration: new P, reason cleared.
    assert pol(0, 0, 5000) == C and (pol.guest_pages, pol.reason) == (5000, None)
    assert pol(3, 3001, -1) == C
    with pytest.raises(ValueError, match="does not know the guest's size"):
        sp.Xen34Policy()(1, 1000, -1)
    with pytest.raises(ValueError, match="dirty_count is the guest's page count .at least 1., got -1"):
        sp.Xen34Policy()(0, 0, -1)
    with pytest.raises(ValueError, match="dirty_count 1001 exceeds the guest's 1000 pages"):
        sp.Xen34Policy(1000)(2, 1500, 1001)


def test_stateful_policies_restart_at_iteration_0():
    pol = sp.SDPolicy(track_from=3)
    run_calls(pol, loop_calls(262144, [30000, 800, 1200]))
    assert pol.samples == [800, 1200] and pol.last_sample_iteration == 3
    assert pol(0, 0, 262144) == C
    assert (pol.samples, pol.last_sample_iteration, pol.sd) == ([], 0, None)
    ad = sp.AdaptivePolicy()
    run_calls(ad, loop_calls(P, [4000, 3000]))
    assert ad.history == [4000, 3000]
    ad(0, 0, P)
    assert ad.history == []


def test_sd_takes_no_sample_when_a_xen34_rule_stops():
    pol = sp.SDPolicy(1000, track_from=3)
    assert pol(2, 1200, 600) == C
    assert pol(3, 1800, 40) == S and pol.reason == "dirty_count"
    assert pol.samples == [600]  # the C port returns before its sampling step too


def test_sd_int64_bounds():
    # n <= max_iterations - 2 = 27 samples: 27 * P must stay <= 3 037 000 499 = floor(sqrt(2**63 - 1)).
    assert sp.SDPolicy(112481499).guest_pages == 112481499  # 27 * 112481499 = 3 036 999 473
    with pytest.raises(ValueError, match="3037000500 exceeds 3037000499"):
        sp.SDPolicy(112481500)
    with pytest.raises(ValueError, match="int64 sums could overflow"):
        sp.SDPolicy()(0, 0, 112481500)  # learnt P is checked as well
    with pytest.raises(ValueError, match="int64 sums could overflow"):
        sp.SDPolicy(262144, max_iterations=20000)


def test_adaptive_int64_bounds():
    # shrink_div * noise_div * P < 2**63: 2**20 * 2**20 * 2**22 = 2**62 fits, 2**24 pages does not.
    assert sp.AdaptivePolicy(1 << 22, shrink_div=1 << 20, noise_div=1 << 20).guest_pages == 1 << 22
    with pytest.raises(ValueError, match="int64 products could overflow"):
        sp.AdaptivePolicy(1 << 23, shrink_div=1 << 20, noise_div=1 << 20)


def test_c_types_bound_the_stats():
    pol = sp.Xen34Policy(1000)
    assert pol(2 ** 32 - 1, 0, -1) == S  # unsigned int iteration
    with pytest.raises(ValueError, match="iteration must be at most 4294967295"):
        pol(2 ** 32, 0, -1)
    with pytest.raises(ValueError, match="total_written must be at most 18446744073709551615"):
        pol(1, 2 ** 64, -1)


# --- registry and validation ----------------------------------------------------------------

def test_registry():
    assert sorted(sp.POLICIES) == ["adaptive", "sd", "xen34", "xen417"]
    assert isinstance(sp.POLICIES["sd"](1000, sd_low=150, sd_high=300), sp.SDPolicy)
    with pytest.raises(ValueError, match="unknown stop policy 'xen99'"):
        sp.make_policy("xen99", 1000)
    with pytest.raises(ValueError, match="bad parameters for stop policy 'xen417'"):
        sp.make_policy("xen417", 1000, track_from=3)
    with pytest.raises(ValueError, match="sd_high must be greater than sd_low"):
        sp.make_policy("sd", 1000, sd_low=300, sd_high=300)


# --- simulator ------------------------------------------------------------------------------

# Non-converging: a 2000-page hot set rewritten at 12000 pages/s (more than the link) plus 500 pages/s
# elsewhere. Pass k+1 sends D_k, lasting D_k / 10000 s, and D_(k+1) = round(2000 + 500 * t):
#   D_1 = 2000 + 500 * 6.5536 = 5276.8 -> 5277, D_2 = 2000 + 263.85 -> 2264, D_3 = 2113.2 -> 2113,
#   D_4 = 2105.65 -> 2106, D_5 = 2105.3 -> 2105, then 2105 for ever (Xen would log "dirtied" at the
#   link rate: 2105 pages in 0.2105 s).
NON_CONVERGING = sp.HotSetModel(P, wss_pages=2000, hot_rate_pps=12000, background_pps=500)
# Converging: a 500-page hot set plus 6000 pages/s (0.6 of the link): D_(k+1) = round(500 + 0.6 D_k)
# from D_0 = P: 39822, 24393, 15136, 9582, 6249, 4249, 3049, 2329, 1897, 1638, 1483, 1390, 1334,
# 1300, 1280, 1268, ... towards 500 / 0.4 = 1250.
CONVERGING = sp.HotSetModel(P, wss_pages=500, hot_rate_pps=100000, background_pps=6000)


def test_models():
    assert NON_CONVERGING.dirtied(1, 6.5536) == 5277
    assert CONVERGING.dirtied(1, 6.5536) == 39822
    assert sp.ConstantRateModel(P, 5000).dirtied(1, 0.5) == 2500
    assert sp.ConstantRateModel(P, 1e6).dirtied(1, 1.0) == P  # capped at the guest
    assert sp.HotSetModel(P, 1000, 2000).dirtied(1, 0.25) == 500  # not yet saturated
    assert sp.mbps_to_bytes_per_s(1000) == 125e6


def test_simulate_non_converging_adaptive_stops_early():
    xen34 = sp.simulate("xen34", NON_CONVERGING, BW)
    adaptive = sp.simulate("adaptive", NON_CONVERGING, BW)
    # xen34: all 29 passes; the stop-and-copy sends D_29 = 2105.
    assert (xen34["iterations"], xen34["reason"], xen34["final_pages"]) == (29, "iterations", 2105)
    # After pass 1: passes 2..29 send 5277 + 2264 + 2113 + 2106 + 24 * 2105 = 62280 pages, plus the
    # 2105-page stop-and-copy: 64385 pages = 6.4385 s.
    assert xen34["time_after_first_s"] == pytest.approx(6.4385)
    # adaptive: k = 4: 5277 - 2106 = 3171 >= 5277/16 + 64; k = 5: 2264 - 2105 = 159 < 141.5 + 64
    # -> stop before pass 6, which still sends D_5; final D_6 = 2105.
    assert (adaptive["iterations"], adaptive["reason"], adaptive["stopped"]) == (6, "no_shrink", "before_send")
    assert [r["pages_sent"] for r in adaptive["records"]] == [P, 5277, 2264, 2113, 2106, 2105]
    assert adaptive["final_pages"] == 2105
    # 5277 + 2264 + 2113 + 2106 + 2105 + 2105 = 15970 pages = 1.597 s: 75.2 % less than xen34,
    # the same 0.2105 s downtime.
    assert adaptive["time_after_first_s"] == pytest.approx(1.597)
    assert 1 - adaptive["time_after_first_s"] / xen34["time_after_first_s"] == pytest.approx(0.7520, abs=1e-4)
    assert adaptive["downtime_s"] == pytest.approx(0.2105) == pytest.approx(xen34["downtime_s"])
    assert adaptive["total_pages"] == P + 15970
    assert adaptive["first_pass_s"] == pytest.approx(6.5536)


def test_simulate_converging_adaptive_goes_past_five():
    xen417 = sp.simulate("xen417", CONVERGING, BW)
    adaptive = sp.simulate("adaptive", CONVERGING, BW)
    xen34 = sp.simulate("xen34", CONVERGING, BW)
    # xen417 stops after pass 5 with D_5 = 6249 pages still dirty: 0.6249 s downtime.
    assert (xen417["iterations"], xen417["final_pages"]) == (5, 6249)
    assert xen417["downtime_s"] == pytest.approx(0.6249)
    # adaptive: k = 12: 1897 - 1390 = 507 >= 182.6; k = 13: 1638 - 1334 = 304 >= 166.4;
    # k = 14: 1483 - 1300 = 183 >= 156.7; k = 15: 1390 - 1280 = 110 < 86.9 + 64 = 150.9 -> stop,
    # pass 16 sends D_15 = 1280, the stop-and-copy D_16 = 1268.
    assert (adaptive["iterations"], adaptive["final_pages"]) == (16, 1268)
    assert adaptive["downtime_s"] == pytest.approx(0.1268)
    assert adaptive["downtime_s"] < xen417["downtime_s"]
    # xen34 runs all 29 and gains only 17 more pages (1251 left).
    assert (xen34["iterations"], xen34["final_pages"]) == (29, 1251)
    assert adaptive["records"][-1]["dirty_count"] == 1280
    assert [r["dirtied"] for r in adaptive["records"][:6]] == [39822, 24393, 15136, 9582, 6249, 4249]
    # "Until the dirty set stops shrinking": every 3-pass window up to D_14 shrank it by at least
    # 1/16 + 64 pages, the first one that did not (D_12 -> D_15) is where adaptive stopped.
    d = adaptive["trace"]  # [P, D_1, ..., D_16]
    shrank = [16 * 1024 * (d[k - 3] - d[k]) >= 1024 * d[k - 3] + 16 * P for k in range(4, 16)]
    assert shrank == [True] * 11 + [False]


def test_simulate_call_sequence_mirrors_send_memory_live():
    res = sp.simulate("xen417", CONVERGING, BW)
    tw = [0, P, P + 39822, P + 39822 + 24393, P + 39822 + 24393 + 15136, P + 39822 + 24393 + 15136 + 9582]
    assert res["calls"] == [
        (0, 0, P, C), (1, tw[1], -1, C), (1, tw[1], 39822, C), (2, tw[2], -1, C), (2, tw[2], 24393, C),
        (3, tw[3], -1, C), (3, tw[3], 15136, C), (4, tw[4], -1, C), (4, tw[4], 9582, C), (5, tw[5], -1, S),
    ]
    assert res["stopped"] == "after_send"
    assert res["trace"] == [P, 39822, 24393, 15136, 9582, 6249]


def test_simulate_stop_before_send_still_sends_that_batch():
    # 3000 pages/s over 10000 pages/s: D_1 = 0.3 P = 19661, D_2 = 5898, D_3 = 1769, D_4 = 531,
    # D_5 = 159, D_6 = 48 (< 50): the before call with 48 says stop, pass 7 still sends 48
    # pages, and the stop-and-copy sends round(3000 * 0.0048) = 14.
    res = sp.simulate("xen34", sp.ConstantRateModel(P, 3000), BW)
    assert res["trace"] == [P, 19661, 5898, 1769, 531, 159, 48, 14]
    assert (res["iterations"], res["stopped"], res["reason"]) == (7, "before_send", "dirty_count")
    assert res["records"][-1]["pages_sent"] == 48
    assert res["final_pages"] == 14


def test_trace_model_matches_direct_run():
    for name in sp.POLICIES:
        direct = sp.simulate(name, CONVERGING, BW)
        replay = sp.simulate(name, sp.TraceModel(direct["trace"]), BW)
        assert (replay["iterations"], replay["calls"], replay["final_pages"]) == (direct["iterations"], direct["calls"], direct["final_pages"])
    # A 29-pass xen34 recording predicts where adaptive would have stopped.
    recorded = sp.simulate("xen34", CONVERGING, BW)["trace"]
    assert len(recorded) == 30
    replay = sp.simulate("adaptive", sp.TraceModel(recorded), BW)
    assert (replay["iterations"], replay["final_pages"]) == (16, 1268)
    # The same trace rebuilt from logged policy calls.
    calls = [c[:3] for c in sp.simulate("adaptive", CONVERGING, BW)["calls"]]
    assert sp.TraceModel.from_policy_calls(calls, final_pages=1268).counts == recorded[:17]


def test_trace_model_past_its_end_is_a_clear_error():
    short = sp.simulate("adaptive", CONVERGING, BW)["trace"]  # 17 entries: P, D_1..D_16
    with pytest.raises(sp.TraceTooShort, match="continues past the end of the recorded trace"):
        sp.simulate("xen34", sp.TraceModel(short), BW)
    # Without the stop-and-copy count the stopping pass is still known, the downtime is not.
    res = sp.simulate("adaptive", sp.TraceModel(short[:-1]), BW)
    assert res["iterations"] == 16 and res["final_pages"] is None and res["downtime_s"] is None


def test_noisy_thesis_like_plateau():
    # A 1 GiB guest whose dirty set hovers around 1800 pages after a 30000-page first pass.
    trace = [262144, 30000, 1900, 1750, 1820, 1690, 1880, 1760, 1830, 1700, 1850, 1790] + [1800] * 19
    ad = sp.simulate("adaptive", sp.TraceModel(trace), sp.mbps_to_bytes_per_s(1000))
    # k = 5: 1900 - 1690 = 210 < 1900/16 + 262144/1024 = 118.75 + 256 -> stop, pass 6 sends 1690.
    assert (ad["iterations"], ad["final_pages"]) == (6, 1880)
    xen34 = sp.simulate("xen34", sp.TraceModel(trace), sp.mbps_to_bytes_per_s(1000))
    assert (xen34["iterations"], xen34["final_pages"]) == (29, 1800)
    # sigma of D_2..D_10 is 71.8 pages, below the thesis's band: sd runs on like xen34.
    assert sp.simulate("sd", sp.TraceModel(trace), 1.25e8)["iterations"] == 29


def test_simulate_abort_and_callable_policies():
    res = sp.simulate(lambda it, tw, dc: sp.XGS_POLICY_ABORT if it == 2 else C, CONVERGING, BW)
    # ABORT at the after call of pass 2 (which sent D_1 = 39822): no stop-and-copy.
    assert res["aborted"] and res["iterations"] == 2 and res["records"][-1]["pages_sent"] == 39822
    assert res["final_pages"] is None and res["downtime_s"] is None
    res = sp.simulate(lambda it, tw, dc: sp.XGS_POLICY_ABORT, CONVERGING, BW)
    assert res["aborted"] and res["live_pages"] == 0  # ABORT before pass 1 sends nothing
    with pytest.raises(ValueError, match="policy returned 7"):
        sp.simulate(lambda it, tw, dc: 7, CONVERGING, BW)
    with pytest.raises(ValueError, match="did not stop within max_rounds=50"):
        sp.simulate(lambda it, tw, dc: C, CONVERGING, BW, max_rounds=50)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: sp.simulate("xen417", CONVERGING, 0), "bandwidth must be a finite number > 0"),
        (lambda: sp.simulate("xen417", CONVERGING, BW, page_size=0), "page_size must be at least 1"),
        (lambda: sp.simulate("xen417", [1, 2], BW), "model must be a DirtyModel"),
        (lambda: sp.simulate(sp.Xen417Policy(100), CONVERGING, BW), "built for 100 guest pages"),
        (lambda: sp.simulate(sp.Xen417Policy(P), CONVERGING, BW, window=2), "only accepted with a policy name"),
        (lambda: sp.simulate(42, CONVERGING, BW), "policy must be a policy name"),
        (lambda: sp.HotSetModel(10, 11, 1), "wss_pages (11) cannot exceed guest_pages (10)"),
        (lambda: sp.TraceModel([]), "non-empty list"),
        (lambda: sp.TraceModel([100, 101]), "exceeds the guest's 100 pages"),
        (lambda: sp.Xen417Policy(P)(1, 0, -2), "dirty_count must be at least -1"),
        (lambda: sp.Xen417Policy(P)(1.0, 0, 5), "iteration must be an integer"),
        (lambda: sp.simulate("xen417", CONVERGING, BW, page_size=2 ** 31), "page_size must be at most 1073741824"),
        (lambda: sp.simulate("xen417", CONVERGING, BW, max_rounds=10 ** 8), "max_rounds must be at most 10000000"),
        # 65536 pages * 4096 bytes / 1e-4 bytes/s = 2.7e12 s.
        (lambda: sp.simulate("xen417", CONVERGING, 1e-4), "bandwidth 0.0001 bytes/s is too small: copying the guest's 65536 "
                                                          "pages would take more than 1e+12 s"),
        (lambda: sp.simulate("xen417", CONVERGING, BW, overhead_s=-1), "overhead_s must be a finite number >= 0"),
        (lambda: sp.make_policy(["sd"], 1000), "unknown stop policy ['sd']"),
        (lambda: sp.ConstantRateModel(P, 10 ** 400), "rate_pps must be a finite number >= 0, got 1000000"),
    ],
)
def test_bad_input_messages(call, message):
    with pytest.raises(ValueError) as err:
        call()
    assert message in str(err.value)


# --- recorded traces and replay ---------------------------------------------------------------

def as_records(calls, before_only=False):
    """simulate's call tuples as the mappings the patched Xen logs."""
    return [{"iteration": c[0], "total_written": c[1], "dirty_count": c[2], "decision": c[3]}
            for c in calls if not before_only or c[2] >= 0]


def test_policy_calls_accepts_full_and_before_only_traces():
    calls = sp.simulate("xen417", CONVERGING, BW)["calls"]  # ends with the after call of pass 5
    full = [c[:3] for c in calls]
    assert sp.policy_calls(as_records(calls)) == full
    assert sp.policy_calls(calls) == full
    # Before-send calls only: the after-send calls are implied, up to the one after the last entry.
    assert sp.policy_calls(as_records(calls, before_only=True)) == full
    assert sp.policy_calls([{"iteration": 0, "total_written": 0, "dirty_count": 7}]) == [(0, 0, 7), (1, 7, -1)]


@pytest.mark.parametrize(
    "trace, message",
    [
        ([], "non-empty list of policy calls"),
        ({"iteration": 0}, "non-empty list of policy calls"),
        ([(1, 0, 100)], "trace[0] must be the first call {iteration: 0, total_written: 0"),
        ([(0, 0, 0)], "dirty_count: guest pages >= 1"),
        ([(0, 0, 100), {"iteration": 1, "dirty_count": 5}], "trace[1] has no total_written"),
        ([(0, 0, 100), "1 100 5"], "trace[1] must be a mapping"),
        ([(0, 0, 100), (1, 100, 50), (3, 150, 20)], "trace[2]: send_memory_live would pass iteration 2, total_written 150"),
        ([(0, 0, 100), (1, 100, 50), (2, 100, 20)], "would pass iteration 2, total_written 150 here, the trace has iteration 2, "
                                                    "total_written 100"),
        ([(0, 0, 100), (1, 100, -1), (1, 100, 40), (1, 100, 30)], "trace[3] should be the after-send call of pass 2"),
        # One -1 makes it a full trace, in which entry 1 must be the after-send call.
        ([(0, 0, 100), (1, 100, 50), (2, 150, -1)], "trace[1] should be the after-send call of pass 1"),
        ([(0, 0, 100), (1, 100, 101)], "trace[1] dirty_count 101 exceeds the guest's 100 pages"),
        ([(0, 0, 100), (1, 100, 5.0)], "trace[1] dirty_count must be an integer"),
        ([(0, 0, 100), (1, 100, -2)], "trace[1] dirty_count must be at least -1"),
    ],
)
def test_policy_calls_names_the_first_impossible_entry(trace, message):
    with pytest.raises(ValueError) as err:
        sp.policy_calls(trace)
    assert message in str(err.value)


@pytest.mark.parametrize("model", [CONVERGING, NON_CONVERGING, sp.ConstantRateModel(P, 3000)], ids=["conv", "nonconv", "const"])
@pytest.mark.parametrize("name", sorted(sp.POLICIES))
def test_replay_of_its_own_trace_stops_at_the_last_logged_call(name, model):
    # What the lab checks: Xen ran policy `name` and logged its calls; replaying them stops
    # exactly at the last logged call, before or after send.
    run = sp.simulate(name, model, BW)
    last = run["calls"][-1]
    assert sp.replay(name, as_records(run["calls"])) == last[0]
    details = sp.replay(name, as_records(run["calls"], before_only=True), details=True)
    assert (details["iteration"], details["dirty_count"], details["passes"], details["stopped"], details["reason"]) == \
        (last[0], last[2], run["iterations"], run["stopped"], run["reason"])
    assert details["calls"] == run["calls"]


def test_replay_predicts_other_policies_on_a_xen34_recording():
    # 29 passes recorded under xen34 (before-send calls only, iterations 0..28).
    recorded = as_records(sp.simulate("xen34", CONVERGING, BW)["calls"], before_only=True)
    assert len(recorded) == 29 and recorded[-1]["iteration"] == 28 and recorded[-1]["dirty_count"] == 1251
    # adaptive: stop at the before-send call of iteration 15 (D_15 = 1280), 16 passes (see
    # test_simulate_converging_adaptive_goes_past_five for the arithmetic).
    assert sp.replay("adaptive", recorded, details=True)["passes"] == 16
    assert sp.replay("adaptive", recorded) == 15
    # xen417 stops at the after-send call of pass 5; xen34 at that of pass 29, which is implied by
    # the last before-send call (iteration 28, total_written 195716, 1251 pages).
    assert sp.replay("xen417", recorded) == 5
    assert sp.replay("xen34", recorded, details=True)["total_written"] == 195716 + 1251
    # sd with the thesis's band never fires on this trace (sigma of D_2.. is thousands of pages);
    # with 0 < sigma < 5000 from iteration 3 it stops at once: D_2, D_3 = 24393, 15136,
    # V = 2 (24393^2 + 15136^2) - 39529^2 = 9257^2 = 85 692 049 < (5000 * 2)^2.
    assert sp.replay("sd", recorded, details=True)["reason"] == "iterations"
    res = sp.replay("sd", recorded, sd_low=0, sd_high=5000, track_from=3, details=True)
    assert (res["iteration"], res["reason"], res["passes"]) == (3, "sd_band", 4)


def test_replay_that_runs_off_the_trace_is_a_clear_error():
    recorded = as_records(sp.simulate("xen417", NON_CONVERGING, BW)["calls"])
    with pytest.raises(sp.TraceTooShort, match="answered CONTINUE to all 10 calls .last: iteration 5"):
        sp.replay("xen34", recorded)
    assert sp.replay("xen34", recorded, max_iterations=5) == 5


def test_replay_with_instances_and_callables():
    recorded = sp.simulate("xen34", CONVERGING, BW)["calls"]
    pol = sp.AdaptivePolicy(P)
    assert sp.replay(pol, recorded) == 15 and pol.reason == "no_shrink"
    assert sp.replay(pol, recorded) == 15  # reset between replays
    # Calls 0..3: (0, 0, P), (1, P, -1), (1, P, 39822), (2, P + 39822 = 105358, -1): the first with tw > 100000.
    res = sp.replay(lambda it, tw, dc: S if tw > 100000 else C, recorded, details=True)
    assert (res["call_index"], res["iteration"], res["stopped"], res["passes"]) == (3, 2, "after_send", 2)
    with pytest.raises(ValueError, match="policy was built for 1000 guest pages but the trace has 65536"):
        sp.replay(sp.AdaptivePolicy(1000), recorded)
    with pytest.raises(ValueError, match="details must be true or false"):
        sp.replay("xen34", recorded, details="yes")


def test_trace_model_from_logged_calls():
    run = sp.simulate("adaptive", CONVERGING, BW)
    model = sp.TraceModel.from_policy_calls(as_records(run["calls"], before_only=True), final_pages=run["final_pages"])
    assert model.counts == run["trace"]
    again = sp.simulate("adaptive", model, BW)
    assert (again["iterations"], again["downtime_s"], again["total_pages"]) == (16, run["downtime_s"], run["total_pages"])


# --- the C reference of docs/precopy.md makes the same decisions ------------------------------

DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "docs", "precopy.md")
C_DRIVER = r"""
#include <stdio.h>
#include <string.h>
struct precopy_stats { unsigned int iteration; unsigned long total_written; long dirty_count; };
#define XGS_POLICY_ABORT (-1)
#define XGS_POLICY_CONTINUE_PRECOPY 0
#define XGS_POLICY_STOP_AND_COPY 1
#include "policy.c"
int main(void)
{
    struct xlpc_policy pol;
    char cmd[8];
    xlpc_defaults(&pol, XLPC_XEN34);
    while ( scanf("%7s", cmd) == 1 )
    {
        if ( strcmp(cmd, "def") == 0 )
        {
            int kind;
            if ( scanf("%d", &kind) != 1 ) return 2;
            xlpc_defaults(&pol, kind);
        }
        else if ( strcmp(cmd, "cfg") == 0 )
        {
            int kind;
            unsigned int mi, tf, w, ea;
            long long t, sl, sh, sd, nd;
            unsigned long long mf;
            if ( scanf("%d %u %lld %llu %u %lld %lld %u %lld %lld %u", &kind, &mi, &t, &mf, &tf, &sl, &sh, &w, &sd, &nd,
                       &ea) != 11 )
                return 2;
            xlpc_defaults(&pol, kind);
            pol.max_iterations = mi; pol.target_dirty_count = t; pol.max_factor = mf; pol.track_from = tf;
            pol.sd_low = sl; pol.sd_high = sh; pol.window = w; pol.shrink_div = sd; pol.noise_div = nd;
            pol.early = ea;
        }
        else
        {
            struct precopy_stats s;
            if ( scanf("%u %lu %ld", &s.iteration, &s.total_written, &s.dirty_count) != 3 ) return 2;
            printf("%d\n", xlpc_precopy_policy(s, &pol));
        }
    }
    return 0;
}
"""
KINDS = {"xen417": 0, "xen34": 1, "sd": 2, "adaptive": 3}


@pytest.fixture(scope="module", name="c_policy")
def c_policy_fixture(tmp_path_factory):
    """The ```c block of docs/precopy.md, compiled with a stdin/stdout driver."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed")
    with open(DOC, encoding="utf-8") as f:
        blocks = re.findall(r"```c\n(.*?)```", f.read(), re.S)
    assert len(blocks) == 1, "docs/precopy.md must hold exactly one ```c block"
    d = tmp_path_factory.mktemp("xlpc_c")
    (d / "policy.c").write_text(blocks[0], encoding="utf-8")
    (d / "driver.c").write_text(C_DRIVER, encoding="utf-8")
    subprocess.run([gcc, "-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", "-o", str(d / "driver"), str(d / "driver.c")],
                   check=True, capture_output=True, text=True)

    def run(script):
        out = subprocess.run([str(d / "driver")], input="\n".join(script) + "\n", capture_output=True, text=True,
                             check=True, timeout=60)
        return [int(v) for v in out.stdout.split()]
    return run


def random_trace(rng, pages, params):
    """Dirty counts D_1, D_2, ... of one shape, with exact band and threshold edges among them."""
    n = rng.randint(1, 34)
    shape = rng.choice(["walk", "decay", "alternate", "adaptive_edge", "adaptive_edge", "small"])
    if shape == "walk":
        level = rng.randint(0, min(pages, 20000))
        return [max(0, min(pages, level + rng.randint(-600, 600))) for _index in range(n)]
    if shape == "decay":
        d, out = rng.randint(100, pages), []
        for _index in range(n):
            d = max(0, int(d * rng.uniform(0.3, 1.05)))
            out.append(min(d, pages))
        return out
    if shape == "alternate":
        # An even number of samples alternating around a level gives sigma = half the swing,
        # exactly 150, 200, 300, 350 or one page either side: the band's edges.
        half = rng.choice([149, 150, 151, 199, 200, 201, 299, 300, 301, 349, 350, 351])
        level = rng.randint(half, max(half, min(pages - half, 5000)))
        return [rng.randint(0, pages)] + [level + half if i % 2 else level - half for i in range(n)]
    if shape == "adaptive_edge":
        # gain = old/shrink_div + P/noise_div, exact when old is a multiple of shrink_div and P
        # of noise_div (random_params makes that common), or one page either side.
        # Blocks of `window` samples alternate: one on the edge (against olds that are multiples
        # of shrink_div), the next rounded down to multiples of shrink_div to serve as olds.
        window, sdiv, ndiv = params.get("window", 3), params.get("shrink_div", 16), params.get("noise_div", 1024)
        out = [sdiv * rng.randint(1, max(1, pages // sdiv)) for _index in range(window)]
        while len(out) < n + window:
            old = out[-window]
            gain = -(-(ndiv * old + sdiv * pages) // (sdiv * ndiv))  # ceiling
            cur = max(0, min(pages, old - gain + rng.choice([-1, 0, 0, 1])))
            if (len(out) // window) % 2 == 0:
                cur -= cur % sdiv
            out.append(cur)
        return out
    return [rng.randint(0, 80) for _index in range(n)]


def random_params(rng, name):
    params = {"max_iterations": rng.randint(1, 40), "target_dirty_count": rng.choice([0, 1, 50, 100])}
    if name != "xen417":
        params["max_factor"] = rng.randint(1, 4)
    if name == "sd":
        low = rng.choice([0, 150, 200, rng.randint(0, 500)])
        params.update(track_from=rng.randint(2, 12), sd_low=low, sd_high=low + rng.choice([1, 100, 150, rng.randint(1, 2000)]))
    if name == "adaptive":
        params.update(window=rng.randint(1, 6), shrink_div=rng.choice([1, 16, rng.randint(1, 64)]),
                      noise_div=rng.choice([1, 256, 1024, rng.randint(1, 4096)]), early=rng.randint(0, 1))
    return params


def c_config(name, params):
    full = {"max_iterations": 29, "target_dirty_count": 50, "max_factor": 3, "track_from": 10, "sd_low": 200,
            "sd_high": 350, "window": 3, "shrink_div": 16, "noise_div": 1024, "early": 1}
    full.update(params)
    keys = ("max_iterations", "target_dirty_count", "max_factor", "track_from", "sd_low", "sd_high", "window", "shrink_div",
            "noise_div", "early")
    return "cfg %d %s" % (KINDS[name], " ".join(str(full[k]) for k in keys))


def on_edge(pol, call, decision):
    """Whether this call reached sd's band test or adaptive's threshold test exactly on its edge."""
    it, _tw, dc = call
    if dc < 0 or (decision == S and pol.reason not in ("sd_band", "no_shrink")):
        return 0  # an after-send call, or a xen34 rule stopped first
    if pol.name == "sd" and it >= pol.track_from and pol.samples:
        n = len(pol.samples)
        v = stats.pvariance_scaled(pol.samples)[0]
        return int(v in ((pol.sd_low * n) ** 2, (pol.sd_high * n) ** 2))
    if pol.name == "adaptive" and len(pol.history) == pol.window + 1:
        old = pol.history[0]
        return int(pol.shrink_div * pol.noise_div * (old - dc) == pol.noise_div * old + pol.shrink_div * pol.guest_pages)
    return 0


def test_c_reference_makes_the_same_decisions(c_policy):
    rng = random.Random(20120)
    script, expected, edges = [], [], {"sd_band": 0, "no_shrink": 0, "no_progress": 0}
    exact = {"sd": 0, "adaptive": 0, "xen34": 0, "xen417": 0}
    for name in sorted(sp.POLICIES):
        for _index in range(250):
            pages = rng.choice([1024, 65536, 262144, 1024 * rng.randint(1, 300), rng.randint(1, 300000)])
            params = random_params(rng, name)
            pol = sp.POLICIES[name](**params)  # P learnt from the iteration-0 call, as in C
            script.append(c_config(name, params))
            # Two migrations per configuration: the iteration-0 call must reset the state.
            for _migration in range(2):
                dirty = [min(d, pages) for d in random_trace(rng, pages, params)]
                for call in loop_calls(pages, dirty):
                    script.append("call %d %d %d" % call)
                    expected.append(pol(*call))
                    if pol.reason in edges and expected[-1] == S:
                        edges[pol.reason] += 1
                    exact[name] += on_edge(pol, call, expected[-1])
        # Defaults on both sides.
        pol = sp.POLICIES[name]()
        script.append("def %d" % KINDS[name])
        for call in loop_calls(262144, [30000] + [1500, 2000] * 4 + [1500, 1400, 1350, 1340, 1338] + [1338] * 20):
            script.append("call %d %d %d" % call)
            expected.append(pol(*call))
    got = c_policy(script)
    assert len(got) == len(expected) > 10000
    mismatches = [i for i, (a, b) in enumerate(zip(got, expected)) if a != b]
    assert not mismatches, "first mismatch at decision %d" % mismatches[0]
    # The comparison exercised both new rules' STOP paths and their exact edges, not only xen34's.
    assert edges["sd_band"] > 20 and edges["no_shrink"] > 20 and edges["no_progress"] > 20, edges
    assert exact["sd"] > 5 and exact["adaptive"] > 5, exact


def test_c_reference_band_edges_by_hand(c_policy):
    # sd, track_from = 3: D_2, D_3 = 800, 1200 give V = 2 * 2 080 000 - 2000^2 = 160 000 = (200 * 2)^2:
    # sigma = 200 exactly is not inside (200, 350); 801 gives V = 399^2 < 160 000; 799 gives 401^2.
    for d2, decision in ((800, C), (801, C), (799, S)):
        calls = loop_calls(262144, [30000, d2, 1200])
        pol = sp.SDPolicy(track_from=3)
        assert [pol(*c) for c in calls][-1] == decision
        assert c_policy([c_config("sd", {"track_from": 3})] + ["call %d %d %d" % c for c in calls])[-1] == decision
    # adaptive, P = 65536, old = D_1 = 1600: gain 164 = 1600/16 + 65536/1024 is not below the limit.
    for d4, decision in ((1436, C), (1437, S)):
        calls = loop_calls(P, [1600, 1500, 1450, d4])
        pol = sp.AdaptivePolicy()
        assert [pol(*c) for c in calls][-1] == decision
        assert c_policy(["def 3"] + ["call %d %d %d" % c for c in calls])[-1] == decision


# --- properties -----------------------------------------------------------------------------

BAD_SCALAR = st.one_of(st.none(), st.booleans(), st.text(max_size=3), st.floats(allow_nan=True), st.integers(max_value=0))
BAD_INT = st.one_of(BAD_SCALAR, st.lists(st.integers(), max_size=2))
BAD_REAL = st.one_of(st.none(), st.booleans(), st.text(max_size=3), st.just(float("nan")), st.just(float("inf")),
                     st.floats(max_value=-1e-9, allow_nan=False), st.integers(max_value=-1), st.just(10 ** 400))
JUNK = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=4), st.binary(max_size=3),
                 st.lists(st.integers(-3, 3), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


def clear_error(err):
    """A message that says what is wrong: not empty, not a bare repr of a value."""
    text = str(err.value)
    return len(text) > 15 and " " in text


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_property_invalid_constructor_arguments_raise_value_error(data):
    name = data.draw(st.sampled_from(sorted(sp.POLICIES)))
    param = data.draw(st.sampled_from({
        "xen417": ["guest_pages", "max_iterations", "target_dirty_count"],
        "xen34": ["guest_pages", "max_iterations", "max_factor", "target_dirty_count"],
        "sd": ["guest_pages", "track_from", "max_iterations", "sd_low", "sd_high"],
        "adaptive": ["guest_pages", "window", "shrink_div", "noise_div", "max_factor"],
    }[name]))
    value = data.draw(st.one_of(BAD_INT.filter(lambda v: v is not None and v != 0), st.just(2 ** 70), st.just(-1)))
    guest_pages, params = 1000, {}
    if param == "guest_pages":
        guest_pages = value
    else:
        params[param] = value
    with pytest.raises(ValueError) as err:
        sp.make_policy(name, guest_pages, **params)
    assert param in str(err.value) and clear_error(err)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(sp.POLICIES)), st.sampled_from([0, 1, 2]),
       st.one_of(BAD_INT, st.integers(max_value=-2), st.integers(min_value=2 ** 64)))
def test_property_invalid_stats_raise_value_error(name, which, value):
    stats = [3, 5000, 100]
    if which < 2 and isinstance(value, int) and not isinstance(value, bool) and value == 0:
        return  # 0 is a valid iteration / total_written
    if which == 2 and isinstance(value, int) and not isinstance(value, bool) and value >= -1 and value < 2 ** 64:
        return
    stats[which] = value
    with pytest.raises(ValueError) as err:
        sp.make_policy(name, 1000)(*stats)
    assert ("iteration", "total_written", "dirty_count")[which] in str(err.value) and clear_error(err)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["rate_pps", "wss_pages", "hot_rate_pps", "background_pps", "bandwidth", "trace"]), st.data())
def test_property_invalid_model_input_raises_value_error(what, data):
    with pytest.raises(ValueError) as err:
        if what == "rate_pps":
            sp.ConstantRateModel(P, data.draw(BAD_REAL))
        elif what == "wss_pages":
            sp.HotSetModel(P, data.draw(st.one_of(BAD_INT.filter(lambda v: v != 0), st.integers(min_value=P + 1))), 10)
        elif what == "hot_rate_pps":
            sp.HotSetModel(P, 10, data.draw(BAD_REAL))
        elif what == "background_pps":
            sp.HotSetModel(P, 10, 10, data.draw(BAD_REAL))
        elif what == "bandwidth":
            sp.simulate("adaptive", CONVERGING, data.draw(st.one_of(BAD_REAL, st.just(0), st.just(1e-300))))
        else:
            sp.TraceModel(data.draw(st.one_of(BAD_SCALAR, st.lists(BAD_INT, min_size=1, max_size=3),
                                              st.lists(st.integers(max_value=-1), min_size=2, max_size=3))))
    assert clear_error(err)


@settings(max_examples=300, deadline=None)
@given(st.one_of(JUNK, st.lists(JUNK, min_size=1, max_size=4),
                 st.lists(st.tuples(st.integers(-2, 3), st.integers(-2, 200), st.integers(-3, 200)), min_size=1, max_size=5)))
def test_property_junk_traces_raise_value_error(trace):
    try:
        calls = sp.policy_calls(trace)
    except ValueError as err:
        assert len(str(err)) > 15
        for func in (lambda: sp.replay("sd", trace), lambda: sp.TraceModel.from_policy_calls(trace)):
            with pytest.raises(ValueError):
                func()
        return
    # The rare random list that send_memory_live could have produced: it starts {0, 0, P}.
    assert calls[0][:2] == (0, 0) and calls[-1][2] == -1


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(sp.POLICIES)), st.booleans(), st.data())
def test_property_any_changed_iteration_or_total_is_rejected(name, before_only, data):
    run = sp.simulate(name, NON_CONVERGING, BW)
    records = as_records(run["calls"], before_only=before_only)
    index = data.draw(st.integers(0, len(records) - 1))
    key = data.draw(st.sampled_from(["iteration", "total_written"]))
    delta = data.draw(st.integers(-3, 3).filter(lambda v: v != 0))
    value = records[index][key] + delta
    records[index][key] = value if value >= 0 else records[index][key] - delta
    with pytest.raises(ValueError, match=r"trace\[%d\]" % index):
        sp.replay(name, records)


def _fits_float(value):
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["policy", "model", "page_size", "max_rounds", "overhead_s", "details", "params", "name"]), JUNK)
def test_property_bad_simulate_and_replay_arguments(what, value):
    calls = sp.simulate("xen417", CONVERGING, BW)["calls"]
    if what in ("page_size", "max_rounds") and isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return  # valid (huge ones are checked in test_bad_input_messages)
    if what == "overhead_s" and isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0 \
            and _fits_float(value):
        return  # any finite beta is valid, however large
    if what == "details" and isinstance(value, bool):
        return
    with pytest.raises(ValueError) as err:
        if what == "policy":
            sp.simulate(value, CONVERGING, BW)
        elif what == "model":
            sp.simulate("xen34", value, BW)
        elif what in ("page_size", "max_rounds", "overhead_s"):
            sp.simulate("xen34", CONVERGING, BW, **{what: value})
        elif what == "details":
            sp.replay("xen34", calls, details=value)
        elif what == "params":
            sp.replay("adaptive", calls, window=value)
        else:
            sp.make_policy(value, 1000)
    assert clear_error(err)


HOT_SET = st.builds(
    sp.HotSetModel,
    st.integers(min_value=1000, max_value=300000),
    st.integers(min_value=0, max_value=1000),
    st.floats(min_value=0, max_value=2e5),
    st.floats(min_value=0, max_value=2e4),
)


@settings(max_examples=150, deadline=None)
@given(HOT_SET, st.floats(min_value=1e6, max_value=2e8))
def test_property_replay_and_adaptive_guarantees(model, bandwidth):
    results = {name: sp.simulate(name, model, bandwidth) for name in sp.POLICIES}
    recorded = as_records(results["xen34"]["calls"], before_only=True)
    for name, direct in results.items():
        again = sp.simulate(name, sp.TraceModel(direct["trace"]), bandwidth)
        assert again["calls"] == direct["calls"] and again["final_pages"] == direct["final_pages"]
        # Its own calls replay to its own stopping call ...
        assert sp.replay(name, direct["calls"]) == direct["calls"][-1][0]
        # ... and the xen34 recording predicts it exactly (xen417 lacks the 3x-RAM rule and may
        # outlast a xen34 run that rule ended).
        if name != "xen417" or results["xen34"]["iterations"] >= 5:
            predicted = sp.replay(name, recorded, details=True)
            assert (predicted["passes"], predicted["stopped"]) == (direct["iterations"], direct["stopped"])
    ad, x417, x34 = results["adaptive"], results["xen417"], results["xen34"]
    ad0 = sp.simulate("adaptive", model, bandwidth, early=0)
    # The dirty set of these models never grows after pass 1, so without the early check stopping
    # at or after xen417's point never costs downtime; only the 3x-RAM safety net stops it earlier.
    assert ad0["iterations"] <= x34["iterations"]
    if ad0["reason"] != "total_written":
        assert ad0["iterations"] >= min(5, x417["iterations"])
        assert ad0["final_pages"] <= x417["final_pages"]
    # The early check only adds a way to stop: the same call, or sooner and then by that check,
    # when the first live pass shrank the set by less than the threshold.
    assert ad["iterations"] <= ad0["iterations"]
    if ad["iterations"] < ad0["iterations"]:
        d1, d2 = ad["trace"][1], ad["trace"][2]
        assert ad["reason"] == "no_progress" and ad["iterations"] == 3
        assert 16 * 1024 * (d1 - d2) < 1024 * d1 + 16 * ad["trace"][0]
