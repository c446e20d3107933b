# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""stats.py: Eq. (13) in float and exact integer form, trend lines, and their input checks."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.xenlab.migration.plugins.module_utils import stats


def test_pstdev_population_form():
    # Eq. (13) divides by n, not n-1: mean 5, squared deviations 9+1+1+1+0+0+4+16 = 32, 32/8 = 4.
    assert stats.pstdev([2, 4, 4, 4, 5, 5, 7, 9]) == 2.0
    assert math.isclose(stats.pstdev([1, 2]), 0.5)
    assert stats.pstdev([7]) == 0.0


def test_mean_is_exactly_rounded():
    # fsum: 0.1 * 10 sums to exactly 1.0 where a naive loop gives 0.9999999999999999.
    assert stats.mean([0.1] * 10) == 0.1
    assert stats.mean(x for x in (1, 2, 3, 4)) == 2.5  # any iterable


def test_pvariance_scaled_is_exact():
    # [800, 1200]: n*S2 - S1^2 = 2 * 2 080 000 - 4 000 000 = 160 000 over n^2 = 4 -> sigma = 200.
    assert stats.pvariance_scaled([800, 1200]) == (160000, 4)
    # Values near 2**53 where floats lose the unit: sigma of [2**53, 2**53 + 1] is exactly 1/2.
    assert stats.pvariance_scaled([2 ** 53, 2 ** 53 + 1]) == (1, 4)


def test_linear_fit_is_a_spreadsheet_trendline():
    assert stats.linear_fit([1, 2, 3], [3, 5, 7]) == pytest.approx((1.0, 2.0))
    # Table 3 response times over rows 1..8: slope -316.67/42 = -7.5398, 60.79 at row 1 (Table 4).
    a, b = stats.linear_fit(range(1, 9), [61.62, 48.62, 50.73, 38.55, 33.24, 17.78, 13.75, 10.93])
    assert b == pytest.approx(-7.5398, abs=1e-4)
    assert a + b == pytest.approx(60.79, abs=0.005)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: stats.mean([]), "mean of an empty sequence"),
        (lambda: stats.pstdev([]), "pstdev of an empty sequence"),
        (lambda: stats.mean("123"), "mean needs a list of numbers, got '123'"),
        (lambda: stats.mean({"a": 1}), "mean needs a list of numbers"),
        (lambda: stats.mean([1, None]), "mean needs numbers, item 1 is None"),
        (lambda: stats.mean([1, True]), "mean needs numbers, item 1 is True"),
        (lambda: stats.pstdev([1.0, float("nan")]), "pstdev needs finite numbers, item 1 is nan"),
        (lambda: stats.mean([10 ** 400]), "mean needs finite numbers, item 0 is 1000000"),
        (lambda: stats.mean([1e308, 1e308]), "mean: values out of floating-point range"),
        (lambda: stats.pstdev([1e308, -1e308]), "pstdev: values out of floating-point range"),
        (lambda: stats.pvariance_scaled([1.5]), "pvariance_scaled needs integers, item 0 is 1.5"),
        (lambda: stats.pvariance_scaled([]), "pvariance_scaled of an empty sequence"),
        (lambda: stats.linear_fit([2, 2], [1, 3]), "at least two different x values"),
        (lambda: stats.linear_fit([1], [1]), "at least 2 points, got 1"),
        (lambda: stats.linear_fit([1, 2], [1]), "as many x as y values (2 != 1)"),
        (lambda: stats.linear_fit([1, 2], ["1", 2]), "linear_fit y needs numbers, item 0 is '1'"),
        (lambda: stats.linear_fit([1e308, -1e308], [1e308, -1e308]), "linear_fit: values out of floating-point range"),
    ],
)
def test_bad_input_is_a_clear_value_error(call, message):
    with pytest.raises(ValueError) as err:
        call()
    assert message in str(err.value)


SCALAR_JUNK = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=3), st.just(float("nan")), st.just(10 ** 400))
JUNK_ITEM = st.one_of(st.none(), st.booleans(), st.text(max_size=3), st.just(float("nan")), st.just(float("inf")),
                      st.just(10 ** 400), st.just([1]))
