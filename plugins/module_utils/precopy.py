# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The thesis's pre-copy model, Eqs. (1)-(12), and its Table 4 cap choice (stdlib only).

Source: P. U. Nkubito, "Aggregated Service Consolidation by Multi-Server Virtualization",
MSc thesis, University of Cape Town, 2012, section 3.1 (after Jin et al.).

Symbols: M = guest memory, B = migration bandwidth, p_i = dirty rate during iteration i,
h = stop threshold (memory left to copy), N = maximum number of iterations *including* the final
stop-and-copy round (Xen 3.4: 29 live rounds + 1, so N = 30), beta = fixed overheads.

Unit convention (every public name carries its unit):

* ``memory_mb``: megabytes, **decimal**: 1 MB = 1000 KB = 10**6 bytes (the thesis's worked
  example only gives p = 744.9 Mbps with 1 MB = 1000 KB, see ``max_dirty_rate``).
* ``threshold_kb``: kilobytes, 1 KB = 1000 bytes.
* ``bandwidth_mbps``, ``dirty_rate_mbps``: megabits per second, 1 Mbps = 10**6 bit/s, the unit of
  Xen's own "sent %dMb/s, dirtied %dMb/s" log line.
* Times are seconds (``*_s``).

Internally every amount of memory is converted to megabits, so M / B is in seconds. A dirty rate
p means "p megabits of memory are dirtied per second of the iteration", hence p_i * t_i is the
memory to copy in round i + 1 (Eq. (1)). The model never dirties more than the whole memory in
one round: Eq. (6) (the worst case copies all of M in the last round) caps every round at M.

Optional writable working set W (``wws_mb``, ours, after Clark et al., NSDI 2005): a guest that
rewrites the same W megabytes dirties at most W in any round however long the round, so round
i + 1 copies min(p_i t_i, W, M). The thesis's constant-rate Eqs. (1)-(3) are the case W = M. A long
first pass (t_1 = M/B) saturates W, which the constant-rate form does not see: it predicts a
second round of p t_1 where the guest's dirty set holds only W (docs/precopy.md, "Working set").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from .stats import brief, linear_fit

BITS_PER_BYTE = 8
# The thesis counts 1 MB = 1000 KB (section 3.1 worked example).
KB_PER_MB = 1000

TREND_OVER = ("index", "cap")
# Upper bound for N (and any iteration count): far above Xen's 5 or 29, low enough that the
# per-iteration lists stay small.
MAX_ITERATIONS = 10000


