# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Downtime from timestamped probes (stdlib only).

A probe record is ``(seq, send_time, recv_time)``: the probe's sequence number (already unwrapped,
so it only grows), the Unix time it was sent and the Unix time its answer arrived, or ``None`` if
it never did. :func:`analyse` turns a list of them into two downtime figures:

* Eq. (14) of Nkubito (2012): downtime = unreachable probes x probe interval. The thesis used the
  nominal interval of ``ping -i 0.05``. A prober does not keep its nominal interval, though: iputils
  ``ping -i 0.01`` sends every ~16 ms on a 250 Hz kernel and slows down further while answers are
  missing. ``downtime_ms`` therefore counts each lost probe with its *own* interval, the time from
  its send to the next probe's send (so a run of lost probes ``a..b`` counts
  ``send(b+1) - send(a)``); ``downtime_nominal_ms`` is the thesis's product with the nominal
  interval.
* The longest time between two consecutive answers (in arrival order), with the answers that
  bound it. Without loss it is about one interval; across an outage it is the outage plus about
  one interval.
"""

from __future__ import annotations

import math

MS_PER_S = 1000.0


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_interval(interval_s):
    if not _is_number(interval_s) or interval_s <= 0:
        raise ValueError("interval_s must be a positive finite number of seconds, got %r" % (interval_s,))


def eq14_downtime_ms(lost, interval_s):
    """Eq. (14) verbatim: downtime [ms] = number of unreachable probes x probe interval [s] x 1000."""
    if isinstance(lost, bool) or not isinstance(lost, int) or lost < 0:
        raise ValueError("lost must be a non-negative integer count of probes, got %r" % (lost,))
    _check_interval(interval_s)
    return lost * interval_s * MS_PER_S


def _validate(records):
    if isinstance(records, (str, bytes, dict)) or not hasattr(records, "__iter__"):
        raise ValueError("records must be a sequence of (seq, send_time, recv_time) tuples, got %s" % type(records).__name__)
    items = list(records)
    if not items:
        raise ValueError("no probe records: nothing was sent")
    clean = []
    seen = set()
    for index, item in enumerate(items):
        if not isinstance(item, (tuple, list)) or len(item) != 3:
            raise ValueError("record %d: expected (seq, send_time, recv_time or None), got %r" % (index, item))
        seq, sent, received = item
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            raise ValueError("record %d: seq must be a non-negative integer, got %r" % (index, seq))
        if seq in seen:
            raise ValueError("record %d: duplicate seq %d (drop duplicate answers before the analysis)" % (index, seq))
        seen.add(seq)
        if not _is_number(sent):
            raise ValueError("record %d (seq %d): send_time must be a finite number, got %r" % (index, seq, sent))
        if received is not None:
            if not _is_number(received):
                raise ValueError("record %d (seq %d): recv_time must be a finite number or None, got %r" % (index, seq, received))
            if received < sent:
                raise ValueError("record %d (seq %d): answer at %r precedes the send at %r" % (index, seq, received, sent))
        clean.append((seq, float(sent), None if received is None else float(received)))
    clean.sort()
    return clean


def _send_times(items, first_seq, last_seq):
    """Send time of every seq in first..last; seqs without a record are interpolated by seq."""
    sends = [None] * (last_seq - first_seq + 1)
    for seq, sent, _received in items:
        sends[seq - first_seq] = sent
    known = [(seq, sent) for seq, sent, _received in items]
    for (s0, t0), (s1, t1) in zip(known, known[1:]):
        for seq in range(s0 + 1, s1):
            sends[seq - first_seq] = t0 + (t1 - t0) * (seq - s0) / (s1 - s0)
    return sends


def analyse(records, interval_s):
    """Downtime figures from probe records; ``interval_s`` is the nominal probe interval.

    Sequence numbers absent from ``records`` between the smallest and the largest count as sent
    and lost (plain ``ping`` without ``-O`` prints nothing for a lost probe); their send times are
    interpolated. Returns a dict; times are Unix seconds (``*_s``), durations milliseconds
    (``*_ms``):

    ``sent``, ``received``, ``lost`` (= sent - received), ``missing`` (lost probes without a
    record), ``lost_leading`` / ``lost_trailing`` (before the first / after the last answer),
    ``loss_pct``; ``interval_ms`` (nominal) and ``interval_mean_ms`` (measured, over all sends);
    ``downtime_ms`` (Eq. 14, each lost probe times its own interval; the last probe sent uses the
    mean interval) and ``downtime_nominal_ms`` (Eq. 14 with the nominal interval);
    ``longest_gap_ms`` with ``longest_gap_start_s``/``_end_s`` and the seqs of the answers around
    it (``longest_gap_after_seq``, ``longest_gap_before_seq``), None with fewer than two answers;
    ``first_sent_s``, ``last_sent_s``, ``first_received_s``, ``last_received_s``; and
    ``loss_runs``, one dict per run of consecutive lost probes.
    """
    _check_interval(interval_s)
    items = _validate(records)
    first_seq, last_seq = items[0][0], items[-1][0]
    sent = last_seq - first_seq + 1
    sends = _send_times(items, first_seq, last_seq)
    recv_by_seq = dict((seq, received) for seq, _sent, received in items if received is not None)
    received = len(recv_by_seq)
    lost = sent - received

    span = sends[-1] - sends[0]
    mean_interval_s = span / (sent - 1) if sent > 1 and span > 0 else interval_s

    def slot(index):
        # Time this probe "stands for": until the next probe went out.
        if index + 1 < sent:
            return max(sends[index + 1] - sends[index], 0.0)
        return mean_interval_s

    runs = []
    run_start = None
    for index in range(sent + 1):
        is_lost = index < sent and (first_seq + index) not in recv_by_seq
        if is_lost and run_start is None:
            run_start = index
        elif not is_lost and run_start is not None:
            before = first_seq + run_start - 1
            after = first_seq + index
            gap_start = recv_by_seq.get(before)
            gap_end = recv_by_seq.get(after) if index < sent else None
            runs.append({
                "first_seq": first_seq + run_start,
                "last_seq": first_seq + index - 1,
                "lost": index - run_start,
                "first_sent_s": sends[run_start],
                "downtime_ms": math.fsum(slot(i) for i in range(run_start, index)) * MS_PER_S,
                "downtime_nominal_ms": eq14_downtime_ms(index - run_start, interval_s),
                "gap_start_s": gap_start,
                "gap_end_s": gap_end,
                "gap_ms": (gap_end - gap_start) * MS_PER_S if gap_start is not None and gap_end is not None else None,
            })
            run_start = None

    arrivals = sorted((recv, seq) for seq, recv in recv_by_seq.items())
    longest = None
    for before, after in zip(arrivals, arrivals[1:]):
        gap = after[0] - before[0]
        if longest is None or gap > longest[0]:
            longest = (gap, before, after)

    lost_leading = lost_trailing = 0
    if runs and runs[0]["first_seq"] == first_seq:
        lost_leading = runs[0]["lost"]
    if runs and runs[-1]["last_seq"] == last_seq and received:
        lost_trailing = runs[-1]["lost"]

    return {
        "sent": sent,
        "received": received,
        "lost": lost,
        "missing": sent - len(items),
        "lost_leading": lost_leading,
        "lost_trailing": lost_trailing,
        "loss_pct": 100.0 * lost / sent,
        "interval_ms": interval_s * MS_PER_S,
        "interval_mean_ms": mean_interval_s * MS_PER_S,
        "downtime_ms": math.fsum(run["downtime_ms"] for run in runs),
        "downtime_nominal_ms": eq14_downtime_ms(lost, interval_s),
        "longest_gap_ms": None if longest is None else longest[0] * MS_PER_S,
        "longest_gap_start_s": None if longest is None else longest[1][0],
        "longest_gap_end_s": None if longest is None else longest[2][0],
        "longest_gap_after_seq": None if longest is None else longest[1][1],
        "longest_gap_before_seq": None if longest is None else longest[2][1],
        "first_sent_s": sends[0],
        "last_sent_s": sends[-1],
        "first_received_s": arrivals[0][0] if arrivals else None,
        "last_received_s": arrivals[-1][0] if arrivals else None,
        "loss_runs": runs,
    }
