# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parsers for ping, sipp and the UDP probe, on real captures (tests/fixtures/probe) and malformed input."""

from __future__ import annotations

import glob
import json
import os
import re

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.xenlab.migration.plugins.module_utils import parsers

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "fixtures", "probe")


def fixture(*parts):
    with open(os.path.join(FIXTURES, *parts)) as handle:
        return handle.read()


# --- ping ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(os.path.basename(p) for p in glob.glob(os.path.join(FIXTURES, "ping", "*.txt"))))
def test_ping_fixture_events_agree_with_ping_statistics(name):
    parsed = parsers.parse_ping(fixture("ping", name))
    stats = parsed["statistics"]
    assert stats is not None
    replies = [e for e in parsed["events"] if e["type"] == "reply" and not e["duplicate"]]
    assert len(replies) == stats["received"]
    assert len([e for e in parsed["events"] if e["type"] == "icmp_error"]) == stats["errors"]
    # Every probe ping counts was either answered or reported lost, except the last one sent
    # (ping prints "no answer yet" for a probe only when it sends the next one).
    seqs = set(e["seq"] for e in parsed["events"])
    if name.startswith("d-o-"):  # captured with -O
        assert stats["transmitted"] - 1 <= len(seqs) <= stats["transmitted"]


def test_ping_reply_fields():
    parsed = parsers.parse_ping(fixture("ping", "d-o-10ms-clean.txt"))
    assert (parsed["host"], parsed["address"], parsed["payload_bytes"]) == ("10.231.2.2", "10.231.2.2", 56)
    first = parsed["events"][0]
    assert first["type"] == "reply" and first["seq"] == 1 and first["ttl"] == 63 and first["bytes"] == 64
    line = fixture("ping", "d-o-10ms-clean.txt").split("\n")[1]
    assert first["timestamp_s"] == float(line[1:line.index("]")])
    assert first["rtt_ms"] == float(re.search(r"time=([\d.]+)", line).group(1))
    assert parsed["statistics"]["transmitted"] == 100 and parsed["statistics"]["loss_pct"] == 0.0


def test_ping_header_variants_and_extra_statistics():
    interface = parsers.parse_ping(fixture("ping", "d-o-interface.txt"))
    assert interface["address"] == "10.231.2.2" and interface["events"][0]["from"] == "10.231.2.2"
    ipv6 = parsers.parse_ping(fixture("ping", "d-o-ipv6-loopback.txt"))
    assert (ipv6["host"], ipv6["address"], ipv6["payload_bytes"]) == ("::1", "::1", 56)
    adaptive = parsers.parse_ping(fixture("ping", "d-adaptive.txt"))
    assert adaptive["statistics"]["ipg_ms"] is not None and adaptive["statistics"]["ewma_ms"] is not None
    plain = parsers.parse_ping(fixture("ping", "plain-200ms.txt"))
    assert all(e["timestamp_s"] is None for e in plain["events"]) and len(plain["events"]) == 3


def test_ping_unreachable_errors():
    parsed = parsers.parse_ping(fixture("ping", "d-o-unreachable.txt"))
    errors = [e for e in parsed["events"] if e["type"] == "icmp_error"]
    assert [e["seq"] for e in errors] == [1, 2, 3, 4, 5, 6]
    assert all(e["from"] == "10.231.1.1" and e["message"] == "Destination Host Unreachable" for e in errors)
    stats = parsed["statistics"]
    assert (stats["received"], stats["errors"], stats["pipe"], stats["rtt_avg_ms"]) == (0, 6, 6, None)
    records = parsers.records_from_ping(parsed)
    assert [r[0] for r in records] == [1, 2, 3, 4, 5, 6] and all(r[2] is None for r in records)


def test_records_from_ping_send_times_come_from_no_answer_stamps():
    text = fixture("ping", "d-o-10ms-outage300.txt")
    parsed = parsers.parse_ping(text)
    records = dict((seq, (sent, recv)) for seq, sent, recv in parsers.records_from_ping(parsed))
    no_answer = [e for e in parsed["events"] if e["type"] == "no_answer"]
    assert no_answer
    for event in no_answer:
        # "no answer yet for N" is printed just before N+1 goes out
        assert records[event["seq"] + 1][0] == event["timestamp_s"]
        assert records[event["seq"]][1] is None
    seqs = sorted(records)
    assert seqs == list(range(seqs[0], seqs[-1] + 1))
    sends = [records[seq][0] for seq in seqs]
    assert sends == sorted(sends)


