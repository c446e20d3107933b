# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Downtime (Eq. 14 and the longest gap) from synthetic records and from real probe captures."""

from __future__ import annotations

import glob
import json
import os

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.xenlab.migration.plugins.module_utils import downtime, parsers

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "fixtures", "probe")


def regular(n, interval=0.01, lost=(), t0=1000.0, rtt=0.0002):
    """n probes every ``interval`` seconds; seqs in ``lost`` get no answer."""
    return [(seq, t0 + seq * interval, None if seq in lost else t0 + seq * interval + rtt) for seq in range(n)]


# --- Eq. (14) ----------------------------------------------------------------------------------

def test_eq14_is_lost_times_interval():
    # The thesis's own form: unreachable pings x ping interval (ping -i 0.05).
    assert downtime.eq14_downtime_ms(19, 0.05) == pytest.approx(950.0)
    assert downtime.eq14_downtime_ms(0, 0.01) == 0.0


@pytest.mark.parametrize("lost, interval", [(-1, 0.01), (1.5, 0.01), (True, 0.01), (3, 0), (3, -0.01), (3, float("nan"))])
def test_eq14_rejects(lost, interval):
    with pytest.raises(ValueError):
        downtime.eq14_downtime_ms(lost, interval)


# --- analyse: synthetic ------------------------------------------------------------------------

def test_no_loss():
    figures = downtime.analyse(regular(100), 0.01)
    assert (figures["sent"], figures["received"], figures["lost"]) == (100, 100, 0)
    assert figures["downtime_ms"] == 0.0 and figures["loss_runs"] == []
    assert figures["longest_gap_ms"] == pytest.approx(10.0)
    assert figures["interval_mean_ms"] == pytest.approx(10.0)
    assert figures["first_sent_s"] == 1000.0 and figures["last_received_s"] == pytest.approx(1000.9902)


def test_one_outage_regular_interval():
    figures = downtime.analyse(regular(200, lost=range(50, 80)), 0.01)
    assert (figures["sent"], figures["received"], figures["lost"]) == (200, 170, 30)
    assert figures["downtime_ms"] == pytest.approx(300.0)
    assert figures["downtime_nominal_ms"] == pytest.approx(300.0)
    # Between the answers of seq 49 and seq 80: the outage plus one interval.
    assert figures["longest_gap_ms"] == pytest.approx(310.0)
    assert (figures["longest_gap_after_seq"], figures["longest_gap_before_seq"]) == (49, 80)
    [run] = figures["loss_runs"]
    assert (run["first_seq"], run["last_seq"], run["lost"]) == (50, 79, 30)
    assert run["gap_ms"] == pytest.approx(310.0) and run["first_sent_s"] == pytest.approx(1000.5)
    assert figures["lost_leading"] == figures["lost_trailing"] == 0


def test_lost_probes_count_with_their_own_interval():
    # Like iputils ping: 16 ms between probes normally, 20 ms while answers are missing.
    records, t = [], 0.0
    for seq in range(100):
        lost = 40 <= seq < 60
        records.append((seq, t, None if lost else t + 0.0001))
        t += 0.020 if lost else 0.016
    figures = downtime.analyse(records, 0.01)
    assert figures["downtime_ms"] == pytest.approx(20 * 20.0)
    assert figures["downtime_nominal_ms"] == pytest.approx(20 * 10.0)
    assert figures["interval_mean_ms"] == pytest.approx((80 * 16 + 20 * 20 - 16) / 99.0)


def test_missing_seqs_count_as_lost_with_interpolated_send_times():
    # Plain ping (no -O) prints nothing for a lost probe.
    records = [r for r in regular(100, interval=0.016) if not 30 <= r[0] < 45]
    figures = downtime.analyse(records, 0.01)
    assert (figures["lost"], figures["missing"]) == (15, 15)
    assert figures["downtime_ms"] == pytest.approx(15 * 16.0)
    assert figures["loss_runs"][0]["first_sent_s"] == pytest.approx(1000.0 + 30 * 0.016)


