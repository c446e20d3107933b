# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The thesis's pre-copy model, Eqs. (1)-(12), and the Table 4 cap choice."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.xenlab.migration.plugins.module_utils import precopy, stats

# Worked example of section 3.1; 1024 MB = 8192 Mb with 1 MB = 1000 KB, h = 200 KB = 1.6 Mb.
EXAMPLE = {"memory_mb": 1024, "bandwidth_mbps": 1000, "threshold_kb": 200, "max_iterations": 30}

TABLE3 = [
    {"cap": 20, "downtime_ms": 550, "dirty_rate_mbps": 364.1, "response_ms": 61.62},
    {"cap": 25, "downtime_ms": 500, "dirty_rate_mbps": 457.52, "response_ms": 48.62},
    {"cap": 30, "downtime_ms": 650, "dirty_rate_mbps": 642.37, "response_ms": 50.73},
    {"cap": 35, "downtime_ms": 800, "dirty_rate_mbps": 860.57, "response_ms": 38.55},
    {"cap": 40, "downtime_ms": 1000, "dirty_rate_mbps": 869.32, "response_ms": 33.24},
    {"cap": 50, "downtime_ms": 1100, "dirty_rate_mbps": 1015.54, "response_ms": 17.78},
    {"cap": 60, "downtime_ms": 1150, "dirty_rate_mbps": 1262.57, "response_ms": 13.75},
    {"cap": 100, "downtime_ms": 1050, "dirty_rate_mbps": 1297.23, "response_ms": 10.93},
]
# Table 4 as printed.
TABLE4_RESPONSE = [60.79, 53.25, 45.71, 38.17, 30.63, 23.09, 15.55, 8.01]
TABLE4_DOWNTIME = [25.20, 30.14, 35.08, 40.03, 44.97, 49.91, 54.85, 59.79]


def test_worked_example_eq7_gives_744_9():
    # (200 KB / 1 024 000 KB)^(1/29) * 1000 = exp(ln(1.953125e-4) / 29) * 1000
    # = exp((0.669431 - 9.210340) / 29) * 1000 = exp(-0.294514) * 1000 = 744.893 Mbps.
    p = precopy.max_dirty_rate(**EXAMPLE)
    assert round(p, 1) == 744.9
    assert math.isclose(p, 744.893, abs_tol=0.001)


def test_binary_megabytes_would_not_give_744_9():
    # With 1 MB = 1024 KB, h/M = 200 / 1 048 576 (memory_mb = 1048.576 in 1000-KB units):
    # exp(ln(1.90735e-4) / 29) = exp(-8.56469 / 29) = 0.744272.
    assert round(precopy.max_dirty_rate(1048.576, 1000, 200, 30), 1) == 744.3


def test_units():
    assert precopy.memory_mbit(1024) == 8192.0  # 1024 MB * 8 bit
    assert precopy.threshold_mbit(200) == 1.6  # 200 KB * 8 bit / 1000 KB per MB


def test_eq1_iteration_times_constant_rate():
    # t_1 = 8192 Mb / 1000 Mbps = 8.192 s; p/B = 0.5 halves every round.
    times = precopy.iteration_times(1024, 1000, 500, 4)
    assert times == pytest.approx([8.192, 4.096, 2.048, 1.024])


def test_eq1_iteration_times_per_iteration_rates():
    # t_2 = p_1 t_1 / B = 250 * 8.192 / 1000 = 2.048; t_3 = 750 * 2.048 / 1000 = 1.536.
    assert precopy.iteration_times(1024, 1000, [250, 750], 3) == pytest.approx([8.192, 2.048, 1.536])


def test_eq6_caps_a_round_at_all_memory():
    # p = 2B would dirty 2M during a round of M/B: capped at M, so every round lasts M/B.
    assert precopy.iteration_times(1024, 1000, 2000, 3) == pytest.approx([8.192, 8.192, 8.192])


