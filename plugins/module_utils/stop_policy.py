# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pre-copy stop policies as Xen 4.17's ``precopy_policy`` callback sees them, a replay of
recorded traces, and a simulator (stdlib only). docs/precopy.md has the same rules with a C sketch.

The specification below is meant to be re-implemented in C (a patched libxenguest); an offline
replay of a recorded trace with these classes must predict the real stopping call exactly.

The C loop (xen 4.17 tools/libs/guest/xg_sr_save.c, ``send_memory_live``)
----------------------------------------------------------------------------
P = guest pages (p2m_size). ``struct precopy_stats {unsigned int iteration; unsigned long
total_written; long dirty_count;}`` starts as {0, 0, P}; x = 0::

    for (;;) {
        d = policy(stats);                       /* "before" call: dirty_count >= 0     */
        x++;
        if (dirty_count > 0 && d != ABORT)
            send the dirty_count pages;          /* pass x; sent even if d == STOP      */
        if (d != CONTINUE) break;
        stats = {x, total_written + dirty_count, -1};
        d = policy(stats);                       /* "after" call: dirty_count == -1     */
        if (d != CONTINUE) break;
        dirty_count = pages dirtied during pass x (log-dirty CLEAN);
    }
    suspend; send the pages dirtied since the last CLEAN (stop-and-copy)

Naming used throughout: pass k is the k-th live send (pass 1 = all P pages); D_k = pages dirtied
while pass k ran. The before call of pass k+1 carries {iteration = k, dirty_count = D_k}
(k = 0: dirty_count = P); the after call of pass k carries {iteration = k, total_written =
P + D_1 + ... + D_(k-1), dirty_count = -1}. A stop at the before call with iteration k still
sends pass k+1 (D_k pages), so the migration has k+1 live passes and the stop-and-copy sends
D_(k+1); a stop at the after call of pass k gives k passes and a stop-and-copy of D_k.
Decisions: XGS_POLICY_CONTINUE_PRECOPY = 0, XGS_POLICY_STOP_AND_COPY = 1, XGS_POLICY_ABORT = -1.

Policy state (identical in Python and C)
----------------------------------------
precopy_stats does not carry P, so a policy learns it: the iteration-0 call (the first before
call, dirty_count = p2m_size) starts a migration: P := dirty_count, every sample is dropped.
(In Python ``guest_pages`` may also be given up front; the iteration-0 call must then agree.)

Rules (it = iteration, tw = total_written, dc = dirty_count; all integers; C: int64_t
arithmetic, tw compared as uint64_t). Each policy evaluates its rules in the order written
and returns at the first one that says STOP; otherwise CONTINUE.
---------------------------------------------------------------------------------------------
``xen417`` (max_iterations = 5, target_dirty_count = 50), simple_precopy_policy verbatim:
    STOP iff (dc >= 0 && dc < target_dirty_count) || it >= max_iterations.

``xen34`` (Xen 3.4's xc_domain_save: max_iterations = 29, target_dirty_count = 50,
max_factor = 3):
    STOP iff (dc >= 0 && dc < target_dirty_count) || it >= max_iterations
             || tw > max_factor * P.
    "fewer than 50 pages" is tested on the batch about to be sent, which Xen 3.4 tested right
    after sending it: both send those pages live, then stop and copy.