def test_records_from_ping_needs_timestamps():
    with pytest.raises(parsers.PingParseError, match="line 2: expected a -D timestamp") as info:
        parsers.records_from_ping(parsers.parse_ping(fixture("ping", "plain-200ms.txt")))
    assert info.value.lineno == 2


def test_records_from_ping_unwraps_and_drops_duplicates():
    lines = ["PING 10.0.0.1 (10.0.0.1) 56(84) bytes of data."]
    t = 100.0
    for seq in (65534, 65535, 0, 1):
        lines.append("[%.6f] 64 bytes from 10.0.0.1: icmp_seq=%d ttl=64 time=0.100 ms" % (t, seq))
        t += 0.01
    lines.append("[%.6f] 64 bytes from 10.0.0.1: icmp_seq=1 ttl=64 time=0.300 ms (DUP!)" % t)
    parsed = parsers.parse_ping("\n".join(lines) + "\n")
    assert parsed["events"][-1]["duplicate"] is True
    records = parsers.records_from_ping(parsed)
    assert [r[0] for r in records] == [65534, 65535, 65536, 65537]
    assert records[-1][2] == pytest.approx(100.03)  # the first answer, not the duplicate


def test_ping_partial_last_line():
    text = fixture("ping", "d-o-10ms-clean.txt")
    cut = text[:text.index("icmp_seq=50 ") + 5]
    parsed = parsers.parse_ping(cut, partial_ok=True)
    assert parsed["statistics"] is None and parsed["events"][-1]["seq"] == 49
    with pytest.raises(parsers.PingParseError, match="line 51"):
        parsers.parse_ping(cut)


@pytest.mark.parametrize("text, lineno, message", [
    ("", 0, "no ping output"),
    ("hello\n", 1, "the header"),
    ("PING a (1.2.3.4) 56(84) bytes of data.\n[1.5] 64 bytes from 1.2.3.4: icmp_seq=x ttl=1\n", 2, "a reply"),
    ("PING a (1.2.3.4) 56(84) bytes of data.\n\n--- a ping statistics ---\n", 3, "a statistics line"),
    ("PING a (1.2.3.4) 56(84) bytes of data.\n--- a ping statistics ---\n1 packets sent\n", 3, "packets transmitted"),
    ("PING a (1.2.3.4) 56(84) bytes of data.\n--- a ping statistics ---\n1 packets transmitted, 1 received, 0% packet loss, time 0ms\n"
     "rtt min/avg/max/mdev = 1/2/3 ms\n", 4, "rtt min/avg/max/mdev"),
    ("PING a (1.2.3.4) 56(84) bytes of data.\n--- a ping statistics ---\n1 packets transmitted, 1 received, 0% packet loss, time 0ms\n\n"
     "more\n", 5, "nothing after"),
    ("PING a (1.2.3.4) 56(84) bytes of data.\n[1e5] no answer yet for icmp_seq=1\n", 2, "a reply"),
    ("PING a (1.2.3.4) 56(84) bytes of data.\n[1.0] 64 bytes from 1.2.3.4: icmp_seq=\u0661 ttl=1 time=1 ms\n", 2, "a reply"),
])
def test_ping_errors_name_the_line(text, lineno, message):
    with pytest.raises(parsers.PingParseError, match=message) as info:
        parsers.parse_ping(text)
    assert info.value.lineno == lineno
    assert str(info.value).startswith("ping output")


def test_ping_rejects_non_text():
    with pytest.raises(parsers.PingParseError, match="text"):
        parsers.parse_ping(b"PING")


# --- sipp -----------------------------------------------------------------------------------------