def _number(name, value, minimum=None, strict=False):
    """Return value as float after checking it is a finite real number in range.

    bool is rejected explicitly: True/False are ints in Python but never a valid amount here.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("%s must be a number, got %s" % (name, brief(value)))
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise ValueError("%s must be a finite number, got %s" % (name, brief(value)))
    if minimum is not None:
        if strict and not number > minimum:
            raise ValueError("%s must be greater than %s, got %s" % (name, minimum, brief(value)))
        if not strict and number < minimum:
            raise ValueError("%s must be at least %s, got %s" % (name, minimum, brief(value)))
    return number


def _checked(name, value):
    """A computed float that must be finite: huge or tiny inputs can push it out of range."""
    if not math.isfinite(value):
        raise ValueError("%s is out of floating-point range for these inputs" % name)
    return value


def _sum(name, values):
    try:
        total = math.fsum(values)
    except OverflowError:  # "intermediate overflow in fsum"
        total = math.inf
    return _checked(name, total)


def _positive(name, value):
    return _number(name, value, 0, strict=True)


def _non_negative(name, value):
    return _number(name, value, 0)


def _integer(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("%s must be an integer, got %s" % (name, brief(value)))
    if value < minimum:
        raise ValueError("%s must be at least %d, got %s" % (name, minimum, brief(value)))
    if value > MAX_ITERATIONS:
        raise ValueError("%s must be at most %d, got %s" % (name, MAX_ITERATIONS, brief(value)))
    return int(value)


def _rates(dirty_rate_mbps, count):
    """p_1..p_count: one constant rate (the thesis's assumption for Eqs. (7)-(9)) or a sequence."""
    if isinstance(dirty_rate_mbps, (str, bytes)) or not isinstance(dirty_rate_mbps, Sequence):
        return [_non_negative("dirty_rate_mbps", dirty_rate_mbps)] * count
    if len(dirty_rate_mbps) < count:
        raise ValueError("dirty_rate_mbps needs at least %d per-iteration rates (p_1..p_%d), got %d"
                         % (count, count, len(dirty_rate_mbps)))
    return [_non_negative("dirty_rate_mbps[%d]" % i, p) for i, p in enumerate(dirty_rate_mbps[:count])]


def memory_mbit(memory_mb):
    """Megabytes (1 MB = 10**6 bytes) to megabits."""
    return _checked("memory_mb in megabits", _positive("memory_mb", memory_mb) * BITS_PER_BYTE)


def threshold_mbit(threshold_kb):
    """Kilobytes (1 KB = 1000 bytes) to megabits: 200 KB = 1.6 Mb."""
    return _checked("threshold_kb in megabits", _positive("threshold_kb", threshold_kb) * BITS_PER_BYTE / KB_PER_MB)


def _round_cap(memory_mb, wws_mb):
    """The most one round can copy, in megabits: M, or min(W, M) with a writable working set W."""
    m = memory_mbit(memory_mb)
    if wws_mb is None:
        return m
    return min(m, _checked("wws_mb in megabits", _positive("wws_mb", wws_mb) * BITS_PER_BYTE))


def iteration_times(memory_mb, bandwidth_mbps, dirty_rate_mbps, iterations, wws_mb=None):
    """Eq. (1): durations t_1..t_iterations in seconds.

    t_1 = M / B copies all memory; t_i = p_{i-1} t_{i-1} / B = M prod_{k<i} p_k / B^i, with the
    memory copied in one round capped at M (Eq. (6)), or at the writable working set ``wws_mb``
    when given. ``dirty_rate_mbps`` is one rate or the sequence p_1..p_{iterations-1}.
    """
    m = memory_mbit(memory_mb)
    cap = _round_cap(memory_mb, wws_mb)
    b = _positive("bandwidth_mbps", bandwidth_mbps)
    n = _integer("iterations", iterations, 1)
    rates = _rates(dirty_rate_mbps, n - 1)
    times = [_checked("t_1 = M/B", m / b)]
    for p in rates:
        times.append(min(p * times[-1], cap) / b)
    return times


def iteration_count(memory_mb, bandwidth_mbps, dirty_rate_mbps, threshold_kb, max_iterations, wws_mb=None):
    """Eq. (2): n = min({i + 1 | p_i t_i <= h}, N).

    Round i + 1 is the stop-and-copy round that copies p_i t_i <= h; if the threshold is never met
    the N-th round is the stop-and-copy (Xen 3.4: 29 live rounds, N = 30). With ``wws_mb`` the
    round copies min(p_i t_i, W), as in ``iteration_times``.
    """
    n_max = _integer("max_iterations", max_iterations, 2)
    h = threshold_mbit(threshold_kb)
    rates = _rates(dirty_rate_mbps, n_max - 1)
    times = iteration_times(memory_mb, bandwidth_mbps, rates, n_max, wws_mb)
    cap = _round_cap(memory_mb, wws_mb)
    for i in range(1, n_max):
        if min(rates[i - 1] * times[i - 1], cap) <= h:
            return i + 1
    return n_max


def migration_time(memory_mb, bandwidth_mbps, dirty_rate_mbps, threshold_kb, max_iterations, wws_mb=None):
    """Eq. (3): T = M sum_{i=1..n} prod_{k<i} p_k / B^i (seconds), n from Eq. (2); rounds capped at W with ``wws_mb``."""
    n = iteration_count(memory_mb, bandwidth_mbps, dirty_rate_mbps, threshold_kb, max_iterations, wws_mb)
    return _sum("migration time T", iteration_times(memory_mb, bandwidth_mbps, dirty_rate_mbps, n, wws_mb))


def downtime(memory_mb, bandwidth_mbps, dirty_rate_mbps, threshold_kb, max_iterations, overhead_s=0.0, wws_mb=None):
    """Duration of the last (stop-and-copy) round t_n plus beta, seconds.

    It is <= h/B + beta (Eqs. (4), (12)) when the threshold stops the loop, M p^(N-1) / B^N + beta
    (Eq. (9)) when N does with a constant p, and never more than M/B + beta (Eq. (6)), or W/B +
    beta with a writable working set ``wws_mb``.
    """
    beta = _non_negative("overhead_s", overhead_s)
    n = iteration_count(memory_mb, bandwidth_mbps, dirty_rate_mbps, threshold_kb, max_iterations, wws_mb)
    return _checked("downtime", iteration_times(memory_mb, bandwidth_mbps, dirty_rate_mbps, n, wws_mb)[-1] + beta)


def downtime_bound(threshold_kb, bandwidth_mbps, overhead_s=0.0):
    """Eq. (4) t_d <= h/B, or Eq. (12) t_d <= h/B + beta with overhead_s = beta (seconds)."""
    bound = threshold_mbit(threshold_kb) / _positive("bandwidth_mbps", bandwidth_mbps) + _non_negative("overhead_s", overhead_s)
    return _checked("downtime bound h/B + beta", bound)


def worst_case_downtime(memory_mb, bandwidth_mbps, overhead_s=0.0):
    """Eq. (6): t_d = M/B (all memory copied in the last round), plus beta."""
    worst = memory_mbit(memory_mb) / _positive("bandwidth_mbps", bandwidth_mbps) + _non_negative("overhead_s", overhead_s)
    return _checked("worst-case downtime M/B + beta", worst)


def exponential_downtime(memory_mb, bandwidth_mbps, dirty_rate_mbps, max_iterations):
    """Eq. (9): t_d = M p^(N-1) / B^N for a constant dirty rate above Eq. (7)'s limit (seconds).

    Uncapped, as printed; ``downtime`` applies the Eq. (6) cap.
    """
    m = memory_mbit(memory_mb)
    b = _positive("bandwidth_mbps", bandwidth_mbps)
    p = _non_negative("dirty_rate_mbps", dirty_rate_mbps)
    n = _integer("max_iterations", max_iterations, 2)
    try:
        t_d = m / b * (p / b) ** (n - 1)
    except OverflowError:
        t_d = math.inf
    return _checked("downtime M p^(N-1) / B^N", t_d)


def max_dirty_rate(memory_mb, bandwidth_mbps, threshold_kb, max_iterations):
    """Eq. (7): the largest constant dirty rate p = (h/M)^(1/(N-1)) B that still converges (Mbps).

    Worked example (section 3.1): M = 1024 MB, B = 1000 Mbps, h = 200 KB, N = 30 gives 744.9.
    Only h/M matters, and it must be taken with 1 MB = 1000 KB:
    (200 / 1 024 000)^(1/29) * 1000 = exp(-8.5409 / 29) * 1000 = 744.9 Mbps, whereas binary
    prefixes (200 / 1 048 576) would give 744.3.
    """
    m = memory_mbit(memory_mb)
    h = threshold_mbit(threshold_kb)
    b = _positive("bandwidth_mbps", bandwidth_mbps)
    n = _integer("max_iterations", max_iterations, 2)
    return _checked("max dirty rate (h/M)^(1/(N-1)) B", (h / m) ** (1.0 / (n - 1)) * b)


def dirty_ratio(dirty_rate_mbps, bandwidth_mbps):
    """p / B. Eq. (5): at most 1 means each round is no longer than the one before (Eq. (1))."""
    return _checked("p/B", _non_negative("dirty_rate_mbps", dirty_rate_mbps) / _positive("bandwidth_mbps", bandwidth_mbps))


def above_convergence_limit(memory_mb, bandwidth_mbps, dirty_rate_mbps, threshold_kb, max_iterations):
    """Eq. (8): p > (h/M)^(1/(N-1)) B, the constant rates whose downtime grows as Eq. (9)."""
    p = _non_negative("dirty_rate_mbps", dirty_rate_mbps)
    return p > max_dirty_rate(memory_mb, bandwidth_mbps, threshold_kb, max_iterations)


PHASES = ("pre_migration_s", "reservation_s", "iterative_s", "stop_and_copy_s", "commitment_s", "activation_s")


def phase_times(**phases):
    """Eqs. (10) and (11): total migration time and downtime from the durations of the phases.

    Keyword arguments (seconds, default 0): PHASES. Returns {"migration_time_s": the sum of all
    six (Eq. (10)), "downtime_s": stop_and_copy_s + commitment_s + activation_s (Eq. (11))}.
    """
    unknown = sorted(str(k) for k in phases if k not in PHASES)
    if unknown:
        raise ValueError("unknown phase(s): %s (expected %s)" % (", ".join(unknown), ", ".join(PHASES)))
    t = {k: _non_negative(k, phases.get(k, 0.0)) for k in PHASES}
    return {
        "migration_time_s": _sum("migration time", t.values()),
        "downtime_s": _checked("downtime", t["stop_and_copy_s"] + t["commitment_s"] + t["activation_s"]),
    }


PREDICT_KEYS = ("memory_mb", "bandwidth_mbps", "dirty_rate_mbps", "threshold_kb", "max_iterations")
PREDICT_OPTIONAL = ("overhead_s", "downtime_overhead_s", "wws_mb")


def predict(params):
    """All model outputs for one mapping of inputs (the ``precopy_predict`` filter).

    Required keys: PREDICT_KEYS; optional ``overhead_s`` (beta, default 0), ``downtime_overhead_s``
    (the beta added to the downtime, default overhead_s: Eq. (11) counts fewer phases than
    Eq. (10)) and ``wws_mb`` (a writable working set that caps every round, default none). Returns
    iterations (Eq. (2)), migration_time_s (Eq. (3), plus beta), downtime_s (last round plus beta,
    see ``downtime``), downtime_bound_s (Eq. (12)) and max_dirty_rate_mbps (Eq. (7)).
    """
    if not isinstance(params, Mapping):
        raise ValueError("expected a mapping with %s, got %r" % (", ".join(PREDICT_KEYS), type(params).__name__))
    missing = [k for k in PREDICT_KEYS if k not in params]
    if missing:
        raise ValueError("missing key(s): %s" % ", ".join(missing))
    unknown = sorted(str(k) for k in params if k not in PREDICT_KEYS and k not in PREDICT_OPTIONAL)
    if unknown:
        raise ValueError("unknown key(s): %s (expected %s and optionally %s)"
                         % (", ".join(unknown), ", ".join(PREDICT_KEYS), ", ".join(PREDICT_OPTIONAL)))
    args = [params[k] for k in PREDICT_KEYS]
    beta = _non_negative("overhead_s", params.get("overhead_s", 0.0))
    beta_down = _non_negative("downtime_overhead_s", params.get("downtime_overhead_s", beta))
    wws = params.get("wws_mb")
    return {
        "iterations": iteration_count(*args, wws_mb=wws),
        "migration_time_s": _checked("migration time", migration_time(*args, wws_mb=wws) + beta),
        "downtime_s": downtime(*args, overhead_s=beta_down, wws_mb=wws),
        "downtime_bound_s": downtime_bound(params["threshold_kb"], params["bandwidth_mbps"], beta_down),
        "max_dirty_rate_mbps": max_dirty_rate(params["memory_mb"], params["bandwidth_mbps"],
                                              params["threshold_kb"], params["max_iterations"]),
    }


def optimal_cap(rows, downtime_weight=0.05, trend_over="index"):
    """The thesis's Table 4 choice of the credit-scheduler cap (section 5.3).

    ``rows``: mappings with ``cap``, ``downtime_ms`` and ``response_ms`` (extra keys ignored), in
    the order of the table. A least-squares line is fitted to the response times and one to the
    downtimes times ``downtime_weight``; for each row the larger of the two lines is its score and
    the row with the smallest score wins (the first one on a tie). ``trend_over='index'`` fits
    over the row positions 1..n, as a spreadsheet's linear trendline does (this reproduces Table 4
    and its cap 35); ``'cap'`` fits over the cap values themselves.

    Returns ``{"cap", "index" (0-based), "score_ms", "rows": [{cap, response_trend_ms,
    weighted_downtime_trend_ms, score_ms}, ...]}``.
    """
    weight = _non_negative("downtime_weight", downtime_weight)
    if trend_over not in TREND_OVER:
        raise ValueError("trend_over must be one of %s, got %s" % (", ".join(TREND_OVER), brief(trend_over)))
    if isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Sequence):
        raise ValueError("expected a list of mappings with cap, downtime_ms and response_ms, got %r" % type(rows).__name__)
    if len(rows) < 2:
        raise ValueError("at least 2 rows are needed to fit a trend line, got %d" % len(rows))
    caps, downtimes, responses = [], [], []
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ValueError("row %d must be a mapping, got %s" % (i, brief(row)))
        for key in ("cap", "downtime_ms", "response_ms"):
            if key not in row:
                raise ValueError("row %d has no %s" % (i, key))
        caps.append(_positive("row %d cap" % i, row["cap"]))
        downtimes.append(_checked("row %d downtime_ms * downtime_weight" % i,
                                  _non_negative("row %d downtime_ms" % i, row["downtime_ms"]) * weight))
        responses.append(_non_negative("row %d response_ms" % i, row["response_ms"]))
    xs = [float(i + 1) for i in range(len(rows))] if trend_over == "index" else caps
    if len(set(xs)) < 2:
        raise ValueError("a trend over cap needs at least two different caps")
    r_a, r_b = linear_fit(xs, responses)
    d_a, d_b = linear_fit(xs, downtimes)
    out, best = [], None
    for i, x in enumerate(xs):
        r, d = r_a + r_b * x, d_a + d_b * x
        score = _checked("row %d trend value" % i, max(r, d))
        out.append({"cap": rows[i]["cap"], "response_trend_ms": r, "weighted_downtime_trend_ms": d, "score_ms": score})
        if best is None or score < out[best]["score_ms"]:
            best = i
    return {"cap": rows[best]["cap"], "index": best, "score_ms": out[best]["score_ms"], "rows": out}