``sd`` (the thesis's standard-deviation tracking): the xen34 rules first; if none stops:
    1. dc < 0 (an after call): CONTINUE.
    2. Sample: if it >= 2 and it > the iteration of the previous sample (0 at the start), add dc:
       n += 1, S1 += dc, S2 += dc*dc. Samples are D_2, D_3, ... (iteration 1's pass copies all
       RAM and D_1, dirtied during it, is left out, section 3.4).
    3. If it >= track_from and n >= 1: V = n*S2 - S1*S1 (= n^2 sigma^2, Eq. (13), exact);
       STOP iff (sd_low*n)^2 < V && V < (sd_high*n)^2, i.e. sd_low < sigma < sd_high, strict as
       in the thesis's listing (Fig. 4-14: 200 < SD < 350, tracking from iteration 10).
    Integer-only, so C and Python agree at the band edges. Samples are only taken while it <
    max_iterations, so n <= max_iterations - 2 and every product stays below 2**63 when
    (max_iterations - 2) * max(P, sd_high) <= 3037000499 (checked; about 112 million pages,
    429 GiB, for max_iterations = 29).

``adaptive`` (ours, no hand-set band): the xen34 rules first (safety net); if none stops:
    1. dc < 0: CONTINUE.
    2. Sample: if it >= 1 and it > the iteration of the previous sample, append dc to a ring
       of the last window + 1 samples (D_1, D_2, ...).
    3. Once the ring is full (first at it = window + 1): old = the oldest sample
       (D_(it-window)), cur = dc (D_it), gain = old - cur (signed);
       STOP iff shrink_div*noise_div*gain < noise_div*old + shrink_div*P
       i.e. gain < old/shrink_div + P/noise_div: over the last `window` passes the dirty set
       shrank by less than 1/shrink_div of itself plus a noise allowance of P/noise_div pages
       (defaults window = 3, shrink_div = 16, noise_div = 1024: < 6.25 % plus 256 pages for a
       1 GiB guest, the size of the sigma the thesis saw on a steady dirty set). A set that no
       longer shrinks (or grows) stops; one that keeps shrinking goes on, up to the xen34 limits.
    4. early = 1 (default) and window >= 2: at the first call with two samples (it = 2), the
       same test on D_1 -> D_2 alone (old = D_1), reason no_progress: a set that the first live
       pass did not shrink by 1/shrink_div (the dirty rate is at or above the link's) will not
       shrink later, and waiting for the window only costs passes of the same size.
    Why window = 3: the window check is first made at the before call of pass 5, so once the
    first live pass has shrunk the set ``adaptive`` never stops earlier than xen417 (5 passes)
    except through the xen34 rules, and on a shrinking dirty set its downtime is never above
    xen417's. Why early: on a set the first live pass did not shrink it stops at pass 2, where
    xen417 sends three more passes of the same size and xen34 up to 27 (or 3x RAM), for the same
    final batch. Logs written before the key existed (no early= on their start line) ran
    without it; precopy_log reads them as early = 0.
    int64 bounds (checked): shrink_div*noise_div*P and (shrink_div + noise_div)*P < 2**63.

Simulator models (pages dirtied during a pass of duration t seconds, rounded half up to an
integer, never more than P): constant rate r: r*t; hot set: min(wss, hot_rate*t) +
background_rate*t (a working set of wss pages rewritten at hot_rate pages/s saturates at wss;
other memory is dirtied at background_rate); recorded trace: the counts Xen logged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from .stats import brief, pstdev, pvariance_scaled

XGS_POLICY_ABORT = -1
XGS_POLICY_CONTINUE_PRECOPY = 0
XGS_POLICY_STOP_AND_COPY = 1
DECISIONS = (XGS_POLICY_ABORT, XGS_POLICY_CONTINUE_PRECOPY, XGS_POLICY_STOP_AND_COPY)

DEFAULT_PAGE_SIZE = 4096
MAX_PAGE_SIZE = 1 << 30
# C types of struct precopy_stats: unsigned int iteration, unsigned long total_written.
UINT_MAX = (1 << 32) - 1
ULONG_MAX = (1 << 64) - 1
INT64_MAX = (1 << 63) - 1
# floor(sqrt(INT64_MAX)): x*x fits in int64_t for 0 <= x <= this.
INT64_SQRT_MAX = 3037000499
# 2**40 pages of 4 KiB = 4 PiB: above any guest, small enough for every product below.
MAX_GUEST_PAGES = 1 << 40
# Longest simulated pass (about 31 700 years): keeps every sum of durations finite.
MAX_PASS_S = 1e12
# Trace entries, in struct precopy_stats order.
TRACE_KEYS = ("iteration", "total_written", "dirty_count")


def _int(name, value, minimum, maximum=None):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("%s must be an integer, got %s" % (name, brief(value)))
    if value < minimum:
        raise ValueError("%s must be at least %d, got %s" % (name, minimum, brief(value)))
    if maximum is not None and value > maximum:
        raise ValueError("%s must be at most %d, got %s" % (name, maximum, brief(value)))
    return int(value)


def _real(name, value, minimum=0.0, strict=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("%s must be a number, got %s" % (name, brief(value)))
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number) or number < minimum or (strict and number == minimum):
        raise ValueError("%s must be a finite number %s %g, got %s" % (name, ">" if strict else ">=", minimum, brief(value)))
    return number


class PrecopyPolicy:
    """Base class: call as ``policy(iteration, total_written, dirty_count)`` -> decision.

    ``guest_pages`` (P) may be given or left None: the iteration-0 call (dirty_count = P)
    starts a migration, sets P and clears the state, as the C port does. ``reason`` names the
    rule that stopped, ``reset()`` forgets everything learned.
    """

    name = "base"

    def __init__(self, guest_pages=None):
        self.given_pages = None if guest_pages is None else _int("guest_pages", guest_pages, 1, MAX_GUEST_PAGES)
        self.guest_pages = self.given_pages
        self.reason = None
        if self.guest_pages is not None:
            self.check_bounds(self.guest_pages)

    def reset(self):
        self.guest_pages = self.given_pages
        self.reason = None

    def check_bounds(self, guest_pages):
        """Raise ValueError if the C port's int64 arithmetic could overflow for this guest."""

    def start(self, guest_pages):
        """The iteration-0 call: a new migration of a guest of guest_pages pages."""
        if self.given_pages is not None and guest_pages != self.given_pages:
            raise ValueError("the iteration-0 call must carry the guest's %d pages (p2m_size) as dirty_count, got %d"
                             % (self.given_pages, guest_pages))
        self.check_bounds(guest_pages)
        self.reset()
        self.guest_pages = guest_pages

    def __call__(self, iteration, total_written, dirty_count):
        it = _int("iteration", iteration, 0, UINT_MAX)
        tw = _int("total_written", total_written, 0, ULONG_MAX)
        dc = _int("dirty_count", dirty_count, -1, MAX_GUEST_PAGES)
        if it == 0:
            if dc < 1:
                raise ValueError("the iteration-0 call is the first before-send call: its dirty_count is the guest's "
                                 "page count (at least 1), got %d" % dc)
            self.start(dc)
        elif self.guest_pages is None:
            raise ValueError("%s policy does not know the guest's size: give guest_pages or start with the "
                             "iteration-0 call" % self.name)
        if dc > self.guest_pages:
            raise ValueError("dirty_count %d exceeds the guest's %d pages" % (dc, self.guest_pages))
        reason = self.decide(it, tw, dc)
        if reason is None:
            return XGS_POLICY_CONTINUE_PRECOPY
        self.reason = reason
        return XGS_POLICY_STOP_AND_COPY

    def decide(self, iteration, total_written, dirty_count):
        """Return None to continue, or the name of the rule that says stop."""
        raise NotImplementedError


class Xen417Policy(PrecopyPolicy):
    """Xen 4.17's simple_precopy_policy: 5 iterations, or fewer than 50 dirty pages."""

    name = "xen417"

    def __init__(self, guest_pages=None, max_iterations=5, target_dirty_count=50):
        self.max_iterations = _int("max_iterations", max_iterations, 1, UINT_MAX)
        self.target_dirty_count = _int("target_dirty_count", target_dirty_count, 0, MAX_GUEST_PAGES)
        super().__init__(guest_pages)

    def decide(self, iteration, total_written, dirty_count):
        if 0 <= dirty_count < self.target_dirty_count:
            return "dirty_count"
        if iteration >= self.max_iterations:
            return "iterations"
        return None


class Xen34Policy(PrecopyPolicy):
    """Xen 3.4: 29 iterations, fewer than 50 dirty pages, or more than 3x the guest's pages sent."""

    name = "xen34"

    def __init__(self, guest_pages=None, max_iterations=29, target_dirty_count=50, max_factor=3):
        self.max_iterations = _int("max_iterations", max_iterations, 1, UINT_MAX)
        self.target_dirty_count = _int("target_dirty_count", target_dirty_count, 0, MAX_GUEST_PAGES)
        self.max_factor = _int("max_factor", max_factor, 1, 1 << 20)
        super().__init__(guest_pages)

    def decide(self, iteration, total_written, dirty_count):
        if 0 <= dirty_count < self.target_dirty_count:
            return "dirty_count"
        if iteration >= self.max_iterations:
            return "iterations"
        if total_written > self.max_factor * self.guest_pages:
            return "total_written"
        return None


class SDPolicy(Xen34Policy):
    """The thesis's dirty-page standard-deviation tracking (sections 3.3-3.6, 4.7).

    ``sd`` (pages, Eq. (13) as a float) is reported for logs only; the decision is exact.
    """

    name = "sd"

    def __init__(self, guest_pages=None, track_from=10, sd_low=200, sd_high=350, **limits):
        self.track_from = _int("track_from", track_from, 2, UINT_MAX)
        self.sd_low = _int("sd_low", sd_low, 0, INT64_SQRT_MAX)
        self.sd_high = _int("sd_high", sd_high, 0, INT64_SQRT_MAX)
        if self.sd_high <= self.sd_low:
            raise ValueError("sd_high must be greater than sd_low, got [%d, %d]" % (self.sd_low, self.sd_high))
        self.samples = []
        self.last_sample_iteration = 0
        self.sd = None
        super().__init__(guest_pages, **limits)

    def check_bounds(self, guest_pages):
        worst = max(self.max_iterations - 2, 1) * max(guest_pages, self.sd_high)
        if worst > INT64_SQRT_MAX:
            raise ValueError("sd: (max_iterations - 2) * max(guest pages, sd_high) = %d exceeds %d, the C port's "
                             "int64 sums could overflow" % (worst, INT64_SQRT_MAX))

    def reset(self):
        super().reset()
        self.samples = []
        self.last_sample_iteration = 0
        self.sd = None

    def decide(self, iteration, total_written, dirty_count):
        reason = super().decide(iteration, total_written, dirty_count)
        if reason is not None or dirty_count < 0:
            return reason
        if iteration >= 2 and iteration > self.last_sample_iteration:
            self.samples.append(dirty_count)
            self.last_sample_iteration = iteration
            self.sd = pstdev(self.samples)
        if iteration >= self.track_from and self.samples:
            n = len(self.samples)
            var_num = pvariance_scaled(self.samples)[0]
            if (self.sd_low * n) ** 2 < var_num < (self.sd_high * n) ** 2:
                return "sd_band"
        return None


class AdaptivePolicy(Xen34Policy):
    """Stop when the dirty set has stopped shrinking over the last few passes (see module doc)."""

    name = "adaptive"

    def __init__(self, guest_pages=None, window=3, shrink_div=16, noise_div=1024, early=1, **limits):
        self.window = _int("window", window, 1, 1000)
        self.shrink_div = _int("shrink_div", shrink_div, 1, 1 << 20)
        self.noise_div = _int("noise_div", noise_div, 1, 1 << 20)
        self.early = _int("early", early, 0, 1)
        self.history = []
        self.last_sample_iteration = 0
        super().__init__(guest_pages, **limits)

    def check_bounds(self, guest_pages):
        worst = max(self.shrink_div * self.noise_div, self.shrink_div + self.noise_div) * guest_pages
        if worst > INT64_MAX:
            raise ValueError("adaptive: shrink_div * noise_div * guest pages = %d exceeds 2**63 - 1, the C port's "
                             "int64 products could overflow" % worst)

    def reset(self):
        super().reset()
        self.history = []
        self.last_sample_iteration = 0

    def decide(self, iteration, total_written, dirty_count):
        reason = super().decide(iteration, total_written, dirty_count)
        if reason is not None or dirty_count < 0:
            return reason
        if iteration >= 1 and iteration > self.last_sample_iteration:
            # A C port keeps these window + 1 values in a ring buffer.
            self.history = (self.history + [dirty_count])[-(self.window + 1):]
            self.last_sample_iteration = iteration
        if len(self.history) == self.window + 1:
            if self._stalled(self.history[0], dirty_count):
                return "no_shrink"
        elif self.early and len(self.history) == 2:
            if self._stalled(self.history[0], dirty_count):
                return "no_progress"
        return None

    def _stalled(self, old, dirty_count):
        gain = old - dirty_count
        return self.shrink_div * self.noise_div * gain < self.noise_div * old + self.shrink_div * self.guest_pages


POLICIES = {
    "xen417": Xen417Policy,
    "xen34": Xen34Policy,
    "sd": SDPolicy,
    "adaptive": AdaptivePolicy,
}


def make_policy(name, guest_pages=None, **params):
    """POLICIES[name](guest_pages, **params) with a clear error for unknown names or parameters."""
    if not isinstance(name, str) or name not in POLICIES:
        raise ValueError("unknown stop policy %s, expected one of %s" % (brief(name), ", ".join(sorted(POLICIES))))
    try:
        return POLICIES[name](guest_pages, **params)
    except TypeError as exc:
        raise ValueError("bad parameters for stop policy %r: %s" % (name, exc)) from None


def _resolve_policy(policy, guest_pages, policy_params, source):
    """A ready policy (reset when it is a PrecopyPolicy) from a name, an instance or a callable."""
    if isinstance(policy, str):
        return make_policy(policy, guest_pages, **policy_params)
    if policy_params:
        raise ValueError("policy parameters are only accepted with a policy name")
    if isinstance(policy, PrecopyPolicy):
        if policy.given_pages is not None and policy.given_pages != guest_pages:
            raise ValueError("policy was built for %d guest pages but the %s has %d"
                             % (policy.given_pages, source, guest_pages))
        policy.reset()
        return policy
    if not callable(policy):
        raise ValueError("policy must be a policy name, a PrecopyPolicy or a callable, got %s" % brief(policy))
    return policy


def _ask(policy, calls, it, tw, dc):
    decision = policy(it, tw, dc)
    if isinstance(decision, bool) or decision not in DECISIONS:
        raise ValueError("policy returned %s, expected one of %s" % (brief(decision), DECISIONS))
    calls.append((it, tw, dc, decision))
    return decision


# --- recorded traces --------------------------------------------------------------------------

class TraceTooShort(ValueError):
    """The replayed policy would continue past the end of a recorded trace."""


def _trace_entry(index, entry):
    if isinstance(entry, Mapping):
        missing = [k for k in TRACE_KEYS if k not in entry]
        if missing:
            raise ValueError("trace[%d] has no %s (each entry needs %s)" % (index, ", ".join(missing), ", ".join(TRACE_KEYS)))
        values = [entry[k] for k in TRACE_KEYS]
    elif isinstance(entry, Sequence) and not isinstance(entry, (str, bytes)) and len(entry) in (3, 4):
        values = list(entry[:3])
    else:
        raise ValueError("trace[%d] must be a mapping with %s or an (iteration, total_written, dirty_count) "
                         "tuple, got %s" % (index, ", ".join(TRACE_KEYS), brief(entry)))
    it = _int("trace[%d] iteration" % index, values[0], 0, UINT_MAX)
    tw = _int("trace[%d] total_written" % index, values[1], 0, ULONG_MAX)
    dc = _int("trace[%d] dirty_count" % index, values[2], -1, MAX_GUEST_PAGES)
    return it, tw, dc


def policy_calls(trace):
    """Check a recorded trace against send_memory_live and return every policy call it implies.

    ``trace``: the policy calls in order, each a mapping {iteration, total_written, dirty_count}
    (extra keys such as a logged decision are ignored) or a tuple in that order (simulate's
    ``calls`` work too). Either every call (after-send calls have dirty_count -1) or only the
    before-send calls (dirty_count >= 0): the after-send calls are implied, since the one after
    {k, tw, dc} is {k + 1, tw + dc, -1}. The first entry must be {0, 0, P}.

    Returns [(iteration, total_written, dirty_count), ...]: every call, ending with the
    after-send call that follows the last before-send call (it is implied even when not logged).
    ValueError names the first entry that send_memory_live could not have produced.
    """
    if isinstance(trace, (str, bytes, Mapping)) or not isinstance(trace, Sequence) or not trace:
        raise ValueError("a trace needs a non-empty list of policy calls {%s}, got %s" % (", ".join(TRACE_KEYS), brief(trace)))
    entries = [_trace_entry(i, e) for i, e in enumerate(trace)]
    it, tw, dc = entries[0]
    if it != 0 or tw != 0 or dc < 1:
        raise ValueError("trace[0] must be the first call {iteration: 0, total_written: 0, dirty_count: guest pages >= 1}, "
                         "got {iteration: %d, total_written: %d, dirty_count: %d}" % (it, tw, dc))
    guest_pages = dc
    full = any(e[2] == -1 for e in entries)
    calls = [entries[0]]
    # (iteration, total_written) that the next after-send call must carry.
    expect_it, expect_tw = 1, dc
    for index, (it, tw, dc) in enumerate(entries[1:], 1):
        after = full and index % 2 == 1
        if after and dc != -1:
            raise ValueError("trace[%d] should be the after-send call of pass %d (dirty_count -1), got dirty_count %d"
                             % (index, expect_it, dc))
        if not after and dc == -1:
            raise ValueError("trace[%d] should be a before-send call (dirty_count >= 0), got -1" % index)
        if (it, tw) != (expect_it, expect_tw):
            raise ValueError("trace[%d]: send_memory_live would pass iteration %d, total_written %d here, the trace has "
                             "iteration %d, total_written %d" % (index, expect_it, expect_tw, it, tw))
        if dc > guest_pages:
            raise ValueError("trace[%d] dirty_count %d exceeds the guest's %d pages" % (index, dc, guest_pages))
        if not full:
            calls.append((expect_it, expect_tw, -1))
        calls.append((it, tw, dc))
        if dc >= 0:
            expect_it, expect_tw = it + 1, tw + dc
    last = calls[-1]
    if last[2] >= 0:
        calls.append((last[0] + 1, last[1] + last[2], -1))
    return calls


def replay(policy, trace, details=False, **policy_params):
    """Replay a recorded trace through a policy: the iteration of the call at which it stops.

    ``policy``: a name in POLICIES (built with policy_params; P comes from the trace), a
    PrecopyPolicy (reset first) or a callable (iteration, total_written, dirty_count) ->
    decision. ``trace``: as for policy_calls, e.g. what the patched Xen logged.

    Returns the ``iteration`` of the first call that does not answer CONTINUE. For a trace the
    same policy produced in Xen, that is the iteration of the last call Xen made: the last one
    logged, or, when only before-send calls are logged and the stop came after a send, the
    implied after-send call that follows the last logged one. With
    details=True, a dict: iteration, total_written, dirty_count (-1: the after-send call),
    stopped ('before_send'/'after_send'), passes (live passes, Xen's x: iteration + 1 for a
    before-send stop, whose batch is still sent), decision, reason (the rule, for our
    policies), call_index (0-based, in policy_calls' list), calls (the decisions made).
    Raises TraceTooShort (a ValueError) if the policy continues past the end of the trace.
    """
    if not isinstance(details, bool):
        raise ValueError("details must be true or false, got %s" % brief(details))
    calls = policy_calls(trace)
    pol = _resolve_policy(policy, calls[0][2], policy_params, "trace")
    made = []
    for index, (it, tw, dc) in enumerate(calls):
        decision = _ask(pol, made, it, tw, dc)
        if decision == XGS_POLICY_CONTINUE_PRECOPY:
            continue
        if not details:
            return it
        before = dc >= 0
        return {
            "policy": getattr(pol, "name", getattr(pol, "__name__", "callable")),
            "iteration": it,
            "total_written": tw,
            "dirty_count": dc,
            "stopped": "before_send" if before else "after_send",
            "passes": it + 1 if before else it,
            "decision": decision,
            "reason": getattr(pol, "reason", None),
            "call_index": index,
            "calls": made,
        }
    raise TraceTooShort("the policy continues past the end of the recorded trace: it answered CONTINUE to all %d calls "
                        "(last: iteration %d, the after-send call of pass %d) and needs the next dirty count"
                        % (len(calls), calls[-1][0], calls[-1][0]))


# --- dirty-page models -------------------------------------------------------------------------

def _round_pages(x, cap):
    """round half up to an integer in [0, cap] without float-to-int overflow (x may be inf)."""
    if not x > 0:  # also NaN
        return 0
    if x >= cap:
        return cap
    return min(cap, int(math.floor(x + 0.5)))


class DirtyModel:
    """Pages dirtied during live pass ``iteration`` (1-based) that lasted ``duration_s``."""

    def __init__(self, guest_pages):
        self.guest_pages = _int("guest_pages", guest_pages, 1, MAX_GUEST_PAGES)

    def dirtied(self, iteration, duration_s):
        raise NotImplementedError

    def has(self, iteration):  # pylint: disable=unused-argument
        """Whether dirtied(iteration, ...) is known (only a trace can run out)."""
        return True


class ConstantRateModel(DirtyModel):
    """rate_pps pages dirtied per second: round(rate_pps * t), at most guest_pages."""

    def __init__(self, guest_pages, rate_pps):
        super().__init__(guest_pages)
        self.rate_pps = _real("rate_pps", rate_pps)

    def dirtied(self, iteration, duration_s):
        return _round_pages(self.rate_pps * duration_s if self.rate_pps else 0.0, self.guest_pages)


class HotSetModel(DirtyModel):
    """round(min(wss_pages, hot_rate_pps * t) + background_pps * t), at most guest_pages.

    A working set of wss_pages rewritten at hot_rate_pps pages/s: in a pass of t seconds it
    contributes hot_rate_pps * t distinct pages until all of it is dirty; the rest of memory is
    dirtied at background_pps (distinct pages, no overlap assumed).
    """

    def __init__(self, guest_pages, wss_pages, hot_rate_pps, background_pps=0.0):
        super().__init__(guest_pages)
        self.wss_pages = _int("wss_pages", wss_pages, 0, MAX_GUEST_PAGES)
        if self.wss_pages > self.guest_pages:
            raise ValueError("wss_pages (%d) cannot exceed guest_pages (%d)" % (self.wss_pages, self.guest_pages))
        self.hot_rate_pps = _real("hot_rate_pps", hot_rate_pps)
        self.background_pps = _real("background_pps", background_pps)

    def dirtied(self, iteration, duration_s):
        hot = min(self.wss_pages, self.hot_rate_pps * duration_s) if self.hot_rate_pps else 0.0
        background = self.background_pps * duration_s if self.background_pps else 0.0
        return _round_pages(hot + background, self.guest_pages)


class TraceModel(DirtyModel):
    """A recorded migration: ``counts`` as Xen logs the pages of each pass.

    counts[0] = pages of pass 1 (all memory, P = p2m_size), counts[k] = D_k = the dirty_count Xen
    handed the policy before pass k+1, i.e. the pages dirtied during pass k; the last entry may be
    the stop-and-copy pass. ``from_policy_calls`` builds it from a logged trace of policy calls.
    """

    def __init__(self, counts):
        if isinstance(counts, (str, bytes, Mapping)) or not isinstance(counts, Sequence) or not counts:
            raise ValueError("a trace needs a non-empty list of per-pass page counts, got %s" % brief(counts))
        super().__init__(_int("trace[0] (guest pages)", counts[0], 1, MAX_GUEST_PAGES))
        self.counts = [self.guest_pages]
        for k, c in enumerate(counts[1:], 1):
            self.counts.append(_int("trace[%d]" % k, c, 0, MAX_GUEST_PAGES))
            if c > self.guest_pages:
                raise ValueError("trace[%d] = %d exceeds the guest's %d pages" % (k, c, self.guest_pages))

    @classmethod
    def from_policy_calls(cls, trace, final_pages=None):
        """``trace``: logged policy calls (see policy_calls); their before-send dirty counts, then
        ``final_pages`` (the stop-and-copy pass, if known)."""
        counts = [dc for _it, _tw, dc in policy_calls(trace) if dc >= 0]
        if final_pages is not None:
            counts.append(final_pages)
        return cls(counts)

    def has(self, iteration):
        return iteration < len(self.counts)

    def dirtied(self, iteration, duration_s):
        if not self.has(iteration):
            raise TraceTooShort("the policy continues past the end of the recorded trace: it needs the dirty count "
                                "of pass %d but the trace has only %d entries (passes 1..%d)"
                                % (iteration, len(self.counts), len(self.counts) - 1))
        return self.counts[iteration]


# --- simulator ---------------------------------------------------------------------------------

def mbps_to_bytes_per_s(mbps):
    """Megabits per second (10**6 bit/s) to bytes per second, the unit of simulate's bandwidth."""
    return _real("bandwidth_mbps", mbps, strict=True) * 1e6 / 8


def simulate(policy, model, bandwidth, page_size=DEFAULT_PAGE_SIZE, max_rounds=100000, overhead_s=0.0, **policy_params):
    """Replay send_memory_live on a dirty-page model.

    policy: a PrecopyPolicy (reset first), a name in POLICIES (built for model.guest_pages with
    policy_params), or any callable (iteration, total_written, dirty_count) -> decision.
    bandwidth: bytes per second (see mbps_to_bytes_per_s); a pass of n pages takes
    n * page_size / bandwidth seconds. overhead_s: the thesis's beta (Eq. (12)), added to the
    downtime and the total time.

    Returns a dict: iterations (live passes), stopped ('before_send'/'after_send'), reason,
    aborted, records [{iteration, dirty_count, pages_sent, duration_s, dirtied}], calls
    [(iteration, total_written, dirty_count, decision)] (valid input to replay), live_pages,
    final_pages (the stop-and-copy), total_pages, live_time_s, downtime_s (final_pages /
    bandwidth + overhead_s), total_time_s, first_pass_s, time_after_first_s (total_time_s -
    first pass, the thesis's Table 6 "iterative copying time"), trace ([P, D_1, ..., D_n],
    valid input to TraceModel). A trace that ends just before the stop-and-copy count gives
    final_pages and times None.
    """
    if not isinstance(model, DirtyModel):
        raise ValueError("model must be a DirtyModel (ConstantRateModel, HotSetModel, TraceModel), got %s" % brief(model))
    bandwidth = _real("bandwidth", bandwidth, strict=True)
    page_size = _int("page_size", page_size, 1, MAX_PAGE_SIZE)
    max_rounds = _int("max_rounds", max_rounds, 1, 10 ** 7)
    beta = _real("overhead_s", overhead_s)
    pages = model.guest_pages
    if not pages * page_size / bandwidth <= MAX_PASS_S:
        raise ValueError("bandwidth %r bytes/s is too small: copying the guest's %d pages would take more than %g s"
                         % (bandwidth, pages, MAX_PASS_S))
    policy = _resolve_policy(policy, pages, policy_params, "model")

    calls, records, trace = [], [], [pages]
    it, tw, dc = 0, 0, pages
    x = 0
    stopped = "before_send"
    while True:
        decision = _ask(policy, calls, it, tw, dc)
        x += 1
        sent = dc if dc > 0 and decision != XGS_POLICY_ABORT else 0
        records.append({"iteration": x, "dirty_count": dc, "pages_sent": sent,
                        "duration_s": sent * page_size / bandwidth, "dirtied": None})
        if decision != XGS_POLICY_CONTINUE_PRECOPY:
            break
        it, tw, dc = x, tw + dc, -1
        decision = _ask(policy, calls, it, tw, dc)
        if decision != XGS_POLICY_CONTINUE_PRECOPY:
            stopped = "after_send"
            break
        if x >= max_rounds:
            raise ValueError("policy did not stop within max_rounds=%d passes" % max_rounds)
        dc = model.dirtied(x, records[-1]["duration_s"])
        records[-1]["dirtied"] = dc
        trace.append(dc)

    aborted = decision == XGS_POLICY_ABORT
    final = None
    if not aborted and model.has(x):
        final = model.dirtied(x, records[-1]["duration_s"])
        records[-1]["dirtied"] = final
        trace.append(final)
    live_pages = sum(r["pages_sent"] for r in records)
    live_time = math.fsum(r["duration_s"] for r in records)
    downtime = None if final is None else final * page_size / bandwidth + beta
    total_time = None if downtime is None else live_time + downtime
    first = records[0]["duration_s"]
    return {
        "policy": getattr(policy, "name", getattr(policy, "__name__", "callable")),
        "iterations": x,
        "stopped": stopped,
        "reason": getattr(policy, "reason", None),
        "aborted": aborted,
        "records": records,
        "calls": calls,
        "live_pages": live_pages,
        "final_pages": final,
        "total_pages": None if final is None else live_pages + final,
        "live_time_s": live_time,
        "downtime_s": downtime,
        "total_time_s": total_time,
        "first_pass_s": first,
        "time_after_first_s": None if total_time is None else total_time - first,
        "trace": trace,
    }