def test_eq2_eq3_converging_rate():
    # p = 500: round i leaves p t_i = 8192 * 0.5^i Mb; <= 1.6 Mb first for i = 13
    # (8192/8192 = 1.0; i = 12 leaves 2.0) so n = 14.
    # T = 8.192 * (1 + 1/2 + ... + 1/2^13) = 8.192 * (2 - 2^-13) = 16.384 - 0.001 = 16.383 s.
    args = dict(EXAMPLE, dirty_rate_mbps=500)
    assert precopy.iteration_count(**args) == 14
    assert precopy.migration_time(**args) == pytest.approx(16.383)
    # Last round t_14 = 8.192 * 2^-13 = 0.001 s <= h/B = 1.6/1000 = 0.0016 s (Eq. 4).
    assert precopy.downtime(**args) == pytest.approx(0.001)
    assert precopy.downtime_bound(200, 1000) == pytest.approx(0.0016)
    assert precopy.downtime(**args) <= precopy.downtime_bound(200, 1000)


def test_eq9_above_the_eq7_limit_runs_n_rounds():
    # p = 800 > 744.9: n = N = 30 and t_d = M p^29 / B^30 = 8.192 * 0.8^29
    # = 8.192 * exp(29 * -0.2231436) = 8.192 * 0.00154743 = 0.0126765 s (Eq. 9).
    args = dict(EXAMPLE, dirty_rate_mbps=800)
    assert precopy.iteration_count(**args) == 30
    assert precopy.downtime(**args) == pytest.approx(0.0126765, rel=1e-5)
    assert precopy.exponential_downtime(1024, 1000, 800, 30) == pytest.approx(0.0126765, rel=1e-5)
    assert precopy.downtime(**args) > precopy.downtime_bound(200, 1000)


def test_eq7_limit_is_where_the_eq4_bound_breaks():
    # At p = p* round N-1 = 29 leaves exactly h, so just below p* the last round still fits h/B
    # (Eq. 4) and just above it exceeds h/B (Eq. 8, 9); both use all n = N = 30 rounds.
    p = precopy.max_dirty_rate(**EXAMPLE)
    bound = precopy.downtime_bound(200, 1000)
    assert precopy.iteration_count(dirty_rate_mbps=p * 0.999, **EXAMPLE) == 30
    assert precopy.downtime(dirty_rate_mbps=p * 0.999, **EXAMPLE) <= bound
    assert precopy.iteration_count(dirty_rate_mbps=p * 1.001, **EXAMPLE) == 30
    assert precopy.downtime(dirty_rate_mbps=p * 1.001, **EXAMPLE) > bound
    # 0.95 p*: (0.95 p*/B)^i <= (p*/B)^29 for i >= 29 * 0.294514 / (0.294514 + 0.051293) = 24.7,
    # so round 25 meets h and n = 26.
    assert precopy.iteration_count(dirty_rate_mbps=p * 0.95, **EXAMPLE) == 26


def test_eq6_worst_case_and_eq12_overhead():
    # p >= B: every round copies all 8192 Mb; 30 rounds of 8.192 s, t_d = M/B = 8.192 s.
    args = dict(EXAMPLE, dirty_rate_mbps=2000)
    assert precopy.migration_time(**args) == pytest.approx(30 * 8.192)
    assert precopy.downtime(**args) == pytest.approx(precopy.worst_case_downtime(1024, 1000)) == pytest.approx(8.192)
    # Eq. (12): h/B + beta = 0.0016 + 0.25.
    assert precopy.downtime_bound(200, 1000, overhead_s=0.25) == pytest.approx(0.2516)
    assert precopy.downtime(overhead_s=0.25, **args) == pytest.approx(8.442)


def test_eq5_and_eq8_conditions():
    # Eq. (5): p/B <= 1 means rounds do not grow; 500/1000 = 0.5, 1500/1000 = 1.5.
    assert precopy.dirty_ratio(500, 1000) == 0.5
    assert precopy.dirty_ratio(1500, 1000) == 1.5
    assert precopy.iteration_times(1024, 1000, 1500, 2)[1] > precopy.iteration_times(1024, 1000, 1500, 2)[0] / 2
    # Eq. (8): above 744.9 Mbps (the example's Eq. (7) limit), not at or below it.
    assert precopy.above_convergence_limit(dirty_rate_mbps=745, **EXAMPLE)
    assert not precopy.above_convergence_limit(dirty_rate_mbps=744.8, **EXAMPLE)


