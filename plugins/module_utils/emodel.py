# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ITU-T G.107 E-model for G.711 and VoIPmonitor-style MOS after simulated jitter buffers.

E-model (ITU-T G.107, 06/2015, section 3 and Table 3 defaults)::

    R = Ro - Is - Id - Ie,eff + A
    Ie,eff = Ie + (95 - Ie) * Ppl / (Ppl / BurstR + Bpl)       (Ppl in percent)
    MOS = 1 + 0.035 R + R (R - 60) (100 - R) 7e-6   for 0 < R < 100 (1 below, 4.5 above)

With every parameter at its default R = 93.2 (MOS 4.41). G.711 has Ie = 0; its packet-loss
robustness Bpl is 25.1 with packet-loss concealment, 4.3 without (ITU-T G.113 Appendix I).

The thesis' numbers come from VoIPmonitor (2012), which differs on purpose and is reproduced
by ``voipmonitor_mos_g711`` (calltable.cpp ``calculate_mos_g711``): 4.5 when nothing was lost
(hence the thesis' "max 4.5"), 1 above 50 % loss, otherwise R = 93.2062 - 95 Ppl/(Ppl/BurstR +
17.2647) mapped by VoIPmonitor's own cubic fit, clamped to 1..4.5; delay is not used.

Jitter buffers (what VoIPmonitor reports as mos_f1, mos_f2, mos_adapt): each RTP stream is
replayed through Asterisk's fixed jitter buffer of 50 ms (F1) and 200 ms (F2) and Asterisk's
adaptive jitter buffer (jitterbuf.c) limited to 500 ms, driven the way VoIPmonitor's
``RTP::jitterbuffer`` drives them: the playout clock advances one packetization interval at a
time as packets arrive, a packet that arrives after its playout time is lost for that buffer,
and every run of consecutive missing playouts is one loss burst. Loss ratio and burst ratio
(BurstR = mean burst length x (1 - loss ratio), VoIPmonitor's ``burstr_calculate``) of the
played-out stream then give the MOS.

Departures from VoIPmonitor (for clarity, not accuracy): the buffers start once five
consecutive in-sequence packets showed the same timestamp step (VoIPmonitor's rule, without its
quirk of comparing against the last *accepted* packet); the 1-second "silence" check uses the
previous packet rather than the previous accepted one; the loss ratio's denominator is the
number of voice packets received, not RFC 3550's post-probation count; Asterisk's 2005-2012
fixed buffer is used, without the tolerances VoIPmonitor added in 2014. The caller says which
payload types are not voice (``dtmf_pts``: RFC 4733 events and, from ``rtp``, comfort noise).

The three buffers are driven in one pass by the same clock. The adaptive buffer keeps its
delay history sorted, so its jitter estimate (jitterbuf.c's ``history_get``: the n-th largest
minus the n-th smallest of the last 500 delays, n = 3 %) costs a bisection per frame instead
of a recount of the window; the values are the same.
"""

from __future__ import annotations

import bisect
import math

# ITU-T G.107 Table 3 default values.
G107_DEFAULTS = {
    "SLR": 8.0, "RLR": 2.0, "STMR": 15.0, "LSTR": 18.0, "Ds": 3.0, "Dr": 3.0, "TELR": 65.0,
    "WEPL": 110.0, "T": 0.0, "Tr": 0.0, "Ta": 0.0, "qdu": 1.0, "Ie": 0.0, "Bpl": 4.3,
    "Ppl": 0.0, "BurstR": 1.0, "A": 0.0, "Nc": -70.0, "Nfor": -64.0, "Ps": 35.0, "Pr": 35.0,
}
G711_BPL_PLC = 25.1      # G.113 Appendix I: G.711 with packet-loss concealment
G711_BPL_NO_PLC = 4.3    # G.113 Appendix I: G.711 without concealment
VOIPMONITOR_BPL = 17.2647
MOS_MODELS = ("voipmonitor", "g107")
MIN_LOST = 5   # VoIPmonitor's burstr_calculate ignores smaller losses
# (name, kind, buffer size ms) as VoIPmonitor's channel_fix1, channel_fix2, channel_adapt.
JITTER_BUFFERS = (("f1", "fixed", 50), ("f2", "fixed", 200), ("adaptive", "adaptive", 500))


def _log10(value):
    return math.log10(value)


def g107_components(**params):
    """Ro, Is, Id, Ie,eff, A and R of ITU-T G.107 for ``params`` (Table 3 names) over defaults.

    ``T``, ``Ta`` and ``Tr`` are in ms, ``Ppl`` in percent. Returns a dict of every term.
    """
    unknown = set(params) - set(G107_DEFAULTS)
    if unknown:
        raise ValueError("unknown E-model parameter(s): %s" % ", ".join(sorted(unknown)))
    p = dict(G107_DEFAULTS)
    p.update((key, float(value)) for key, value in params.items())
    if p["Ppl"] < 0 or p["Ppl"] > 100:
        raise ValueError("Ppl is a percentage (0..100), got %r" % p["Ppl"])
    if p["BurstR"] <= 0:
        raise ValueError("BurstR must be positive, got %r" % p["BurstR"])
    if p["qdu"] < 1:
        raise ValueError("qdu must be at least 1, got %r" % p["qdu"])
    slr, rlr, t_ms, tr_ms, ta_ms = p["SLR"], p["RLR"], p["T"], p["Tr"], p["Ta"]
    if min(t_ms, tr_ms, ta_ms) < 0:
        raise ValueError("delays must not be negative")
    olr = slr + rlr
    # 3.2 basic signal-to-noise ratio
    nfo = p["Nfor"] + rlr
    pre = p["Pr"] + 10 * _log10(1 + 10 ** ((10 - p["LSTR"]) / 10))
    nor = rlr - 121 + pre + 0.008 * (pre - 35) ** 2
    nos = p["Ps"] - slr - p["Ds"] - 100 + 0.004 * (p["Ps"] - olr - p["Ds"] - 14) ** 2
    no = 10 * _log10(10 ** (p["Nc"] / 10) + 10 ** (nos / 10) + 10 ** (nor / 10) + 10 ** (nfo / 10))
    ro = 15 - 1.5 * (slr + no)
    # 3.3 simultaneous impairment factor
    xolr = olr + 0.2 * (64 + no - rlr)
    iolr = 20 * ((1 + (xolr / 8) ** 8) ** (1 / 8.0) - xolr / 8)
    stmro = -10 * _log10(10 ** (-p["STMR"] / 10) + math.exp(-t_ms / 4) * 10 ** (-p["TELR"] / 10))
    ist = (12 * (1 + ((stmro - 13) / 6) ** 8) ** (1 / 8.0)
           - 28 * (1 + ((stmro + 1) / 19.4) ** 35) ** (1 / 35.0)
           - 13 * (1 + ((stmro - 3) / 33) ** 13) ** (1 / 13.0) + 29)
    q = 37 - 15 * _log10(p["qdu"])
    g = 1.07 + 0.258 * q + 0.0602 * q ** 2
    y = (ro - 100) / 15 + 46 / 8.4 - g / 9
    z = 46 / 30.0 - g / 40
    iq = 15 * _log10(1 + 10 ** y + 10 ** z)
    is_ = iolr + ist + iq
    # 3.4 delay impairment factor
    terv = p["TELR"] - 40 * _log10((1 + t_ms / 10) / (1 + t_ms / 150)) + 6 * math.exp(-0.3 * t_ms ** 2)
    if p["STMR"] < 9:
        terv += ist / 2
    roe = -1.5 * (no - rlr)
    re_ = 80 + 2.5 * (terv - 14)
    idte = ((roe - re_) / 2 + math.sqrt((roe - re_) ** 2 / 4 + 100) - 1) * (1 - math.exp(-t_ms))
    if p["STMR"] > 20:
        idte = math.sqrt(idte ** 2 + ist ** 2)
    rle = 10.5 * (p["WEPL"] + 7) * (tr_ms + 1) ** -0.25
    idle = (ro - rle) / 2 + math.sqrt((ro - rle) ** 2 / 4 + 169)
    idd = delay_impairment_idd(ta_ms)
    id_ = idte + idle + idd
    # 3.5 equipment impairment factor
    ie_eff = effective_equipment_impairment(p["Ppl"], p["BurstR"], p["Ie"], p["Bpl"])
    r = ro - is_ - id_ - ie_eff + p["A"]
    return {"Ro": ro, "Is": is_, "Id": id_, "Idte": idte, "Idle": idle, "Idd": idd, "Ie_eff": ie_eff,
            "A": p["A"], "R": r, "No": no}


def delay_impairment_idd(ta_ms):
    """Idd of G.107 (mT = 100 ms, sT = 1): 0 up to 100 ms absolute delay."""
    if ta_ms <= 100:
        return 0.0
    x = _log10(ta_ms / 100.0) / _log10(2)
    return 25 * ((1 + x ** 6) ** (1 / 6.0) - 3 * (1 + (x / 3) ** 6) ** (1 / 6.0) + 2)


def effective_equipment_impairment(ppl, burst_r=1.0, ie=0.0, bpl=G711_BPL_PLC):
    """Ie,eff = Ie + (95 - Ie) * Ppl / (Ppl / BurstR + Bpl), Ppl in percent."""
    if ppl <= 0:
        return float(ie)
    return ie + (95 - ie) * ppl / (ppl / burst_r + bpl)


def r_factor(ppl=0.0, burst_r=1.0, delay_ms=0.0, ie=0.0, bpl=G711_BPL_PLC, advantage=0.0):
    """R for G.711 with everything else at G.107 defaults.

    ``delay_ms`` is the one-way mouth-to-ear delay: T = Ta = delay, Tr = 2 x delay.
    """
    return g107_components(Ppl=ppl, BurstR=burst_r, T=delay_ms, Ta=delay_ms, Tr=2 * delay_ms,
                           Ie=ie, Bpl=bpl, A=advantage)["R"]


def mos_from_r(r):
    """G.107 Annex B: MOS (CQE) from R."""
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return max(1.0, 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6)


def voipmonitor_mos_g711(ppl, burst_r):
    """VoIPmonitor's calculate_mos_g711 (version 2): ``ppl`` is a ratio (0..1)."""
    if ppl == 0 or burst_r == 0:
        return 4.5
    if ppl > 0.5:
        return 1.0
    r = 93.2062077233 - 95.0 * (ppl * 100 / (ppl * 100 / burst_r + VOIPMONITOR_BPL))
    mos = 2.06405 + 0.031738 * r - 0.000356641 * r * r + 2.93143e-6 * r * r * r
    return min(4.5, max(1.0, mos))


def burst_ratio(bursts, received):
    """(loss ratio, BurstR) from ``{burst_length: count}`` as VoIPmonitor's burstr_calculate.

    BurstR = mean observed burst length / mean burst length of random loss (1 / (1 - p)).
    Returns (0.0, 0.0) without loss and, like VoIPmonitor since 2013, when fewer than
    ``MIN_LOST`` frames were lost (the adaptive buffer interpolates a frame whenever it grows).
    """
    lost = sum(length * count for length, count in bursts.items())
    count = sum(bursts.values())
    if received <= 0 or count <= 0 or lost < MIN_LOST:
        return 0.0, 0.0
    loss = float(lost) / received
    return loss, abs((float(lost) / count) * (1.0 - loss))


# Abstract jitter-buffer return codes (Asterisk abstract_jb.c).
JB_OK, JB_DROP, JB_INTERP, JB_NOFRAME = range(4)


class _Frame(object):
    __slots__ = ("ts", "ms", "seq", "marker", "after_dtmf", "delivery")

    def __init__(self, ts, ms, seq, marker, after_dtmf):
        self.ts = ts
        self.ms = ms
        self.seq = seq
        self.marker = marker
        self.after_dtmf = after_dtmf
        self.delivery = 0


class FixedJitterBuffer(object):
    """Asterisk's fixed jitter buffer (main/fixedjitterbuf.c, 2005-2012), times in ms."""

    def __init__(self, size_ms, resync_threshold=None):
        self.delay = size_ms
        self.resync_threshold = size_ms if resync_threshold is None else resync_threshold
        self.frames = []          # sorted by delivery
        self.rxcore = 0
        self.next_delivery = 0
        self.force_resynch = False

    def _resynch(self, frame, now):
        if not self.frames:
            return self.put_first(frame, now)
        tail = self.frames[-1]
        offset = (frame.ts - tail.ts) - tail.ms
        if not self.force_resynch and -self.resync_threshold < offset < self.resync_threshold:
            return JB_DROP
        self.force_resynch = False
        self.rxcore -= offset
        for queued in self.frames:
            queued.ts += offset
        return self.put(frame, now)

    def put_first(self, frame, now):
        self.rxcore = now - frame.ts
        self.next_delivery = now + self.delay
        return self.put(frame, now)

    def put(self, frame, now):
        delivery = self.rxcore + self.delay + frame.ts
        if delivery < self.next_delivery:
            return self._resynch(frame, now)      # too late
        if delivery > self.next_delivery + self.delay + self.resync_threshold:
            return self._resynch(frame, now)      # far in the future
        frames = self.frames
        idx = len(frames)
        while idx and frames[idx - 1].delivery > delivery:
            idx -= 1
        before = frames[idx - 1] if idx else None
        after = frames[idx] if idx < len(frames) else None
        if before is not None and (before.delivery == delivery or delivery < before.delivery + before.ms
                                   or (after is not None and delivery + frame.ms > after.delivery)):
            return self._resynch(frame, now)      # slot already taken
        self.force_resynch = False
        frame.delivery = delivery
        frames.insert(idx, frame)
        return JB_OK

    def next(self):
        return self.next_delivery

    def playout_delay(self):
        return self.delay

    def _head(self):
        frame = self.frames.pop(0)
        self.next_delivery = frame.delivery + frame.ms
        return frame

    def get(self, now, interpl):
        if now < self.next_delivery:
            return JB_NOFRAME, None
        if not self.frames:
            self.next_delivery += interpl
            return JB_INTERP, None
        head = self.frames[0]
        if now > head.delivery + head.ms:
            return JB_DROP, self._head()
        if now < head.delivery:
            self.next_delivery += interpl
            return JB_INTERP, None
        return JB_OK, self._head()


# Asterisk jitterbuf.h
_JB_HISTORY_SZ = 500
_JB_HISTORY_DROPPCT = 3
_JB_HISTORY_MAXBUF_SZ = _JB_HISTORY_SZ * 4 // 100
_JB_TARGET_EXTRA = 40
_JB_ADJUST_DELAY = 40
_LONGMAX = 2147483647


class AdaptiveJitterBuffer(object):
    """Asterisk's adaptive jitter buffer (main/jitterbuf.c by Steve Kann), voice frames only."""

    def __init__(self, max_jitterbuf=500, resync_threshold=500, max_contig_interp=10):
        self.max_jitterbuf = max_jitterbuf
        self.resync_threshold = resync_threshold
        self.max_contig_interp = max_contig_interp
        self.frames = []      # sorted by (resynced) ts
        self.keys = []
        self.history = [0] * _JB_HISTORY_SZ
        self.hist_ptr = 0
        # The last JB_HISTORY_SZ delays, sorted: jitterbuf.c's hist_maxbuf/hist_minbuf (the 20
        # largest and smallest, recomputed whenever they may have changed) are its ends.
        self.window = []
        self.jitter = 0
        self.min = 0
        self.current = self.target = _JB_TARGET_EXTRA
        self.last_adjustment = 0
        self.next_voice_ts = 0
        self.last_voice_ms = 0
        self.silence_begin_ts = -1
        self.cnt_contig_interp = 0
        self.resync_offset = 0
        self.last_delay = 0
        self.cnt_delay_discont = 0
        self.frames_in = 0

    def _history_put(self, ts, now):
        delay = now - (ts - self.resync_offset)
        if ts <= 0:
            return False
        if self.resync_threshold != -1:
            if self.frames_in == 0:
                self.cnt_delay_discont = 0
                self.hist_ptr = 0
                self.window = []
                self.resync_offset = ts - now
                self.last_delay = delay = 0
            elif abs(delay - self.last_delay) > 2 * self.jitter + self.resync_threshold:
                self.cnt_delay_discont += 1
                if self.cnt_delay_discont <= 3:
                    return True          # drop the frame
                self.cnt_delay_discont = 0
                self.hist_ptr = 0
                self.window = []
                self.resync_offset = ts - now
                self.last_delay = delay = 0
            else:
                self.last_delay = delay
                self.cnt_delay_discont = 0
        slot = self.hist_ptr % _JB_HISTORY_SZ
        window = self.window
        if self.hist_ptr >= _JB_HISTORY_SZ:
            del window[bisect.bisect_left(window, self.history[slot])]
        self.history[slot] = delay
        bisect.insort(window, delay)
        self.hist_ptr += 1
        return False

    def _history_get(self):
        window = self.window
        count = len(window)
        if not count:
            return    # nothing in the history yet: jitterbuf.c's zeroed buffers, min = jitter = 0
        index = min(count * _JB_HISTORY_DROPPCT // 100, _JB_HISTORY_MAXBUF_SZ - 1)
        self.min = window[index]
        self.jitter = window[-1 - index] - self.min

    def _queue_put(self, frame):
        ts = frame.ts - self.resync_offset
        frame.delivery = ts   # jitterbuf.c keeps the resynced ts in the frame
        idx = len(self.keys)
        while idx and self.keys[idx - 1] > ts:
            idx -= 1
        self.keys.insert(idx, ts)
        self.frames.insert(idx, frame)

    def _queue_get(self, ts):
        if self.frames and ts >= self.keys[0]:
            self.keys.pop(0)
            return self.frames.pop(0)
        return None

    def put_first(self, frame, now):
        return self.put(frame, now)

    def playout_delay(self):
        return self.current

    def put(self, frame, now):
        if self.frames and self.keys[-1] - self.keys[0] >= self.max_jitterbuf:
            return JB_DROP
        if self._history_put(frame.ts, now):
            return JB_DROP
        self.frames_in += 1
        self._queue_put(frame)
        return JB_OK

    def next(self):
        if self.silence_begin_ts:
            if self.frames:
                self._history_get()
                if self.target - self.current < -_JB_TARGET_EXTRA:
                    return self.last_adjustment + 10
                return self.keys[0] + self.target
            return _LONGMAX
        return self.next_voice_ts

    def get(self, now, interpl):
        self._history_get()
        self.target = self.jitter + self.min + _JB_TARGET_EXTRA
        if self.max_jitterbuf and self.target - self.min > self.max_jitterbuf:
            self.target = self.min + self.max_jitterbuf
        diff = self.target - self.current
        if not self.silence_begin_ts:
            span = (self.keys[-1] - self.keys[0]) if self.frames else 0
            if diff > 0 and (self.last_adjustment + _JB_ADJUST_DELAY < now or diff > span):
                self.current += interpl          # grow
                self.next_voice_ts += interpl
                self.last_voice_ms = interpl
                self.last_adjustment = now
                self._count_interp()
                return JB_INTERP, None
            frame = self._queue_get(self.next_voice_ts - self.current)
            if frame is not None and frame.delivery + self.current < self.next_voice_ts:
                if frame.delivery + self.current > self.next_voice_ts - self.last_voice_ms:
                    self.next_voice_ts = frame.delivery + self.current + frame.ms
                    self.cnt_contig_interp = 0
                    return JB_OK, frame
                return JB_DROP, frame            # late
            if frame is not None and frame.ms > 0:
                self.last_voice_ms = frame.ms
            if diff < -_JB_TARGET_EXTRA and ((frame is None and self.last_adjustment + 80 < now)
                                             or self.last_adjustment + 500 < now):
                self.last_adjustment = now       # shrink
                self.cnt_contig_interp = 0
                if frame is not None:
                    self.current -= frame.ms
                    return JB_DROP, frame
                self.current -= self.last_voice_ms
                return JB_NOFRAME, None
            if frame is None:
                self.next_voice_ts += interpl    # lost frame
                self.last_voice_ms = interpl
                self._count_interp()
                return JB_INTERP, None
            self.next_voice_ts += frame.ms
            self.cnt_contig_interp = 0
            return JB_OK, frame
        if diff < -_JB_TARGET_EXTRA and self.last_adjustment + 10 <= now:
            self.current -= interpl
            self.last_adjustment = now
        frame = self._queue_get(now - self.current)
        if frame is None:
            return JB_NOFRAME, None
        if frame.delivery < self.silence_begin_ts:
            return JB_DROP, frame
        self.current = self.target
        self.silence_begin_ts = 0
        self.next_voice_ts = frame.delivery + self.current + frame.ms
        self.last_voice_ms = frame.ms
        return JB_OK, frame

    def _count_interp(self):
        self.cnt_contig_interp += 1
        if self.max_contig_interp and self.cnt_contig_interp >= self.max_contig_interp:
            self.silence_begin_ts = self.next_voice_ts - self.current


def _detect_packetization(pkts, ticks_per_ms):
    """Index of the first packet fed to the buffers and the packetization in ms, or (None, 0).

    VoIPmonitor waits for five consecutive in-sequence packets with the same positive
    timestamp step before it starts its jitter-buffer simulators.
    """
    same = 0
    last_step = None
    for idx in range(1, len(pkts)):
        prev, cur = pkts[idx - 1], pkts[idx]
        if cur[1] != (prev[1] + 1) & 0xFFFF:
            continue
        step = ((cur[2] - prev[2]) & 0xFFFFFFFF) // ticks_per_ms
        same = same + 1 if step == last_step and step > 0 else 0
        last_step = step
        if same >= 5:
            return idx, step
    return None, 0


class _Channel(object):
    """One simulated jitter buffer and VoIPmonitor's loss-burst accounting around it."""

    __slots__ = ("buf", "bursts", "last_loss_burst", "last_seq", "last_ms", "delay_sum", "played")

    def __init__(self, kind, size_ms):
        self.buf = FixedJitterBuffer(size_ms) if kind == "fixed" else AdaptiveJitterBuffer(size_ms, size_ms)
        self.bursts = {}
        self.last_loss_burst = 0
        self.last_seq = None
        self.last_ms = 0
        self.delay_sum = 0
        self.played = 0

    def deliver(self, now, ptime):
        """abstract_jb.c jb_get_and_deliver with VoIPmonitor's loss-burst accounting."""
        buf = self.buf
        nxt = buf.next()
        while now >= nxt:
            res, frame = buf.get(now, ptime)
            if res == JB_OK:
                last_seq = self.last_seq
                silence = (last_seq is not None and (frame.seq - last_seq) & 0xFFFF == 1
                           and abs(frame.ts - self.last_ms) > ptime)
                burst = self.last_loss_burst
                if not silence and not frame.marker and 0 < burst < 1024 and not frame.after_dtmf:
                    self.bursts[burst] = self.bursts.get(burst, 0) + 1
                self.last_loss_burst = 0
                self.last_seq = frame.seq
                self.last_ms = frame.ts
                self.played += 1
                self.delay_sum += buf.playout_delay()
            elif res == JB_NOFRAME:
                self.last_loss_burst += 1
                return
            else:   # JB_DROP (late frame) or JB_INTERP (missing frame)
                self.last_loss_burst += 1
            nxt = buf.next()


def simulate_jitter_buffers(pkts, clock_rate, buffers=JITTER_BUFFERS, dtmf_pts=(101,)):
    """Replay one stream through jitter buffers; per buffer its loss bursts and played frames.

    ``pkts`` = [(time_ms, seq, timestamp, pt, marker), ...] in arrival order; ``buffers`` =
    [(name, "fixed"|"adaptive", size_ms), ...], all driven in one pass by the same clock.
    Returns ``{name: result}`` with result a dict of ``bursts`` ({length: count}),
    ``received`` (voice packets fed), ``packetization_ms`` and ``delay_ms`` (mean playout
    delay of the played frames: the size of a fixed buffer, the adaptive buffer's current
    delay), or None for every buffer when the stream cannot be simulated (unknown clock rate
    or packetization).
    """
    for name, kind, size in buffers:
        if kind not in ("fixed", "adaptive"):
            raise ValueError("jitter buffer %r: kind must be fixed or adaptive, got %r" % (name, kind))
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise ValueError("jitter buffer %r: size must be a positive whole number of ms, got %r" % (name, size))
    if not pkts or not isinstance(clock_rate, int) or clock_rate < 1000:
        return dict((name, None) for name, _kind, _size in buffers)
    ticks_per_ms = clock_rate // 1000
    start, ptime = _detect_packetization(pkts, ticks_per_ms)
    if start is None or ptime < 2:
        return dict((name, None) for name, _kind, _size in buffers)
    channels = [_Channel(kind, size) for _name, kind, size in buffers]
    ptime_us = ptime * 1000
    timebase = None
    created = False
    last_ts = 0
    received = 0
    last_dtmf = False
    ext = None
    prev_arrival = prev_stamp = prev_seq = None
    for t_ms, seq, stamp, ptype, marker in pkts[start:]:
        arrival = int(round(t_ms * 1000))          # microseconds, like a struct timeval
        ext = stamp if ext is None else _extend(ext, stamp)
        is_dtmf = ptype in dtmf_pts
        if timebase is None:
            timebase = last_ts = arrival
        else:
            msdiff = (arrival - (last_ts + ptime_us)) // 1000
            if msdiff > ptime * 1000:
                last_ts = arrival                    # a gap of minutes: restart the clock
            else:
                transit = (arrival - prev_arrival) / 1000.0 - (ext - prev_stamp) / float(ticks_per_ms)
                sequence_ms = ((seq - prev_seq) & 0xFFFF) * ptime
                if msdiff > 1000 and transit <= sequence_ms + 200:
                    marker = 1                       # long silence, not loss
                while msdiff >= ptime:
                    now = (last_ts - timebase) // 1000
                    for channel in channels:
                        if marker or last_dtmf:
                            channel.last_loss_burst = 0
                        channel.deliver(now, ptime)
                    last_ts += ptime_us
                    msdiff -= ptime
        if not is_dtmf:
            # ast_jb_put: only voice frames enter the buffers; the first one creates them.
            now = (arrival - timebase) // 1000
            ts = ext // ticks_per_ms
            for channel in channels:
                frame = _Frame(ts, ptime, seq, marker, last_dtmf)
                if created:
                    channel.buf.put(frame, now)
                else:
                    channel.buf.put_first(frame, now)
            created = True
            received += 1
        last_dtmf, prev_arrival, prev_stamp, prev_seq = is_dtmf, arrival, ext, seq
    return dict((name, {"bursts": channel.bursts, "received": received, "packetization_ms": ptime,
                        "delay_ms": (float(channel.delay_sum) / channel.played) if channel.played else None})
                for (name, _kind, _size), channel in zip(buffers, channels))


def simulate_jitter_buffer(pkts, clock_rate, kind="fixed", size_ms=50, dtmf_pts=(101,)):
    """:func:`simulate_jitter_buffers` for one buffer: its result dict, or None."""
    return simulate_jitter_buffers(pkts, clock_rate, (("jb", kind, size_ms),), dtmf_pts)["jb"]


def _extend(prev, raw):
    ext = (prev & ~0xFFFFFFFF) | raw
    if ext + 0x80000000 < prev:
        ext += 0x100000000
    elif prev + 0x80000000 < ext:
        ext -= 0x100000000
    return ext


def jitter_buffer_mos(pkts, clock_rate, model="voipmonitor", one_way_delay_ms=0.0, dtmf_pts=(101,)):
    """``mos_f1``, ``mos_f2``, ``mos_adaptive`` and per-buffer details for one stream.

    ``model="voipmonitor"`` scores like VoIPmonitor (max 4.5, delay ignored); ``"g107"`` uses
    the full E-model with G.711+PLC (Bpl 25.1) and mouth-to-ear delay = ``one_way_delay_ms`` +
    the buffer's mean playout delay.
    A MOS is None when the stream cannot be simulated (unknown clock rate or packetization).
    """
    if model not in MOS_MODELS:
        raise ValueError("model must be one of %s, got %r" % (", ".join(MOS_MODELS), model))
    result = {}
    details = {}
    sims = simulate_jitter_buffers(pkts, clock_rate, JITTER_BUFFERS, dtmf_pts)
    for name, kind, size in JITTER_BUFFERS:
        sim = sims[name]
        if sim is None:
            result["mos_" + name] = None
            details[name] = None
            continue
        loss, burst = burst_ratio(sim["bursts"], sim["received"])
        info = {
            "kind": kind, "size_ms": size, "packetization_ms": sim["packetization_ms"],
            "lost": sum(length * count for length, count in sim["bursts"].items()),
            "bursts": dict((str(length), count) for length, count in sorted(sim["bursts"].items())),
            "loss_percent": loss * 100, "burst_ratio": burst,
        }
        if model == "voipmonitor":
            mos = voipmonitor_mos_g711(loss, burst)
        else:
            playout = size if sim["delay_ms"] is None else sim["delay_ms"]
            delay = one_way_delay_ms + playout
            r = r_factor(ppl=min(loss * 100, 100.0), burst_r=burst if burst > 0 else 1.0, delay_ms=delay)
            info["r_factor"] = r
            info["mouth_to_ear_ms"] = delay
            mos = mos_from_r(r)
        result["mos_" + name] = mos
        details[name] = info
    result["jitter_buffers"] = details
    return result
