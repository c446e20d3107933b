# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ITU-T G.107 E-model, VoIPmonitor's MOS and the simulated jitter buffers."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.xenlab.migration.plugins.module_utils import emodel


# --- G.107 ------------------------------------------------------------------------------------

def test_default_r_is_93_2():
    # G.107 section 3: with all parameters at their defaults R = 93.2.
    terms = emodel.g107_components()
    assert round(terms["R"], 1) == 93.2
    assert terms["Ie_eff"] == 0 and terms["Idd"] == 0
    assert round(emodel.mos_from_r(terms["R"]), 2) == 4.41


def test_delay_impairment():
    # Idd = 0 up to Ta = 100 ms; at 200 ms X = log2(2) = 1:
    # 25 * ((1 + 1)^(1/6) - 3 * (1 + (1/3)^6)^(1/6) + 2) = 3.044.
    assert emodel.delay_impairment_idd(100) == 0
    assert emodel.delay_impairment_idd(200) == pytest.approx(3.0444, abs=1e-3)
    r_values = [emodel.r_factor(delay_ms=delay) for delay in (0, 100, 150, 200, 300, 400)]
    assert r_values == sorted(r_values, reverse=True)      # more delay, lower R
    assert r_values[0] - r_values[-1] > 25


def test_effective_equipment_impairment():
    # Ie,eff = Ie + (95 - Ie) * Ppl / (Ppl / BurstR + Bpl): 2 % random loss, G.711 with PLC.
    assert emodel.effective_equipment_impairment(2, 1, 0, 25.1) == pytest.approx(95 * 2 / 27.1)
    # Bursty loss hurts more than random loss of the same rate.
    assert emodel.effective_equipment_impairment(2, 3) > emodel.effective_equipment_impairment(2, 1)
    assert emodel.effective_equipment_impairment(0, 2) == 0
    assert emodel.r_factor(ppl=2) == pytest.approx(93.2062 - 95 * 2 / 27.1, abs=1e-3)


@pytest.mark.parametrize("r, mos", [(-5, 1.0), (0, 1.0), (50, 2.575), (93.2, 4.409), (100, 4.5), (120, 4.5)])
def test_mos_from_r(r, mos):
    # Annex B: MOS = 1 + 0.035 R + R (R - 60) (100 - R) 7e-6.
    assert emodel.mos_from_r(r) == pytest.approx(mos, abs=1e-3)


def test_voipmonitor_mos():
    assert emodel.voipmonitor_mos_g711(0, 1) == 4.5
    assert emodel.voipmonitor_mos_g711(0.6, 1) == 1.0
    # 5 % random loss: R = 93.2062 - 95 * 5 / (5 + 17.2647) = 71.872, and VoIPmonitor's cubic
    # 2.06405 + 0.031738 R - 0.000356641 R^2 + 2.93143e-6 R^3 = 3.591.
    assert emodel.voipmonitor_mos_g711(0.05, 1) == pytest.approx(3.5912, abs=1e-3)
    assert emodel.voipmonitor_mos_g711(0.05, 2) < emodel.voipmonitor_mos_g711(0.05, 1)


def test_burst_ratio():
    # BurstR = mean burst length / (1 / (1 - loss)); four losses are ignored, like VoIPmonitor.
    assert emodel.burst_ratio({1: 10}, 100) == pytest.approx((0.1, 0.9))
    assert emodel.burst_ratio({5: 2}, 100) == pytest.approx((0.1, 5 * 0.9))
    assert emodel.burst_ratio({2: 2}, 100) == (0.0, 0.0)
    assert emodel.burst_ratio({}, 100) == (0.0, 0.0)


@pytest.mark.parametrize("params, message", [
    ({"Foo": 1}, "unknown E-model parameter"),
    ({"Ppl": 101}, "Ppl is a percentage"),
    ({"BurstR": 0}, "BurstR must be positive"),
    ({"qdu": 0.5}, "qdu must be at least 1"),
    ({"T": -1}, "delays must not be negative"),
])
def test_bad_e_model_parameters(params, message):
    with pytest.raises(ValueError, match=message):
        emodel.g107_components(**params)


# --- jitter buffers ---------------------------------------------------------------------------

def _paced(count, jitter=None, gap=None, start_seq=100, start_ts=8000):
    """20 ms G.711 packets; ``jitter`` maps index -> extra arrival delay, ``gap`` = lost indexes."""
    jitter = jitter or {}
    gap = gap or ()
    return sorted((20.0 * i + jitter.get(i, 0.0), (start_seq + i) & 0xFFFF, (start_ts + 160 * i) & 0xFFFFFFFF, 0, 0)
                  for i in range(count) if i not in gap)   # in arrival order


def _lost(pkts):
    sims = emodel.simulate_jitter_buffers(pkts, 8000)
    return dict((name, sum(length * count for length, count in sim["bursts"].items())) for name, sim in sims.items())