def test_eq10_eq11_phase_sums():
    # Eq. (10): 0.1 + 0.05 + 12.0 + 0.3 + 0.02 + 0.08 = 12.55 s; Eq. (11): 0.3 + 0.02 + 0.08 = 0.4 s.
    out = precopy.phase_times(pre_migration_s=0.1, reservation_s=0.05, iterative_s=12.0, stop_and_copy_s=0.3,
                              commitment_s=0.02, activation_s=0.08)
    assert out == {"migration_time_s": pytest.approx(12.55), "downtime_s": pytest.approx(0.4)}
    assert precopy.phase_times(iterative_s=3) == {"migration_time_s": 3.0, "downtime_s": 0.0}
    with pytest.raises(ValueError, match="unknown phase.s.: resume_s"):
        precopy.phase_times(resume_s=1)
    with pytest.raises(ValueError, match="activation_s must be at least 0"):
        precopy.phase_times(activation_s=-1)


def test_zero_dirty_rate_is_one_copy_and_an_empty_last_round():
    args = dict(EXAMPLE, dirty_rate_mbps=0)
    assert precopy.iteration_count(**args) == 2
    assert precopy.migration_time(**args) == pytest.approx(8.192)
    assert precopy.downtime(**args) == 0


def test_predict_mapping():
    out = precopy.predict(dict(EXAMPLE, dirty_rate_mbps=500, overhead_s=0.5))
    assert out["iterations"] == 14
    assert out["migration_time_s"] == pytest.approx(16.883)  # 16.383 + beta
    assert out["downtime_s"] == pytest.approx(0.501)
    assert out["downtime_bound_s"] == pytest.approx(0.5016)
    assert round(out["max_dirty_rate_mbps"], 1) == 744.9


def test_working_set_caps_every_round():
    # M = 1024 MB, B = 1000 Mbps, p = 500 Mbps, h = 200 KB, N = 30, W = 100 MB (800 Mb):
    # t_1 = 8.192 s; p t_1 = 4096 Mb > W, so round 2 copies 800 Mb (0.8 s); then p t_2 = 400 Mb < W
    # and the rounds halve as without W: 0.4, 0.2, ... until p t_i <= h = 1.6 Mb.
    args = dict(EXAMPLE, dirty_rate_mbps=500)
    times = precopy.iteration_times(1024, 1000, 500, 5, wws_mb=100)
    assert times == pytest.approx([8.192, 0.8, 0.4, 0.2, 0.1])
    # 0.8 * 0.5^(i-2) * 500 <= 1.6 first at i = 10: round 11 is the stop-and-copy
    n = precopy.iteration_count(**args, wws_mb=100)
    assert n == 11
    want = 8.192 + sum(0.8 * 0.5 ** k for k in range(n - 1))
    assert precopy.migration_time(**args, wws_mb=100) == pytest.approx(want)
    assert precopy.downtime(**args, wws_mb=100) == pytest.approx(0.8 * 0.5 ** (n - 2))
    # without W the thesis's form: round 2 copies p t_1 = 4096 Mb
    assert precopy.iteration_times(1024, 1000, 500, 2) == pytest.approx([8.192, 4.096])
    assert precopy.migration_time(**args) == pytest.approx(16.383, abs=1e-3)  # test_predict_mapping
    assert precopy.migration_time(**args) - precopy.migration_time(**args, wws_mb=100) > 6.5
    # W >= M changes nothing; a W that binds every round at rate >= B gives N rounds of W/B
    assert precopy.migration_time(**args, wws_mb=5000) == precopy.migration_time(**args)
    assert precopy.iteration_times(1024, 1000, 2000, 4, wws_mb=100) == pytest.approx([8.192, 0.8, 0.8, 0.8])
    out = precopy.predict(dict(args, wws_mb=100, overhead_s=2.0, downtime_overhead_s=0.5))
    assert out["migration_time_s"] == pytest.approx(want + 2.0)
    assert out["downtime_s"] == pytest.approx(0.8 * 0.5 ** (n - 2) + 0.5)
    assert out["downtime_bound_s"] == pytest.approx(1.6 / 1000 + 0.5)
    assert out["iterations"] == n


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(EXAMPLE, dirty_rate_mbps=500, wws_mb=0), "wws_mb must be greater than 0"),
        (dict(EXAMPLE, dirty_rate_mbps=500, wws_mb="big"), "wws_mb must be a number"),
        (dict(EXAMPLE, dirty_rate_mbps=500, downtime_overhead_s=-1), "downtime_overhead_s must be at least 0"),
        ([1, 2], "expected a mapping"),
        (dict(EXAMPLE), "missing key(s): dirty_rate_mbps"),
        (dict(EXAMPLE, dirty_rate_mbps=500, bandwith_mbps=3), "unknown key(s): bandwith_mbps"),
        (dict(EXAMPLE, dirty_rate_mbps=-1), "dirty_rate_mbps must be at least 0"),
        (dict(EXAMPLE, dirty_rate_mbps=500, memory_mb=0), "memory_mb must be greater than 0"),
        (dict(EXAMPLE, dirty_rate_mbps=500, max_iterations=1), "max_iterations must be at least 2"),
        (dict(EXAMPLE, dirty_rate_mbps=500, max_iterations=30.0), "max_iterations must be an integer"),
        (dict(EXAMPLE, dirty_rate_mbps="fast"), "dirty_rate_mbps must be a number"),
        (dict(EXAMPLE, dirty_rate_mbps=[500, 400]), "needs at least 29 per-iteration rates"),
        (dict(EXAMPLE, dirty_rate_mbps=500, threshold_kb=True), "threshold_kb must be a number"),
        (dict(EXAMPLE, dirty_rate_mbps=500, bandwidth_mbps=float("nan")), "bandwidth_mbps must be a finite number"),
        (dict(EXAMPLE, dirty_rate_mbps=500, overhead_s=-0.1), "overhead_s must be at least 0"),
    ],
)
def test_predict_rejects_bad_input(params, message):
    with pytest.raises(ValueError) as err:
        precopy.predict(params)
    assert message in str(err.value)


