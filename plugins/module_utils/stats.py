# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small statistics helpers shared by the analysis code (stdlib only).

Every function raises ValueError with a message naming the problem on malformed input (not a
sequence, empty, a non-number, NaN or infinity); bool is not accepted as a number.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def brief(value, limit=60):
    """repr(value) cut to about limit characters, for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _values(name, values, what="numbers"):
    """values as a list of finite real numbers (ints stay ints), or ValueError."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable) or hasattr(values, "keys"):
        raise ValueError("%s needs a list of %s, got %s" % (name, what, brief(values)))
    out = list(values)
    for i, v in enumerate(out):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError("%s needs %s, item %d is %s" % (name, what, i, brief(v)))
        try:
            finite = math.isfinite(v)  # also converts int to float, which may overflow
        except OverflowError:
            finite = False
        if not finite and (isinstance(v, float) or what != "integers"):
            raise ValueError("%s needs finite %s, item %d is %s" % (name, what, i, brief(v)))
    return out


def _fsum(name, terms):
    try:
        total = math.fsum(terms)
    except (OverflowError, ValueError):  # intermediate overflow, inf - inf
        total = math.inf
    if not math.isfinite(total):
        raise ValueError("%s: values out of floating-point range" % name)
    return total


def mean(values):
    """Arithmetic mean (math.fsum, so exactly rounded)."""
    values = _values("mean", values)
    if not values:
        raise ValueError("mean of an empty sequence")
    return _fsum("mean", values) / len(values)


def pstdev(values):
    """Population standard deviation, the thesis's Eq. (13): sqrt(sum (x - mean)^2 / n)."""
    values = _values("pstdev", values)
    if not values:
        raise ValueError("pstdev of an empty sequence")
    m = mean(values)
    return math.sqrt(_fsum("pstdev", ((x - m) * (x - m) for x in values)) / len(values))


def pvariance_scaled(values):
    """Exact Eq. (13) variance of integers as (numerator, denominator) = (n*sum(x^2) - (sum x)^2, n^2).

    sigma = sqrt(numerator / denominator). With integer inputs both are exact integers, so a
    band test such as low < sigma < high becomes (low*n)^2 < numerator < (high*n)^2, which a C
    port computes bit-for-bit in 64-bit integers (no rounding that could move a decision).
    """
    values = _values("pvariance_scaled", values, "integers")
    if not values:
        raise ValueError("pvariance_scaled of an empty sequence")
    for i, v in enumerate(values):
        if not isinstance(v, int):
            raise ValueError("pvariance_scaled needs integers, item %d is %s" % (i, brief(v)))
    n = len(values)
    s = sum(values)
    return n * sum(v * v for v in values) - s * s, n * n


def linear_fit(xs, ys):
    """Least-squares line y = a + b*x (a spreadsheet's linear trendline); returns (a, b)."""
    xs = [float(x) for x in _values("linear_fit x", xs)]
    ys = [float(y) for y in _values("linear_fit y", ys)]
    if len(xs) != len(ys):
        raise ValueError("linear_fit needs as many x as y values (%d != %d)" % (len(xs), len(ys)))
    if len(xs) < 2:
        raise ValueError("linear_fit needs at least 2 points, got %d" % len(xs))
    mx, my = mean(xs), mean(ys)
    sxx = _fsum("linear_fit", ((x - mx) * (x - mx) for x in xs))
    if sxx == 0:
        raise ValueError("linear_fit needs at least two different x values (their spread is zero"
                         " or below floating-point resolution)")
    b = _fsum("linear_fit", ((x - mx) * (y - my) for x, y in zip(xs, ys))) / sxx
    a = my - b * mx
    if not (math.isfinite(a) and math.isfinite(b)):
        raise ValueError("linear_fit: values out of floating-point range")
    return a, b


def median(values):
    """The middle value (the mean of the two middle ones for an even count)."""
    vals = _values("median", values)
    if not vals:
        raise ValueError("median of an empty sequence")
    return _median(vals)


def median_present(values):
    """median() of the values that are not None (runs that did not measure it); None when none is."""
    vals = [v for v in values if v is not None]
    return median(vals) if vals else None


def _median(vals):
    # Unchecked: median() checks once, the permutation loop below calls it ~10^5 times.
    vals = sorted(vals)
    mid = len(vals) // 2
    return vals[mid] if len(vals) % 2 else (vals[mid - 1] + vals[mid]) / 2.0


def median_difference_test(a, b, exact_limit=200000, draws=20000, seed=2012):
    """median(b) - median(a) and its two-sided permutation p-value: the share of the splits of
    the pooled runs into groups of len(a) and len(b) whose median difference is at least as large
    in size. Exact when there are at most ``exact_limit`` splits, else ``draws`` random splits
    (a fixed seed: the same runs give the same p). Returns (difference, p, exact).

    For comparing two small samples of a noisy measurement (a few migrations per policy) without
    assuming a distribution: p near 1 says the runs cannot tell the two groups apart.
    """
    a = [float(v) for v in _values("median_difference_test a", a)]
    b = [float(v) for v in _values("median_difference_test b", b)]
    if not a or not b:
        raise ValueError("median_difference_test needs at least one value in each group, got %d and %d" % (len(a), len(b)))
    observed = _median(b) - _median(a)
    pooled = a + b
    n, k = len(pooled), len(a)
    # A split's difference equal to the observed one up to float noise counts as "as large".
    tol = 1e-9 * max(1.0, max(abs(v) for v in pooled))
    exact = math.comb(n, k) <= exact_limit
    hits = total = 0
    if exact:
        import itertools  # pylint: disable=import-outside-toplevel
        for idx in itertools.combinations(range(n), k):
            chosen = set(idx)
            ga = [pooled[i] for i in idx]
            gb = [pooled[i] for i in range(n) if i not in chosen]
            total += 1
            hits += abs(_median(gb) - _median(ga)) >= abs(observed) - tol
    else:
        import random  # pylint: disable=import-outside-toplevel
        rng = random.Random(seed)
        for dummy in range(draws):
            perm = pooled[:]
            rng.shuffle(perm)
            total += 1
            hits += abs(_median(perm[k:]) - _median(perm[:k])) >= abs(observed) - tol
    return observed, hits / float(total), exact