def test_sipp_stat_by_column_name():
    clean = parsers.parse_sipp_stat(fixture("sipp", "uac-stat-clean.csv"))
    assert clean["columns"][:3] == ["StartTime", "LastResetTime", "CurrentTime"]
    assert len(clean["columns"]) == 95
    current = parsers.sipp_column(clean, "CurrentTime")
    assert current == sorted(current) and current[0] > 1e9
    assert parsers.sipp_column(clean, "OutgoingCall(C)")[-1] == 20
    assert parsers.sipp_column(clean, "SuccessfulCall(C)")[-1] == 20
    assert parsers.sipp_column(clean, "FailedCall(C)")[-1] == 0
    # durations: HH:MM:SS and HH:MM:SS:uuuuuu become seconds; -d 500 makes calls of ~0.5 s
    assert all(value >= 0.5 for value in parsers.sipp_column(clean, "CallLength(C)")[2:])
    assert isinstance(parsers.sipp_column(clean, "ElapsedTime(C)")[-1], float)
    with pytest.raises(ValueError, match="no column 'Nope'.*FailedCall"):
        parsers.sipp_column(clean, "Nope")


def test_sipp_stat_outage_run_has_failed_calls():
    outage = parsers.parse_sipp_stat(fixture("sipp", "uac-stat-outage.csv"))
    assert parsers.sipp_column(outage, "OutgoingCall(C)")[-1] == 40
    failed = parsers.sipp_column(outage, "FailedCall(C)")[-1]
    assert failed > 0
    assert failed + parsers.sipp_column(outage, "SuccessfulCall(C)")[-1] == 40
    uas = parsers.parse_sipp_stat(fixture("sipp", "uas-stat.csv"))
    assert parsers.sipp_column(uas, "IncomingCall(C)")[-1] >= 20


def test_sipp_rtt_gap_spans_the_outage():
    window = json.loads(fixture("sipp", "uac-outage.outage.json"))
    shortest = (window["drop_remove_start_s"] - window["drop_insert_done_s"]) * 1000.0
    longest = (window["drop_remove_done_s"] - window["drop_insert_start_s"]) * 1000.0
    rtt = parsers.parse_sipp_rtt(fixture("sipp", "uac-rtt-outage.csv"))
    assert rtt["columns"] == ["Date_ms", "response_time_ms", "rtd_no"]
    dates = parsers.sipp_column(rtt, "Date_ms")
    gap = max(b - a for a, b in zip(dates, dates[1:]))
    # No response completes during the outage; SIP retransmissions (T1 = 500 ms) add up to a second.
    assert shortest <= gap <= longest + 1000.0
    clean = parsers.parse_sipp_rtt(fixture("sipp", "uac-rtt-clean.csv"))
    dates = parsers.sipp_column(clean, "Date_ms")
    assert max(b - a for a, b in zip(dates, dates[1:])) < 200.0
    assert all(isinstance(n, int) for n in parsers.sipp_column(clean, "rtd_no"))


@pytest.mark.parametrize("text, lineno, message", [
    ("", 0, "the file is empty"),
    ("Foo;Bar;\n", 1, "a header line naming the columns"),
    ("StartTime;CurrentTime;CurrentTime;\n", 1, "each once"),
    ("StartTime;CurrentTime;X;\n2024-01-01\t00:00:00.0\t1.5;2024-01-01\t00:00:00.0\t1.5;\n", 2, "4 ';'-separated fields.*found 3"),
    ("StartTime;CurrentTime;X;\n2024-01-01\t00:00:00.0\t1.5;yesterday;1;\n", 2, "CurrentTime as"),
    ("StartTime;CurrentTime;X;\n2024-01-01\t00:00:00.0\t1.5;2024-01-01\t00:00:00.0\t1.5;1x;\n", 2, "column X"),
    ("StartTime;CurrentTime;X;\n2024-01-01\t00:00:00.0\t1.5;2024-01-01\t00:00:00.0\t1.5;1;junk\n", 2, "empty last field"),
])
def test_sipp_stat_errors(text, lineno, message):
    with pytest.raises(parsers.SippStatParseError, match=message) as info:
        parsers.parse_sipp_stat(text)
    assert info.value.lineno == lineno


@pytest.mark.parametrize("text, lineno, message", [
    ("Date_ms;rtd_no\n", 1, "response_time_ms"),
    ("Date_ms;response_time_ms;rtd_no\n1;2;x\n", 2, "rtd_no"),
    ("Date_ms;response_time_ms;rtd_no\n1;2;3\nnan;2;3\n", 3, "column Date_ms"),
    ("Date_ms;response_time_ms;rtd_no\n1;2\n", 2, "3 ';'-separated"),
])
def test_sipp_rtt_errors(text, lineno, message):
    with pytest.raises(parsers.SippRttParseError, match=message) as info:
        parsers.parse_sipp_rtt(text)
    assert info.value.lineno == lineno