def test_optimal_cap_reproduces_table4_and_35():
    # Row positions x = 1..8: mean 4.5, Sxx = 42.
    # Response: sum (x - 4.5) y = -316.67, slope -7.5398, intercept 34.4025 + 4.5 * 7.5398 = 68.3316,
    #   so 60.79 at x = 1 falling by 7.54 per row.
    # Downtime: sum (x - 4.5) y = 4150, slope 98.8095, intercept 405.357; times 0.05: 20.2679 + 4.9405 x,
    #   25.208 at x = 1 (Table 4 prints 25.20, within 0.01).
    # max(...) per row: 60.79, 53.25, 45.71, 40.03, 44.97, ... -> smallest at row 4 = cap 35.
    result = precopy.optimal_cap(TABLE3)
    assert result["cap"] == 35
    assert result["index"] == 3
    assert result["score_ms"] == pytest.approx(40.03, abs=0.01)
    for row, r, d in zip(result["rows"], TABLE4_RESPONSE, TABLE4_DOWNTIME):
        assert row["response_trend_ms"] == pytest.approx(r, abs=0.01)
        assert row["weighted_downtime_trend_ms"] == pytest.approx(d, abs=0.01)
        assert row["score_ms"] == max(row["response_trend_ms"], row["weighted_downtime_trend_ms"])


def test_optimal_cap_over_cap_values_picks_40():
    # x = caps: mean 45, Sxx = 4650. Response slope -2929.25/4650 = -0.62995 around 34.4025;
    # weighted downtime slope 0.05 * 34000/4650 = 0.36559 around 42.5.
    # cap 35: max(40.702, 38.844) = 40.702; cap 40: max(37.552, 40.672) = 40.672 -> 40, not 35.
    result = precopy.optimal_cap(TABLE3, trend_over="cap")
    assert result["cap"] == 40
    assert result["score_ms"] == pytest.approx(40.672, abs=0.001)
    assert result["rows"][3]["score_ms"] == pytest.approx(40.702, abs=0.001)


def test_optimal_cap_weight_moves_the_choice():
    # Without the downtime the falling response line alone wins at the last row.
    assert precopy.optimal_cap(TABLE3, downtime_weight=0)["cap"] == 100


@pytest.mark.parametrize(
    "rows, kwargs, message",
    [
        (TABLE3[:1], {}, "at least 2 rows"),
        ("20,25", {}, "expected a list of mappings"),
        ([{"cap": 20, "downtime_ms": 1}, TABLE3[1]], {}, "row 0 has no response_ms"),
        ([TABLE3[0], 5], {}, "row 1 must be a mapping"),
        ([TABLE3[0], dict(TABLE3[1], downtime_ms="slow")], {}, "row 1 downtime_ms must be a number"),
        (TABLE3, {"trend_over": "time"}, "trend_over must be one of index, cap"),
        (TABLE3, {"downtime_weight": -1}, "downtime_weight must be at least 0"),
        ([TABLE3[0], TABLE3[0]], {"trend_over": "cap"}, "two different caps"),
    ],
)
def test_optimal_cap_rejects_bad_input(rows, kwargs, message):
    with pytest.raises(ValueError) as err:
        precopy.optimal_cap(rows, **kwargs)
    assert message in str(err.value)