JUNK = st.one_of(SCALAR_JUNK, st.just([]), st.lists(JUNK_ITEM, min_size=1, max_size=3),
                 st.lists(st.one_of(st.integers(-5, 5), JUNK_ITEM), min_size=1, max_size=4).filter(
                     lambda v: any(not isinstance(x, int) or isinstance(x, bool) for x in v)))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["mean", "pstdev", "pvariance_scaled", "linear_fit_x", "linear_fit_y"]), JUNK)
def test_property_junk_gives_value_error(func, value):
    if func == "pvariance_scaled" and isinstance(value, list) and value and \
            all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return  # exact integers of any size are valid there
    with pytest.raises(ValueError) as err:
        if func == "linear_fit_x":
            stats.linear_fit(value, [1, 2, 3])
        elif func == "linear_fit_y":
            stats.linear_fit([1, 2, 3], value)
        else:
            getattr(stats, func)(value)
    assert len(str(err.value)) > 15 and len(str(err.value)) < 200


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10 ** 6), min_size=1, max_size=30))
def test_property_exact_variance_agrees_with_float_sigma(values):
    num, den = stats.pvariance_scaled(values)
    assert num >= 0 and den == len(values) ** 2
    assert math.sqrt(num / den) == pytest.approx(stats.pstdev(values), rel=1e-9, abs=1e-6)


@settings(max_examples=200, deadline=None)
@given(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3), st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=10, unique=True))
def test_property_linear_fit_recovers_exact_lines(a, b, xs):
    if max(xs) - min(xs) < 1e-3:
        return
    fa, fb = stats.linear_fit(xs, [a + b * x for x in xs])
    assert fb == pytest.approx(b, abs=1e-6) and fa == pytest.approx(a, abs=1e-6)


def test_median_difference_test_exact_on_small_samples():
    # The 2026-12-07 converging runs (probe downtime, ms): xen, then adaptive.
    xen = [7979, 8169, 8189, 8984, 10550, 12842]
    adaptive = [7459, 8750, 9111, 10193, 10504, 10696]
    diff, p, exact = stats.median_difference_test(xen, adaptive)
    assert exact and diff == pytest.approx(1065.5) and p == pytest.approx(436 / 924.0)
    # Fully separated groups: of the 70 splits, {1,2,3,4} and {1,2,3,11} (medians 2.5 and 12.5 both
    # ways) and their mirrors are as extreme.
    diff, p, exact = stats.median_difference_test([1, 2, 3, 4], [11, 12, 13, 14])
    assert diff == 10 and p == pytest.approx(4 / 70.0) and exact


def test_median_difference_test_sampled_when_the_splits_are_many():
    a, b = list(range(30)), [v + 100 for v in range(30)]
    diff, p, exact = stats.median_difference_test(a, b, exact_limit=10, draws=2000)
    assert not exact and diff == 100 and p < 0.01
    # the same runs, the same p
    assert stats.median_difference_test(a, b, exact_limit=10, draws=2000)[1] == p
    diff, p, exact = stats.median_difference_test(a, [v + 0.5 for v in a], exact_limit=10, draws=2000)
    assert p > 0.5


@pytest.mark.parametrize("a, b, msg", [([], [1], "at least one value"), ([1], "x", "needs a list"),
                                       ([1, float("nan")], [2], "finite")])
def test_median_difference_test_rejects_bad_input(a, b, msg):
    with pytest.raises(ValueError, match=msg):
        stats.median_difference_test(a, b)


def test_median():
    assert stats.median([3, 1, 2]) == 2 and stats.median([4, 1, 3, 2]) == 2.5
    with pytest.raises(ValueError, match="empty"):
        stats.median([])
    with pytest.raises(ValueError, match="item 1"):
        stats.median([1, None])
    assert stats.median_present([None, 5, None, 1]) == 3 and stats.median_present([None]) is None