# --- the UDP probe --------------------------------------------------------------------------------

def test_udp_probe_log_fixture():
    parsed = parsers.parse_udp_probe_log(fixture("udp", "probe-10ms-outage300.log"))
    assert parsed["params"]["interval_ms"] == "10.0" and parsed["params"]["target"] == "10.231.2.2"
    assert parsed["end"]["sent"] == len(parsed["tx"]) and parsed["end"]["answered"] == len(parsed["rx"])
    assert 0 < len(parsed["rx"]) < len(parsed["tx"])
    records = parsers.records_from_udp_log(parsed)
    assert [r[0] for r in records] == list(range(len(parsed["tx"])))
    assert all(r[2] is None or r[2] >= r[1] for r in records)


def test_udp_probe_log_errors_and_echo():
    parsed = parsers.parse_udp_probe_log(fixture("udp", "probe-no-echo.log"))
    assert parsed["rx"] == {} and parsed["errors"]
    assert all(e["message"] == "recv: Connection refused" for e in parsed["errors"])
    echo = parsers.parse_udp_echo_log(fixture("udp", "echo.log"))
    assert echo["params"] == {"bind": "0.0.0.0", "port": "5007"}
    answered = sum(parsers.parse_udp_probe_log(fixture("udp", name))["end"]["answered"]
                   for name in ("probe-10ms-outage300.log", "probe-5ms-outage1s.log"))
    assert echo["echoed"] == answered  # the no-echo probe went to another port


def test_udp_probe_log_partial_and_killed():
    text = fixture("udp", "probe-10ms-outage300.log")
    body = text[:text.index("\nend ")] + "\n"
    assert parsers.parse_udp_probe_log(body)["end"] is None
    cut = body[:body.rindex(" ") + 1]  # killed in the middle of a line
    with pytest.raises(parsers.UdpProbeLogParseError):
        parsers.parse_udp_probe_log(cut)
    assert parsers.parse_udp_probe_log(cut, partial_ok=True)["end"] is None


@pytest.mark.parametrize("text, lineno, message", [
    ("", 0, "the log is empty"),
    ("tx 0 1.0\n", 1, "the header"),
    ("# xenlab-udp-probe 1 a=b\nrx 0 1.0\n", 2, "no 'tx 0'"),
    ("# xenlab-udp-probe 1\ntx 0 1.0\ntx 0 1.1\n", 3, "seq 0 was sent before"),
    ("# xenlab-udp-probe 1\ntx 0 1.0\nend 2.0 sent=1 answered=0\ntx 1 2.1\n", 4, "nothing after"),
    ("# xenlab-udp-probe 1\ntx 0 1\n", 2, "'tx SEQ TIME'"),
])
def test_udp_probe_log_errors(text, lineno, message):
    with pytest.raises(parsers.UdpProbeLogParseError, match=message) as info:
        parsers.parse_udp_probe_log(text)
    assert info.value.lineno == lineno


def test_udp_echo_log_errors():
    with pytest.raises(parsers.UdpEchoLogParseError, match="line 2"):
        parsers.parse_udp_echo_log("# xenlab-udp-echo 1\nrx 1\n")
    with pytest.raises(parsers.UdpEchoLogParseError, match="nothing after"):
        parsers.parse_udp_echo_log("# xenlab-udp-echo 1\nend 1.0 echoed=1\nend 1.0 echoed=1\n")


# --- malformed input: always a ParseError with a line number, never another exception ------------

PARSERS = [
    (parsers.parse_ping, parsers.PingParseError, ("ping", "d-o-10ms-outage300.txt")),
    (parsers.parse_sipp_stat, parsers.SippStatParseError, ("sipp", "uac-stat-outage.csv")),
    (parsers.parse_sipp_rtt, parsers.SippRttParseError, ("sipp", "uac-rtt-outage.csv")),
    (parsers.parse_udp_probe_log, parsers.UdpProbeLogParseError, ("udp", "probe-10ms-outage300.log")),
    (parsers.parse_udp_echo_log, parsers.UdpEchoLogParseError, ("udp", "echo.log")),
]
IDS = [entry[0].__name__ for entry in PARSERS]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Text that looks like the tools' output: their characters, digits, separators and some noise.
TOOLISH = st.text(st.sampled_from(list("0123456789.:;[]()-+=/% \t\nabcdefimnoprstuxyPINGTD#\u0661\x00\r")) | st.characters(),
                  max_size=200)