def test_stats_helpers():
    # y = 1 + 2x exactly.
    assert stats.linear_fit([1, 2, 3], [3, 5, 7]) == pytest.approx((1.0, 2.0))
    with pytest.raises(ValueError):
        stats.linear_fit([2, 2], [1, 3])
    # [800, 1200]: n*S2 - S1^2 = 2 * 2 080 000 - 4 000 000 = 160 000 over n^2 = 4 -> sigma = 200.
    assert stats.pvariance_scaled([800, 1200]) == (160000, 4)
    with pytest.raises(ValueError):
        stats.pvariance_scaled([1.5])


# Property tests: any invalid input raises ValueError with a message, never another exception.
NOT_A_NUMBER = st.one_of(st.none(), st.booleans(), st.text(max_size=5), st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
                         st.just(float("nan")), st.just(float("inf")), st.just(float("-inf")))
NOT_POSITIVE = st.one_of(NOT_A_NUMBER, st.floats(max_value=0, allow_nan=False), st.integers(max_value=0))
NEGATIVE = st.one_of(NOT_A_NUMBER, st.floats(max_value=-1e-9, allow_nan=False), st.integers(max_value=-1))
BAD_N = st.one_of(NOT_A_NUMBER, st.integers(max_value=1), st.floats(allow_nan=False))
BAD_VALUES = {"memory_mb": NOT_POSITIVE, "bandwidth_mbps": NOT_POSITIVE, "threshold_kb": NOT_POSITIVE,
              "dirty_rate_mbps": st.one_of(NEGATIVE, st.lists(st.floats(min_value=0, max_value=1e3), max_size=28)),
              "max_iterations": BAD_N, "overhead_s": NEGATIVE}


@st.composite
def bad_predict_input(draw):
    key = draw(st.sampled_from(sorted(BAD_VALUES)))
    params = dict(EXAMPLE, dirty_rate_mbps=draw(st.floats(min_value=0, max_value=5000)))
    params[key] = draw(BAD_VALUES[key])
    return key, params


@settings(max_examples=300, deadline=None)
@given(bad_predict_input())
def test_property_bad_predict_input_raises_value_error(case):
    key, params = case
    with pytest.raises(ValueError) as err:
        precopy.predict(params)
    assert key in str(err.value)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["iteration_count", "migration_time", "downtime"]), bad_predict_input())
def test_property_bad_equation_input_raises_value_error(func, case):
    key, params = case
    params.pop("overhead_s", None)
    if key == "overhead_s":
        return
    with pytest.raises(ValueError) as err:
        getattr(precopy, func)(**params)
    assert str(err.value)


@settings(max_examples=200, deadline=None)
@given(st.one_of(NOT_A_NUMBER, st.lists(st.one_of(NOT_A_NUMBER, st.integers()), max_size=3),
                 st.lists(st.fixed_dictionaries({"cap": NOT_POSITIVE, "downtime_ms": st.integers(0, 9), "response_ms": st.integers(0, 9)}),
                          min_size=2, max_size=3)))
def test_property_bad_cap_rows_raise_value_error(rows):
    with pytest.raises(ValueError) as err:
        precopy.optimal_cap(rows)
    assert str(err.value)


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=1, max_value=1e5), st.floats(min_value=1, max_value=1e5), st.floats(min_value=0, max_value=2e5),
       st.floats(min_value=1, max_value=1e4), st.integers(min_value=2, max_value=60))