def test_leading_trailing_and_several_runs():
    figures = downtime.analyse(regular(100, lost=set(range(0, 5)) | set(range(20, 22)) | set(range(90, 100))), 0.01)
    assert [(r["first_seq"], r["lost"]) for r in figures["loss_runs"]] == [(0, 5), (20, 2), (90, 10)]
    assert (figures["lost_leading"], figures["lost_trailing"]) == (5, 10)
    assert figures["loss_runs"][0]["gap_start_s"] is None and figures["loss_runs"][-1]["gap_end_s"] is None
    # The last probe has no successor: it counts with the mean interval.
    assert figures["downtime_ms"] == pytest.approx(170.0)
    assert figures["longest_gap_ms"] == pytest.approx(30.0)


def test_nothing_answered():
    figures = downtime.analyse(regular(10, lost=range(10)), 0.01)
    assert (figures["received"], figures["lost"], figures["lost_leading"], figures["lost_trailing"]) == (0, 10, 10, 0)
    assert figures["longest_gap_ms"] is None and figures["first_received_s"] is None
    assert figures["downtime_ms"] == pytest.approx(100.0)


def test_single_record_uses_nominal_interval():
    figures = downtime.analyse([(7, 5.0, None)], 0.05)
    assert figures["sent"] == 1 and figures["downtime_ms"] == pytest.approx(50.0)
    assert figures["interval_mean_ms"] == pytest.approx(50.0)


def test_longest_gap_follows_arrival_order():
    # seq 2's answer arrives late, after seq 3's: the time without any answer is what counts.
    records = [(0, 0.0, 0.001), (1, 0.01, 0.011), (2, 0.02, 0.5), (3, 0.03, 0.031), (4, 0.04, 0.6)]
    figures = downtime.analyse(records, 0.01)
    assert figures["longest_gap_ms"] == pytest.approx(469.0)
    assert (figures["longest_gap_after_seq"], figures["longest_gap_before_seq"]) == (3, 2)


@pytest.mark.parametrize("records, message", [
    ([], "nothing was sent"),
    ("abc", "sequence of"),
    (None, "sequence of"),
    ([(1, 0.0)], "expected \\(seq"),
    ([(1, 0.0, None), (1, 0.1, None)], "duplicate seq 1"),
    ([(-1, 0.0, None)], "non-negative"),
    ([(1, float("inf"), None)], "send_time"),
    ([(1, 1.0, 0.5)], "precedes the send"),
    ([(1, 1.0, "x")], "recv_time"),
])
def test_analyse_rejects(records, message):
    with pytest.raises(ValueError, match=message):
        downtime.analyse(records, 0.01)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.floats(0.001, 0.2)), min_size=1, max_size=120),
       st.floats(0.001, 0.1))
def test_properties(pattern, nominal):
    """Counts add up, runs cover the losses, Eq. (14) with measured intervals telescopes."""
    records, t = [], 1000.0
    for seq, (answered, step) in enumerate(pattern):
        records.append((seq, t, t + 0.0001 if answered else None))
        t += step
    figures = downtime.analyse(records, nominal)
    lost = sum(1 for answered, _step in pattern if not answered)
    assert figures["sent"] == len(pattern) == figures["received"] + figures["lost"]
    assert figures["lost"] == lost == sum(run["lost"] for run in figures["loss_runs"])
    assert figures["downtime_nominal_ms"] == pytest.approx(lost * nominal * 1000.0)
    mean = figures["interval_mean_ms"] / 1000.0
    expected = sum(pattern[i][1] if i + 1 < len(pattern) else mean for i in range(len(pattern)) if not pattern[i][0])
    assert figures["downtime_ms"] == pytest.approx(expected * 1000.0)
    if figures["received"] >= 2:
        assert figures["longest_gap_ms"] >= max(run["gap_ms"] or 0.0 for run in figures["loss_runs"] or [{"gap_ms": 0.0}])
        assert figures["longest_gap_ms"] >= 0.0
    else:
        assert figures["longest_gap_ms"] is None


