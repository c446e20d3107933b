# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""RTP analysis against tshark: the committed captures and their tshark 4.0.17 output, tshark
live when it is installed, other capture formats, the VoIPmonitor statistics, and bad input."""

from __future__ import annotations

import decimal
import io
import os
import random
import shutil
import struct
import subprocess

import dpkt
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.xenlab.migration.plugins.module_utils import rtp

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "fixtures", "rtp")
IMPAIRED = os.path.join(FIXTURES, "impaired.pcap")
EDGE = os.path.join(FIXTURES, "edge_cases.pcap")
# (capture, tshark output, detect mode matching how tshark was run)
CASES = [
    ("impaired.pcap", "impaired.rtp_streams.txt", "auto"),
    ("edge_cases.pcap", "edge_cases.rtp_streams.txt", "auto"),
    ("edge_cases.pcap", "edge_cases.heuristic.rtp_streams.txt", "heuristic"),
]
# tshark prints three decimals; the issue asks for 0.01 ms, this is ten times stricter.
TOLERANCE_MS = 0.001
MS_KEYS = ("delta_min_ms", "delta_mean_ms", "delta_max_ms", "jitter_min_ms", "jitter_mean_ms", "jitter_max_ms")
HAS_TSHARK = shutil.which("tshark") is not None


def _read(name):
    with open(os.path.join(FIXTURES, name), "rb") as handle:
        return handle.read()


def _by_key(streams):
    return dict(((stream["src"], stream["dst"], stream["ssrc"]), stream) for stream in streams)


def _tshark(path, heuristic=False):
    argv = ["tshark", "-n"] + (["-o", "rtp.heuristic_rtp:TRUE"] if heuristic else []) + ["-q", "-r", path, "-z", "rtp,streams"]
    done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=True)
    return rtp.parse_tshark_streams(done.stdout)


def _assert_like_tshark(ours, theirs, times=True):
    ours, theirs = _by_key(ours), _by_key(theirs)
    assert sorted(ours) == sorted(theirs)
    assert theirs, "tshark found no stream"
    for key, row in theirs.items():
        mine = ours[key]
        assert (mine["packets"], mine["lost"]) == (row["packets"], row["lost"]), key
        for name in MS_KEYS:
            assert abs(mine[name] - row[name]) <= TOLERANCE_MS, (key, name, mine[name], row[name])
        assert ", ".join(mine["payload_names"]) == ", ".join(row["payload_names"]), key
        assert abs(mine["lost_percent"] - row["lost_percent"]) <= 0.05, key
        if times:
            assert abs(mine["start_s"] - row["start_s"]) < 1e-6 and abs(mine["end_s"] - row["end_s"]) < 1e-6, key


@pytest.mark.parametrize("pcap, table, detect", CASES)
def test_matches_the_captured_tshark_output(pcap, table, detect):
    result = rtp.analyze_pcap(os.path.join(FIXTURES, pcap), detect=detect, jitter_buffers=False)
    theirs = rtp.parse_tshark_streams(_read(table).decode("utf-8"))
    _assert_like_tshark(result["streams"], theirs)


@pytest.mark.skipif(not HAS_TSHARK, reason="tshark is not installed")
@pytest.mark.parametrize("pcap, table, detect", CASES)
def test_matches_tshark_live(pcap, table, detect):
    theirs = _tshark(os.path.join(FIXTURES, pcap), heuristic=detect == "heuristic")
    # The committed table is what this tshark prints, so the offline test above stays honest.
    assert theirs == rtp.parse_tshark_streams(_read(table).decode("utf-8"))
    result = rtp.analyze_pcap(os.path.join(FIXTURES, pcap), detect=detect, jitter_buffers=False)
    _assert_like_tshark(result["streams"], theirs)


def test_impaired_fixture_shape():
    """What the capture script did to the path shows up: clean b->a, impaired a->b."""
    result = rtp.analyze_pcap(IMPAIRED)
    assert result["detection"] == "sdp"
    assert len(result["streams"]) == 4
    for stream in result["streams"]:
        assert stream["clock_rate"] == 8000 and stream["payload_name"] == "g711U"
        if stream["src"].startswith("10.78.2.2:"):      # sent by b, captured on b
            assert stream["lost"] == 0 and sum(stream["loss_runs"].values()) == 0
            assert (stream["mos_f1"], stream["mos_f2"], stream["mos_adaptive"]) == (4.5, 4.5, 4.5)
        else:                                          # through the router: outage, bursts, delay
            assert stream["loss_runs"]["a_sl10"] == 1  # the 0.8 s outage
            assert stream["loss_runs"]["a_sl3"] >= 1   # the u32 burst of three
            assert stream["delta_max_ms"] > 800
            assert sum(stream["pdv"].values()) > 0
            for key in ("mos_f1", "mos_f2", "mos_adaptive"):
                assert 1.0 <= stream[key] < 4.0
            # The 200 ms buffer absorbs the delay spikes that the 50 ms one loses.
            assert stream["jitter_buffers"]["f2"]["lost"] < stream["jitter_buffers"]["f1"]["lost"]
    summary = result["summary"]
    assert summary["streams"] == 4 and summary["mos_f1_min"] < 4.0
    assert summary["jitter_max_ms"] == max(stream["jitter_max_ms"] for stream in result["streams"])


# --- the same packets in other capture formats and link types --------------------------------

def _frames(path):
    with open(path, "rb") as handle:
        return list(dpkt.pcap.Reader(handle))


def _write(frames, linktype=1, nano=False, pcapng=False, convert=None):
    out = io.BytesIO()
    writer = dpkt.pcapng.Writer(out, linktype=linktype) if pcapng else dpkt.pcap.Writer(out, linktype=linktype, nano=nano)
    for ts, buf in frames:
        if nano:   # the exact microsecond time stamps, in nanoseconds
            ts = decimal.Decimal("%.6f" % ts)
        writer.writepkt(convert(buf) if convert else buf, ts=ts)
    return out.getvalue()


def _sll2(buf):
    return struct.pack("!HHIHBB8s", 0x0800, 0, 2, 1, 0, 6, buf[6:12] + b"\0\0") + buf[14:]


def _sll(buf):
    return struct.pack("!HHH8sH", 0, 1, 6, buf[6:12] + b"\0\0", 0x0800) + buf[14:]


def _vlan(buf):
    return buf[:12] + struct.pack("!HH", 0x8100, 42) + buf[12:]


@pytest.mark.parametrize("variant", ["pcapng", "nanosecond", "sll2", "sll", "raw", "null", "vlan"])
def test_other_formats_give_the_same_statistics(variant):
    frames = _frames(IMPAIRED)
    data = {
        "pcapng": lambda: _write(frames, pcapng=True),
        "nanosecond": lambda: _write(frames, nano=True),
        "sll2": lambda: _write(frames, linktype=276, convert=_sll2),
        "sll": lambda: _write(frames, linktype=113, convert=_sll),
        "raw": lambda: _write(frames, linktype=101, convert=lambda buf: buf[14:]),
        "null": lambda: _write(frames, linktype=0, convert=lambda buf: struct.pack("<I", 2) + buf[14:]),
        "vlan": lambda: _write(frames, convert=_vlan),
    }[variant]()
    expected = rtp.analyze_pcap(IMPAIRED, jitter_buffers=False)
    result = rtp.analyze_capture(data, name=variant, jitter_buffers=False)
    assert result["frames"] == expected["frames"]
    assert result["streams"] == expected["streams"]


@pytest.mark.skipif(not HAS_TSHARK, reason="tshark is not installed")
def test_pcapng_matches_tshark_live(tmp_path):
    path = str(tmp_path / "impaired.pcapng")
    with open(path, "wb") as handle:
        handle.write(_write(_frames(IMPAIRED), pcapng=True))
    _assert_like_tshark(rtp.analyze_pcap(path, jitter_buffers=False)["streams"], _tshark(path))


# --- detection and filters --------------------------------------------------------------------

def test_detection_modes():
    sdp = rtp.analyze_pcap(EDGE, detect="sdp", jitter_buffers=False)
    heuristic = rtp.analyze_pcap(EDGE, detect="heuristic", jitter_buffers=False)
    auto = rtp.analyze_pcap(EDGE, jitter_buffers=False)
    assert auto["detection"] == sdp["detection"] == "sdp" and heuristic["detection"] == "heuristic"
    extra = set(_by_key(heuristic["streams"])) - set(_by_key(sdp["streams"]))
    assert extra == set([("10.9.0.1:30008", "10.9.0.2:40016", "0xED6E0008")])   # never announced
    # Heuristic mode still names dynamic types from the SDP.
    names = dict((stream["ssrc"], stream["payload_name"]) for stream in heuristic["streams"])
    assert names["0xED6E0003"] == "opus" and names["0xED6E0002"] == "L16"
    assert rtp.analyze_pcap(IMPAIRED, detect="heuristic")["detection"] == "heuristic"


def test_filters():
    everything = rtp.analyze_pcap(EDGE, jitter_buffers=False)["streams"]
    ipv6 = rtp.analyze_pcap(EDGE, hosts=["fd00:9:0:0::2"], jitter_buffers=False)["streams"]
    assert [s["src"] for s in ipv6] == ["[fd00:9::1]:30001"]
    assert rtp.analyze_pcap(EDGE, hosts=["[fd00:9::1]"], jitter_buffers=False)["streams"] == ipv6
    by_port = rtp.analyze_pcap(EDGE, ports=[40004, 30003], jitter_buffers=False)["streams"]
    assert sorted(s["ssrc"] for s in by_port) == ["0xED6E0002", "0xED6E0003"]
    by_ssrc = rtp.analyze_pcap(EDGE, ssrcs=["0xed6e0005", str(0xED6E0006)], jitter_buffers=False)["streams"]
    assert sorted(s["ssrc"] for s in by_ssrc) == ["0xED6E0005", "0xED6E0006"]
    long_ones = rtp.analyze_pcap(EDGE, min_packets=290, jitter_buffers=False)["streams"]
    assert long_ones and all(s["packets"] >= 290 for s in long_ones) and len(long_ones) < len(everything)
    assert rtp.analyze_pcap(EDGE, hosts=["192.0.2.1"])["streams"] == []


def test_parse_sdp():
    body = ("INVITE sip:a@b SIP/2.0\r\nContent-Type: application/sdp\r\n\r\n"
            "v=0\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 96\r\na=rtpmap:96 opus/48000/2\r\n"
            "m=video 0 RTP/AVP 31\r\nm=audio 4002 RTP/AVP 8\r\nc=IN IP6 2001:db8::5\r\n").encode()
    found = rtp.parse_sdp(body)
    v4 = (bytes([192, 0, 2, 1]), 4000)
    v6 = (rtp._pack_ip("2001:db8::5"), 4002)
    assert found == {v4: {96: ("opus", 48000)}, v6: {}}
    assert rtp.parse_sdp(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n") == {}
    assert rtp.parse_sdp(b"\xff\xfe garbage") == {}
    assert rtp.clock_rate(96, found[v4]) == 48000 and rtp.clock_rate(96) == 0
    assert rtp.clock_rate(101, {101: ("telephone-event", 8000)}) == 0
    assert rtp.clock_rate(97, {97: ("silly", 500)}) == 0     # below 1 kHz: no jitter, as tshark


# --- the statistics on hand-made packet lists ------------------------------------------------

def _stream(times, seqs=None, step=160, ptype=0, first_ts=1000):
    # The timestamp follows the sequence number (from the first one, across the wrap).
    seqs = list(range(len(times))) if seqs is None else seqs
    return [(float(t), seq & 0xFFFF, (first_ts + ((seq - seqs[0]) & 0xFFFF) * step) & 0xFFFFFFFF, ptype, 0)
            for t, seq in zip(times, seqs)]


def test_rfc3550_jitter_by_hand():
    # Transit differences 0 then 5 ms: J = 0, then 5/16; the mean divides by the packets so far.
    stats = rtp.wireshark_stats(_stream([0, 20, 45]))
    assert stats["jitter_max_ms"] == pytest.approx(5 / 16.0)
    assert stats["jitter_mean_ms"] == pytest.approx((0 + 5 / 16.0) / 2)
    assert stats["jitter_min_ms"] == 0.0
    assert (stats["delta_max_ms"], stats["delta_min_ms"], stats["packets"], stats["lost"]) == (25.0, 20.0, 3, 0)


def test_sequence_wrap_and_duplicates():
    seqs = [65533, 65534, 65535, 0, 2, 2]          # wrap, 1 lost, 1 duplicate
    stats = rtp.wireshark_stats(_stream([20 * i for i in range(6)], seqs))
    assert (stats["expected"], stats["packets"], stats["lost"]) == (6, 6, 0)
    stats = rtp.wireshark_stats(_stream([20 * i for i in range(5)], [65533, 65534, 65535, 0, 3]))
    assert (stats["expected"], stats["lost"]) == (7, 2)


def test_loss_runs():
    seqs = [0, 1, 2, 3, 5, 6, 10, 11, 24, 25, 26]  # runs of 1, 3 and 12
    stats = rtp.voipmonitor_stats(_stream([20 * s for s in seqs], seqs), 8000)
    runs = stats["loss_runs"]
    assert (runs["a_sl1"], runs["a_sl3"], runs["a_sl10"]) == (1, 1, 1)
    assert sum(runs.values()) == 3


def test_pdv_buckets():
    # Each packet arrives 20 ms + extra after the previous one; the extra decides the bucket.
    extras = [0, 0, 0, 49.5, 50, 69.5, 70, 89, 90, 119, 120, 150, 200, 299, 300, 5001, 0]
    times, now = [], 0.0
    for extra in extras:
        now += 20 + extra
        times.append(now)
    pdv = rtp.voipmonitor_stats(_stream(times), 8000)["pdv"]
    assert pdv == {"a_d50": 2, "a_d70": 2, "a_d90": 2, "a_d120": 1, "a_d150": 1, "a_d200": 2, "a_d300": 1}


# --- bad input --------------------------------------------------------------------------------

def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(rtp.PcapError, match="cannot read .*No such file"):
        rtp.analyze_pcap(str(tmp_path / "nope.pcap"))
    with pytest.raises(rtp.PcapError, match="cannot read"):
        rtp.analyze_pcap(str(tmp_path))


@pytest.mark.parametrize("data, message", [
    (b"", "not a pcap or pcapng capture"),
    (b"hello world, not a capture", "not a pcap or pcapng capture \\(magic 68656c6c\\)"),
    (b"\xd4\xc3\xb2\xa1\x02\x00", "pcap file header is incomplete"),
])
def test_not_a_capture(data, message):
    with pytest.raises(rtp.PcapError, match=message):
        rtp.analyze_capture(data)


@pytest.mark.parametrize("cut", [24 + 7, 24 + 16 + 10, -1, -100])
def test_truncated_pcap(cut):
    data = _read("impaired.pcap")
    with pytest.raises(rtp.PcapError, match="truncated"):
        rtp.analyze_capture(data[:cut], name="cut.pcap")


def test_truncated_and_corrupt_pcapng():
    data = _write(_frames(IMPAIRED)[:50], pcapng=True)
    assert len(rtp.analyze_capture(data)["streams"]) > 0
    for cut in (len(data) - 3, len(data) - 20, 40):
        with pytest.raises(rtp.PcapError, match="truncated"):
            rtp.analyze_capture(data[:cut])
    bad = bytearray(data)
    bad[4:8] = struct.pack("<I", 13)               # block length not a multiple of 4
    with pytest.raises(rtp.PcapError, match="invalid length"):
        rtp.analyze_capture(bytes(bad))


@pytest.mark.parametrize("kwargs, message", [
    ({"detect": "magic"}, "detect must be one of"),
    ({"hosts": ["not-an-ip"]}, "hosts must hold IPv4 or IPv6 addresses"),
    ({"hosts": "10.0.0.1"}, "hosts must be a list"),
    ({"ports": [70000]}, "ports must be a whole number from 0 to 65535"),
    ({"ports": [True]}, "ports must be a whole number"),
    ({"ssrcs": ["0xZZ"]}, "ssrc must be a number like 0xCA110000"),
    ({"ssrcs": ["0x1FFFFFFFF"]}, "ssrc must fit in 32 bits"),
    ({"min_packets": -1}, "min_packets must be a whole number"),
    ({"mos_model": "pesq"}, "mos_model must be one of"),
    ({"one_way_delay_ms": -5}, "one_way_delay_ms must be a number"),
    ({"one_way_delay_ms": float("nan")}, "one_way_delay_ms must be a number"),
    ({"jitter_buffers": "yes"}, "jitter_buffers must be true or false"),
])
def test_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        rtp.analyze_pcap(IMPAIRED, **kwargs)
    with pytest.raises(ValueError, match=message):    # checked before the file is even read
        rtp.analyze_pcap("/nonexistent/capture.pcap", **kwargs)


SMALL = _write(_frames(EDGE)[:400])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(min_value=0, max_value=len(SMALL)),
       flips=st.lists(st.tuples(st.integers(min_value=0, max_value=len(SMALL) - 1), st.integers(min_value=0, max_value=255)),
                      max_size=12))
def test_damaged_captures_fail_cleanly(cut, flips):
    data = bytearray(SMALL[:cut])
    for offset, value in flips:
        if offset < len(data):
            data[offset] = value
    try:
        result = rtp.analyze_capture(bytes(data), name="damaged.pcap", detect="heuristic")
    except rtp.PcapError as exc:
        assert "damaged.pcap" in str(exc)
    else:
        assert result["frames"] >= 0
        for stream in result["streams"]:
            assert stream["packets"] >= 1 and stream["ssrc"].startswith("0x")


@settings(max_examples=60, deadline=None)
@given(head=st.sampled_from([b"", b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\x0a\x0d\x0d\x0a",
                             b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\x4d\x3c\x2b\x1a"]),
       tail=st.binary(max_size=300))
def test_random_bytes_fail_cleanly(head, tail):
    try:
        rtp.analyze_capture(head + tail, name="random")
    except rtp.PcapError as exc:
        assert str(exc).startswith("random")


@settings(max_examples=80, deadline=None)
@given(detect=st.one_of(st.sampled_from(rtp.DETECT_MODES), st.text(max_size=5)),
       ports=st.one_of(st.none(), st.lists(st.one_of(st.integers(-5, 70000), st.booleans(), st.text(max_size=3)), max_size=3)),
       min_packets=st.one_of(st.integers(-3, 10), st.floats(allow_nan=True), st.none()),
       delay=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10 ** 6)))
def test_bad_parameters_raise_value_error(detect, ports, min_packets, delay):
    try:
        rtp.check_options(detect=detect, ports=ports, min_packets=min_packets, one_way_delay_ms=delay)
    except ValueError as exc:
        assert any(name in str(exc) for name in ("detect", "ports", "min_packets", "one_way_delay_ms"))


def test_unsupported_link_type():
    data = _write(_frames(IMPAIRED)[:10], linktype=127)       # 802.11 radiotap
    with pytest.raises(rtp.PcapError, match="link type 127, which is not supported"):
        rtp.analyze_capture(data, name="wifi.pcap")


# --- random streams, judged by tshark live ------------------------------------------------------

def _udp_frame(sport, dport, payload):
    udp = dpkt.udp.UDP(sport=sport, dport=dport, data=payload)
    udp.ulen = 8 + len(payload)
    ip = dpkt.ip.IP(src=b"\x0a\x00\x00\x01", dst=b"\x0a\x00\x00\x02", p=17, ttl=64, data=udp)
    ip.len = 20 + len(udp)
    return bytes(dpkt.ethernet.Ethernet(src=b"\x02" * 6, dst=b"\x04" * 6, type=0x0800, data=ip))


def _random_capture(rng, sdp):
    """A few streams with every oddity at random: loss, jitter, CN, events, markers, other and
    unknown payload types, timestamps in the past or far ahead, late and duplicate packets."""
    records = []
    for index in range(rng.randrange(1, 6)):
        dport = 30000 + 2 * index
        if sdp:
            body = ("v=0\r\no=- 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\n"
                    "m=audio %d RTP/AVP 0 8 96 97 101\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:97 L16/44100\r\n"
                    "a=rtpmap:101 telephone-event/8000\r\n" % dport)
            invite = ("INVITE sip:x@10.0.0.2 SIP/2.0\r\nCall-ID: %d\r\nContent-Type: application/sdp\r\n"
                      "Content-Length: %d\r\n\r\n%s" % (index, len(body), body)).encode()
            records.append((0.001 * index, _udp_frame(5060, 5060, invite)))
        seq, stamp, ssrc = rng.choice([rng.randrange(65536), 65530]), rng.randrange(1 << 32), rng.randrange(1 << 32)
        main = rng.choice([0, 8, 96, 97, 18])
        step = {96: 960, 97: 882}.get(main, 160)
        now = 0.0
        for _number in range(rng.randrange(2, 250)):
            seq, stamp, now = seq + 1, stamp + step, now + 20.0
            roll = rng.random()
            if roll < 0.03:
                continue
            ptype = 13 if roll < 0.05 else 101 if roll < 0.07 else rng.choice([0, 8, 99, 120]) if roll < 0.08 else main
            marker = 1 if 0.08 <= roll < 0.09 else 0
            seq_out = seq - rng.randrange(1, 4) if rng.random() < 0.02 else seq
            stamp_out = stamp - rng.choice([160, (1 << 31) + 5]) if rng.random() < 0.02 else stamp
            arrival = 1.0 + (now + rng.choice([0, 0, rng.uniform(0, 5), rng.uniform(0, 60)])) / 1000.0
            payload = struct.pack("!BBHII", 0x80, (marker << 7) | ptype, seq_out & 0xFFFF, stamp_out & 0xFFFFFFFF, ssrc)
            records.append((arrival, _udp_frame(20000 + 2 * index, dport, payload + b"\xd5" * 40)))
    records.sort(key=lambda record: record[0])
    out = io.BytesIO()
    writer = dpkt.pcap.Writer(out)
    for when, frame in records:
        writer.writepkt(frame, ts=decimal.Decimal("1700000000.000000") + decimal.Decimal("%.6f" % when))
    return out.getvalue()


@pytest.mark.skipif(not HAS_TSHARK, reason="tshark is not installed")
@pytest.mark.parametrize("seed", [3, 14, 15, 92])
def test_random_streams_match_tshark_live(seed, tmp_path):
    rng = random.Random(seed)
    sdp = seed % 2 == 0
    data = _random_capture(rng, sdp)
    path = str(tmp_path / "random.pcap")
    with open(path, "wb") as handle:
        handle.write(data)
    result = rtp.analyze_capture(data, detect="sdp" if sdp else "heuristic", jitter_buffers=False)
    _assert_like_tshark(result["streams"], _tshark(path, heuristic=not sdp))