def test_perfect_stream_plays_everything():
    pkts = _paced(500)
    assert _lost(pkts) == {"f1": 0, "f2": 0, "adaptive": 0}
    mos = emodel.jitter_buffer_mos(pkts, 8000)
    assert (mos["mos_f1"], mos["mos_f2"], mos["mos_adaptive"]) == (4.5, 4.5, 4.5)
    assert mos["jitter_buffers"]["f1"]["packetization_ms"] == 20


def test_late_packets_lost_by_the_small_buffer_only():
    late = dict((i, 120.0) for i in range(200, 400, 20))      # ten packets 120 ms late
    lost = _lost(_paced(500, jitter=late))
    assert lost["f1"] >= 10          # 50 ms is too short for them
    assert lost["f2"] == 0           # 200 ms holds them
    mos = emodel.jitter_buffer_mos(_paced(500, jitter=late), 8000)
    assert mos["mos_f1"] < mos["mos_f2"] == 4.5


def test_network_loss_counts_in_every_buffer():
    lost = _lost(_paced(500, gap=range(300, 306)))           # a burst of six
    assert lost == {"f1": 6, "f2": 6, "adaptive": 6}
    details = emodel.jitter_buffer_mos(_paced(500, gap=range(300, 306)), 8000)["jitter_buffers"]
    assert details["f1"]["bursts"] == {"6": 1}
    # The buffers start once five equal timestamp steps were seen: 494 - 6 packets are fed.
    assert details["f1"]["burst_ratio"] == pytest.approx(6 * (1 - 6 / 488.0))


def test_outage_like_a_migration():
    # 0.8 s without packets, then the sender continues: a run of 40 lost frames.
    pkts = _paced(1000, gap=range(400, 440))
    mos = emodel.jitter_buffer_mos(pkts, 8000)
    assert mos["jitter_buffers"]["f1"]["bursts"] == {"40": 1}
    assert 1.0 <= mos["mos_f1"] < 4.0


def test_g107_model_counts_the_buffer_delay():
    pkts = _paced(500)
    voipmonitor = emodel.jitter_buffer_mos(pkts, 8000)
    g107 = emodel.jitter_buffer_mos(pkts, 8000, model="g107", one_way_delay_ms=100)
    assert voipmonitor["mos_f2"] == 4.5
    assert g107["jitter_buffers"]["f2"]["mouth_to_ear_ms"] == 300
    assert g107["mos_f2"] < g107["mos_f1"] < 4.5               # 300 ms hurts more than 150 ms


def test_streams_that_cannot_be_simulated():
    assert emodel.simulate_jitter_buffers(_paced(50), 0)["f1"] is None            # unknown clock
    assert emodel.simulate_jitter_buffers(_paced(4), 8000)["adaptive"] is None     # no packetization yet
    assert emodel.jitter_buffer_mos([], 8000)["mos_f1"] is None
    with pytest.raises(ValueError, match="model must be one of"):
        emodel.jitter_buffer_mos(_paced(50), 8000, model="pesq")
    with pytest.raises(ValueError, match="kind must be fixed or adaptive"):
        emodel.simulate_jitter_buffers(_paced(50), 8000, (("x", "elastic", 50),))
    with pytest.raises(ValueError, match="size must be a positive whole number"):
        emodel.simulate_jitter_buffers(_paced(50), 8000, (("x", "fixed", 0),))


def _brute_force_history(delays):
    """jitterbuf.c history_get by definition: over the last 500 delays, the n-th largest and
    smallest, n = 3 % of them (at most the 20th)."""
    window = delays[-500:]
    index = min(len(window) * 3 // 100, 19)
    low = sorted(window)[index]
    high = sorted(window, reverse=True)[index]
    return low, high - low


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=-300, max_value=300), min_size=1, max_size=1200))
def test_adaptive_history_equals_jitterbuf_definition(delays):
    buf = emodel.AdaptiveJitterBuffer()
    buf.frames_in = 1                      # past the first frame: no resync on the first put
    buf.resync_threshold = -1              # keep every delay
    fed = []
    for number, delay in enumerate(delays):
        ts = 1000 + 20 * number
        buf._history_put(ts, ts + delay)   # delay = now - ts
        fed.append(delay)
        if number % 97 == 0 or number == len(delays) - 1:
            buf._history_get()
            assert (buf.min, buf.jitter) == _brute_force_history(fed)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(min_value=0, max_value=1e5, allow_nan=False),
                          st.integers(0, 65535), st.integers(0, 2 ** 32 - 1), st.integers(0, 127), st.integers(0, 1)),
                max_size=200),
       st.sampled_from([0, 8000, 16000, 48000, 90000]))
def test_any_packet_list_is_simulated_without_error(pkts, rate):
    pkts = sorted(pkts)
    result = emodel.jitter_buffer_mos(pkts, rate)
    for key in ("mos_f1", "mos_f2", "mos_adaptive"):
        assert result[key] is None or 1.0 <= result[key] <= 4.5
    g107 = emodel.jitter_buffer_mos(pkts, rate, model="g107", one_way_delay_ms=50)
    for key in ("mos_f1", "mos_f2", "mos_adaptive"):
        assert g107[key] is None or (1.0 <= g107[key] <= 4.5 and not math.isnan(g107[key]))