# --- analyse: real captures with a known outage ------------------------------------------------

def _outage_cases():
    for log in sorted(glob.glob(os.path.join(FIXTURES, "ping", "*.txt")) + glob.glob(os.path.join(FIXTURES, "udp", "probe-*.log"))):
        outage = os.path.splitext(log)[0] + ".outage.json"
        if os.path.exists(outage):
            yield pytest.param(log, outage, id=os.path.relpath(log, FIXTURES))


def _records(log):
    with open(log) as handle:
        text = handle.read()
    if log.endswith(".log"):
        parsed = parsers.parse_udp_probe_log(text)
        return parsers.records_from_udp_log(parsed), float(parsed["params"]["interval_ms"]) / 1000.0
    parsed = parsers.parse_ping(text)
    # The nominal interval is in the name: d-o-10ms-outage300.txt was ping -i 0.01.
    token = [part for part in os.path.basename(log).split("-") if part.endswith("ms")][0]
    interval = float(token[:-2]) / 1000.0
    return parsers.records_from_ping(parsed), interval


@pytest.mark.parametrize("log, outage", list(_outage_cases()))
def test_fixture_downtime_matches_the_injected_outage(log, outage):
    with open(outage) as handle:
        window = json.load(handle)
    shortest = (window["drop_remove_start_s"] - window["drop_insert_done_s"]) * 1000.0
    longest = (window["drop_remove_done_s"] - window["drop_insert_start_s"]) * 1000.0
    records, interval = _records(log)
    figures = downtime.analyse(records, interval)
    step = figures["interval_mean_ms"]
    # The outage costs every probe sent during it: at most one interval more or less.
    assert shortest - 1.5 * step <= figures["downtime_ms"] <= longest + 1.5 * step, figures
    # The answers around the outage are one interval further apart than the outage is long.
    assert shortest <= figures["longest_gap_ms"] <= longest + 2.5 * step, figures
    assert figures["longest_gap_start_s"] <= window["drop_insert_done_s"] + step / 1000.0
    assert figures["longest_gap_end_s"] >= window["drop_remove_start_s"]
    assert len([run for run in figures["loss_runs"] if run["lost"] > 1]) == 1


def test_fixture_nominal_eq14_underestimates_ping():
    # Why downtime_ms counts measured intervals: ping -i 0.01 really sends every ~16 ms here, so
    # the thesis's lost x nominal interval misses about a third of a 1 s outage.
    records, interval = _records(os.path.join(FIXTURES, "ping", "d-o-10ms-outage1s.txt"))
    figures = downtime.analyse(records, interval)
    assert figures["interval_mean_ms"] > 14.0
    assert figures["downtime_nominal_ms"] < 0.75 * figures["downtime_ms"]


def test_fixture_clean_run_has_no_downtime():
    records, interval = _records(os.path.join(FIXTURES, "ping", "d-o-10ms-clean.txt"))
    figures = downtime.analyse(records, interval)
    assert (figures["sent"], figures["lost"], figures["downtime_ms"]) == (100, 0, 0.0)
    assert figures["longest_gap_ms"] < 50.0


def test_fixture_stopped_during_outage_counts_trailing_loss():
    with open(os.path.join(FIXTURES, "ping", "d-o-10ms-stopped-in-outage.txt")) as handle:
        text = handle.read()
    records = parsers.records_from_ping(parsers.parse_ping(text))
    figures = downtime.analyse(records, 0.01)
    assert figures["lost_trailing"] == figures["lost"] == text.count("no answer yet")
    # SIGINT came 0.5 s into the outage.
    assert 400.0 <= figures["downtime_ms"] <= 600.0