def test_property_model_invariants(memory_mb, bandwidth_mbps, rate, threshold_kb, n_max):
    n = precopy.iteration_count(memory_mb, bandwidth_mbps, rate, threshold_kb, n_max)
    assert 2 <= n <= n_max
    t_d = precopy.downtime(memory_mb, bandwidth_mbps, rate, threshold_kb, n_max)
    # Eq. (6) bounds every downtime; Eq. (4) holds whenever the threshold (not N) ended the loop.
    assert t_d <= precopy.worst_case_downtime(memory_mb, bandwidth_mbps) * (1 + 1e-12)
    if n < n_max:
        assert t_d <= precopy.downtime_bound(threshold_kb, bandwidth_mbps) * (1 + 1e-12)
    assert precopy.migration_time(memory_mb, bandwidth_mbps, rate, threshold_kb, n_max) >= memory_mb * 8 / bandwidth_mbps


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: precopy.memory_mbit(1e308), "memory_mb in megabits is out of floating-point range"),
        (lambda: precopy.iteration_times(1e300, 1e-300, 500, 3), "t_1 = M/B is out of floating-point range"),
        (lambda: precopy.exponential_downtime(1024, 1, 1e300, 30), "M p^(N-1) / B^N is out of floating-point range"),
        (lambda: precopy.max_dirty_rate(1e-320, 1e300, 200, 2), "max dirty rate (h/M)^(1/(N-1)) B is out of floating-point range"),
        (lambda: precopy.migration_time(1e300, 1e-7, 2e-7, 1, 30), "out of floating-point range"),
        (lambda: precopy.iteration_count(1024, 1000, 500, 200, 10 ** 6), "max_iterations must be at most 10000"),
        (lambda: precopy.predict(dict(EXAMPLE, dirty_rate_mbps=10 ** 400)), "dirty_rate_mbps must be a finite number, got 1000"),
    ],
)
def test_out_of_range_results_are_value_errors(call, message):
    # Finite but extreme inputs: a clear ValueError, never OverflowError or inf/nan in the output.
    with pytest.raises(ValueError) as err:
        call()
    assert message in str(err.value)


PUBLIC = {
    "memory_mbit": 1, "threshold_mbit": 1, "dirty_ratio": 2, "worst_case_downtime": 2, "downtime_bound": 2,
    "iteration_times": 4, "exponential_downtime": 4, "max_dirty_rate": 4, "above_convergence_limit": 5,
    "iteration_count": 5, "migration_time": 5, "downtime": 5,
}
GOOD_ARGS = {"memory_mbit": [1024], "threshold_mbit": [200], "dirty_ratio": [500, 1000], "worst_case_downtime": [1024, 1000],
             "downtime_bound": [200, 1000], "iteration_times": [1024, 1000, 500, 5],
             "exponential_downtime": [1024, 1000, 800, 30], "max_dirty_rate": [1024, 1000, 200, 30],
             "above_convergence_limit": [1024, 1000, 800, 200, 30], "iteration_count": [1024, 1000, 500, 200, 30],
             "migration_time": [1024, 1000, 500, 200, 30], "downtime": [1024, 1000, 500, 200, 30]}
JUNK = st.one_of(NOT_A_NUMBER, st.integers(max_value=0), st.floats(max_value=0), st.lists(st.text(max_size=2), min_size=1, max_size=2),
                 st.just(10 ** 400), st.binary(max_size=2))


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(PUBLIC)), st.data())
def test_property_every_public_function_rejects_junk(func, data):
    args = list(GOOD_ARGS[func])
    position = data.draw(st.integers(0, PUBLIC[func] - 1))
    args[position] = data.draw(JUNK)
    try:
        result = getattr(precopy, func)(*args)
    except ValueError as err:
        assert len(str(err)) > 15 and " " in str(err)
        return
    # Some junk is still valid input somewhere (0 dirty rate, a per-iteration rate list):
    # then the output is finite numbers.
    values = result if isinstance(result, list) else [result]
    assert all(isinstance(v, (bool, int, float)) and math.isfinite(v) for v in values)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(PUBLIC)), st.data())
def test_property_extreme_finite_inputs_never_overflow(func, data):
    floats = st.floats(min_value=1e-320, max_value=1e308, allow_nan=False, allow_infinity=False)
    args = list(GOOD_ARGS[func])
    # Every argument but the iteration count N (the last one of the 4- and 5-argument functions).
    for i in range(PUBLIC[func] - (1 if PUBLIC[func] >= 4 else 0)):
        args[i] = data.draw(floats)
    try:
        result = getattr(precopy, func)(*args)
    except ValueError as err:
        assert "out of floating-point range" in str(err) or "must be" in str(err)
        return
    values = result if isinstance(result, list) else [result]
    assert all(math.isfinite(v) for v in values)