def _check_error(exc, error_cls, lines):
    assert isinstance(exc, error_cls)
    assert isinstance(exc, parsers.ParseError) and isinstance(exc, ValueError)
    assert 0 <= exc.lineno <= len(lines) + 1
    assert str(exc).startswith(error_cls.what)
    if exc.lineno:
        assert "line %d" % exc.lineno in str(exc)


@pytest.mark.parametrize("parse, error_cls, _name", PARSERS, ids=IDS)
@SETTINGS
@given(text=TOOLISH)
def test_arbitrary_text_parses_or_raises_parse_error(parse, error_cls, _name, text):
    for partial_ok in (False, True):
        kwargs = {"partial_ok": True} if partial_ok and parse not in (parsers.parse_sipp_stat, parsers.parse_sipp_rtt) else {}
        try:
            parse(text, **kwargs)
        except parsers.ParseError as exc:
            _check_error(exc, error_cls, text.split("\n"))


@pytest.mark.parametrize("parse, error_cls, name", PARSERS, ids=IDS)
@SETTINGS
@given(data=st.data())
def test_mutated_real_output_parses_or_raises_parse_error(parse, error_cls, name, data):
    lines = fixture(*name).split("\n")
    index = data.draw(st.integers(0, len(lines) - 1))
    how = data.draw(st.sampled_from(["replace", "insert", "truncate", "delete", "duplicate", "splice"]))
    noise = data.draw(TOOLISH)
    if how == "replace":
        lines[index] = noise
    elif how == "insert":
        lines.insert(index, noise)
    elif how == "truncate":
        lines[index] = lines[index][:data.draw(st.integers(0, max(len(lines[index]) - 1, 0)))]
    elif how == "delete":
        del lines[index]
    elif how == "duplicate":
        lines.insert(index, lines[index])
    else:
        position = data.draw(st.integers(0, len(lines[index])))
        lines[index] = lines[index][:position] + noise + lines[index][position:]
    try:
        parse("\n".join(lines))
    except parsers.ParseError as exc:
        _check_error(exc, error_cls, lines)


@pytest.mark.parametrize("parse, error_cls, name", PARSERS, ids=IDS)
@SETTINGS
@given(data=st.data())
def test_a_garbage_line_is_reported_at_its_line(parse, error_cls, name, data):
    lines = fixture(*name).rstrip("\n").split("\n")
    # After the header, before the last line; "@" starts no valid line of any of these formats.
    index = data.draw(st.integers(1, len(lines) - 1))
    garbage = "@" + data.draw(st.text(st.characters(blacklist_characters="\r\n"), max_size=40))
    lines.insert(index, garbage)
    with pytest.raises(error_cls) as info:
        parse("\n".join(lines) + "\n")
    assert info.value.lineno == index + 1
    assert repr(garbage) in str(info.value)


@pytest.mark.parametrize("name", ["ping/d-o-10ms-outage300.txt", "ping/d-10ms-outage300-no-O.txt", "udp/probe-10ms-outage300.log"])
@SETTINGS
@given(data=st.data())
def test_whatever_parses_can_be_analysed(name, data):
    # Parsed (possibly odd) output always yields records the downtime analysis accepts.
    from ansible_collections.xenlab.migration.plugins.module_utils import downtime

    lines = fixture(*name.split("/")).split("\n")
    for _round in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(lines) - 1))
        del lines[index]
        if data.draw(st.booleans()):
            lines.insert(data.draw(st.integers(1, len(lines))), lines[data.draw(st.integers(1, len(lines) - 1))])
    text = "\n".join(lines)
    try:
        if name.startswith("udp"):
            records = parsers.records_from_udp_log(parsers.parse_udp_probe_log(text))
        else:
            records = parsers.records_from_ping(parsers.parse_ping(text))
    except parsers.ParseError:
        return
    if records:
        figures = downtime.analyse(records, 0.01)
        assert figures["sent"] == figures["received"] + figures["lost"]
        assert figures["downtime_ms"] >= 0.0
