# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""RTP stream analysis of a pcap/pcapng capture.

Per stream (source ip:port, destination ip:port, SSRC) this computes

* what ``tshark -q -z rtp,streams`` prints (Wireshark 4.0 ``ui/tap-rtp-analysis.c``
  ``rtppacket_analyse`` and ``ui/tap-rtp-common.c`` ``rtpstream_info_calculate``): packets,
  lost = (last-arrived seq + 65536 * cycles - first seq + 1) - packets (may be negative),
  minimum, mean and maximum delta, and of the RFC 3550 running jitter, in arrival order, and
  the payload types seen;
* what VoIPmonitor (the thesis' tool, ``rtp.cpp`` ``RTP::update_seq``/``update_stats``) stores as
  ``a_sl1..a_sl10`` (runs of consecutively lost packets, 10 = ten or more) and
  ``a_d50..a_d300`` (packet delay variation: inter-arrival time minus the RTP timestamp step,
  in whole milliseconds, counted in the buckets [50,70), [70,90), [90,120), [120,150),
  [150,200), [200,300), [300,inf));
* MOS after three simulated jitter buffers (see ``emodel``).

Which UDP datagrams are RTP: version 2, at least a complete 12-byte header (plus CSRC list and
header extension), not an RTCP packet type (marker set with payload type 64-95, Wireshark's
RTCP-conflict rule). With ``detect="sdp"`` only flows to or from an ip:port announced in an SDP
body carried by SIP over UDP earlier in the capture count, which is how tshark finds RTP in the
default configuration (its UDP heuristic is off); ``"heuristic"`` takes every such datagram,
like ``tshark -o rtp.heuristic_rtp:TRUE``; ``"auto"`` (default) uses SDP when the capture holds
any SDP, else the heuristic. Dynamic payload types get their clock rate from the SDP
``a=rtpmap`` (telephone-event gets none, as in Wireshark).

Files are read with dpkt (pcap with micro- or nanosecond time stamps, pcapng with the link type
of its first interface); a cut-off file is recognised (dpkt itself stops or hands out a short
record silently) and reported as PcapError. Headers are parsed with ``struct`` on dpkt's raw
frame buffers, the common Ethernet/IPv4/UDP/RTP frame in a single call, which keeps the hot
loop fast. Link types: Ethernet (with 802.1Q/802.1ad tags), Linux cooked SLL and SLL2, raw IP,
BSD loopback/null. IPv4 fragments and SIP over TCP are ignored.
"""

from __future__ import annotations

import io
import itertools
import socket
import struct

try:
    import dpkt
    import dpkt.pcap
    import dpkt.pcapng
except ImportError as _exc:  # the module reports it with missing_required_lib()
    HAS_DPKT = False
    DPKT_IMPORT_ERROR = _exc
else:
    HAS_DPKT = True
    DPKT_IMPORT_ERROR = None

from . import emodel

# Link-layer header types (https://www.tcpdump.org/linktypes.html).
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW_BSD1 = 12
LINKTYPE_RAW_BSD2 = 14
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
SUPPORTED_LINKTYPES = {
    LINKTYPE_NULL: "null", LINKTYPE_ETHERNET: "ethernet", LINKTYPE_RAW_BSD1: "raw",
    LINKTYPE_RAW_BSD2: "raw", LINKTYPE_RAW: "raw", LINKTYPE_LOOP: "loop",
    LINKTYPE_LINUX_SLL: "linux-sll", LINKTYPE_IPV4: "ipv4", LINKTYPE_IPV6: "ipv6",
    LINKTYPE_LINUX_SLL2: "linux-sll2",
}

DETECT_MODES = ("auto", "sdp", "heuristic")

PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"

# Clock rates of the static payload types, as Wireshark's clock_map (tap-rtp-analysis.c).
CLOCK_RATES = {
    0: 8000, 1: 8000, 2: 8000, 3: 8000, 4: 8000, 5: 8000, 6: 16000, 7: 8000, 8: 8000, 9: 8000,
    10: 44100, 11: 44100, 12: 8000, 13: 8000, 14: 90000, 15: 8000, 16: 11025, 17: 22050,
    18: 8000, 19: 8000, 25: 90000, 26: 90000, 28: 90000, 31: 90000, 32: 90000, 33: 90000,
    34: 90000,
}
# Wireshark's short payload names (rtp_payload_type_short_vals).
PAYLOAD_NAMES = {
    0: "g711U", 1: "fs-1016", 2: "g721", 3: "GSM", 4: "g723", 5: "DVI4 8k", 6: "DVI4 16k",
    7: "Exp. from Xerox", 8: "g711A", 9: "g722", 10: "16-bit audio", 11: "16-bit audio",
    12: "QCELP", 13: "CN", 14: "MPEG-I/II Audio", 15: "g728", 16: "DVI4 11k", 17: "DVI4 22k",
    18: "g729", 19: "CN(old)", 25: "CellB", 26: "JPEG", 28: "NV", 31: "h261", 32: "MPEG-I/II Video",
    33: "MPEG-II streams", 34: "h263",
}
DYNAMIC_DEFAULT_NAMES = {99: "rtp.rfc2198", 101: "rtpevent"}
PT_CN = 13
PT_CN_OLD = 19
LOSS_RUN_KEYS = tuple("a_sl%d" % i for i in range(1, 11))
PDV_BUCKETS = ((50, 70, "a_d50"), (70, 90, "a_d70"), (90, 120, "a_d90"), (120, 150, "a_d120"),
               (150, 200, "a_d150"), (200, 300, "a_d200"), (300, None, "a_d300"))
PDV_KEYS = tuple(bucket[2] for bucket in PDV_BUCKETS)

_VLAN_ETHERTYPES = (0x8100, 0x88A8, 0x9100)
_IPV6_EXT_HEADERS = (0, 43, 60)  # hop-by-hop, routing, destination options
_RTP_PACKET = struct.Struct("!HII")  # seq, timestamp, ssrc at offset 2 of the RTP header
_UDP_HEADER = struct.Struct("!HHH")


class PcapError(ValueError):
    """The capture cannot be analysed: missing, not pcap/pcapng, truncated or corrupt."""


# pcap magic -> (struct byte order, length of a record header)
_PCAP_FORMATS = {
    b"\xd4\xc3\xb2\xa1": ("<", 16), b"\xa1\xb2\xc3\xd4": (">", 16),   # microseconds
    b"\x4d\x3c\xb2\xa1": ("<", 16), b"\xa1\xb2\x3c\x4d": (">", 16),   # nanoseconds
    b"\x34\xcd\xb2\xa1": ("<", 24), b"\xa1\xb2\xcd\x34": (">", 24),   # Kuznetzov's modified pcap
}


def _describe(exc):
    text = str(exc)
    return "%s: %s" % (type(exc).__name__, text) if text else type(exc).__name__


def _check_pcapng_blocks(data, name):
    """Walk the block framing of a pcapng file: every block must be complete.

    dpkt's pcapng reader stops silently at a partial block header and may hand out a short
    block, so a cut-off file is recognised here, before it is read.
    """
    size = len(data)
    pos = 0
    order = "<"
    while pos < size:
        if size - pos < 12:
            raise PcapError("%s is truncated: the capture ends inside a pcapng block header (byte %d)" % (name, pos))
        if data[pos:pos + 4] == PCAPNG_MAGIC:
            bom = data[pos + 8:pos + 12]
            if bom == b"\x4d\x3c\x2b\x1a":
                order = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                order = ">"
            else:
                raise PcapError("%s is corrupt: pcapng section header at byte %d has no valid byte-order magic" % (name, pos))
        length = struct.unpack_from(order + "I", data, pos + 4)[0]
        if length < 12 or length % 4:
            raise PcapError("%s is corrupt: pcapng block at byte %d has an invalid length %d" % (name, pos, length))
        if pos + length > size:
            raise PcapError("%s is truncated: the pcapng block at byte %d needs %d bytes, %d remain"
                            % (name, pos, length, size - pos))
        pos += length


def _open_capture(data, name):
    """(dpkt reader, link type, microsecond time stamps?, record format) for pcap/pcapng bytes."""
    if not HAS_DPKT:
        raise PcapError("the dpkt Python library is required to read %s" % name)
    if not isinstance(data, (bytes, bytearray)):
        raise PcapError("%s: capture data must be bytes, got %s" % (name, type(data).__name__))
    if len(data) < 4:
        raise PcapError("%s is not a pcap or pcapng capture (%d bytes)" % (name, len(data)))
    magic = bytes(data[:4])
    data = bytes(data)
    try:
        if magic == PCAPNG_MAGIC:
            _check_pcapng_blocks(data, name)
            reader = dpkt.pcapng.Reader(io.BytesIO(data))
            record = None
        elif magic in _PCAP_FORMATS:
            if len(data) < 24:
                raise PcapError("%s is truncated: its pcap file header is incomplete" % name)
            reader = dpkt.pcap.Reader(io.BytesIO(data))
            record = _PCAP_FORMATS[magic]
        else:
            raise PcapError("%s is not a pcap or pcapng capture (magic %s)" % (name, magic.hex()))
        linktype = reader.datalink()
    except PcapError:
        raise
    except Exception as exc:  # pylint: disable=broad-except  # dpkt raises many types on bad headers
        raise PcapError("%s is not a readable pcap/pcapng capture: %s" % (name, _describe(exc))) from None
    if linktype not in SUPPORTED_LINKTYPES:
        raise PcapError("%s has link type %s, which is not supported (Ethernet, Linux cooked SLL/SLL2, raw IP, "
                        "BSD loopback)" % (name, linktype))
    divisor = getattr(reader, "_divisor", 1e6)
    return reader, linktype, isinstance(divisor, float) and divisor == 1e6, record


def _check_last_record(data, name, record, last_buf):
    """A pcap file whose last record is shorter than its header says was cut off."""
    if record is None or last_buf is None:
        return
    order, header_len = record
    offset = len(data) - len(last_buf) - header_len
    if offset < 24 or struct.unpack_from(order + "I", data, offset + 8)[0] != len(last_buf):
        raise PcapError("%s is truncated: the capture ends inside a packet record" % name)


def _read_error(name, exc):
    if isinstance(exc, getattr(dpkt, "NeedData", ())):
        return PcapError("%s is truncated: the capture ends inside a packet record" % name)
    return PcapError("%s is corrupt: %s" % (name, _describe(exc)))


def iter_frames(data, name="capture"):
    """Yield ``(time_s, linktype, frame_bytes)`` for every record of a pcap/pcapng capture.

    ``time_s`` is what dpkt gives (float seconds, Decimal for nanosecond pcap). Raises
    PcapError on anything that is not a complete capture; a truncated or corrupt record is
    reported when the iteration reaches it.
    """
    reader, linktype, _micro, record = _open_capture(data, name)
    last = None
    try:
        for ts, buf in reader:
            last = buf
            yield ts, linktype, buf
    except Exception as exc:  # pylint: disable=broad-except  # dpkt raises many types on corrupt records
        raise _read_error(name, exc) from None
    _check_last_record(data, name, record, last)


def _l3(linktype, buf):
    """(ethertype, offset of the network header) for a frame of ``linktype``, else (0, 0)."""
    if linktype == LINKTYPE_ETHERNET:
        if len(buf) < 14:
            return 0, 0
        etype = (buf[12] << 8) | buf[13]
        off = 14
        while etype in _VLAN_ETHERTYPES and len(buf) >= off + 4:
            etype = (buf[off + 2] << 8) | buf[off + 3]
            off += 4
        return etype, off
    if linktype == LINKTYPE_LINUX_SLL:
        if len(buf) < 16:
            return 0, 0
        return (buf[14] << 8) | buf[15], 16
    if linktype == LINKTYPE_LINUX_SLL2:
        if len(buf) < 20:
            return 0, 0
        return (buf[0] << 8) | buf[1], 20
    if linktype in (LINKTYPE_RAW, LINKTYPE_RAW_BSD1, LINKTYPE_RAW_BSD2, LINKTYPE_IPV4, LINKTYPE_IPV6):
        if not buf:
            return 0, 0
        version = buf[0] >> 4
        return (0x0800 if version == 4 else 0x86DD if version == 6 else 0), 0
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if len(buf) < 5:
            return 0, 0
        version = buf[4] >> 4  # the 4-byte family is host- or network-order: use the IP version
        return (0x0800 if version == 4 else 0x86DD if version == 6 else 0), 4
    return 0, 0


def _ipv6_udp(buf, off):
    """(src, dst, udp offset) of an unfragmented IPv6/UDP packet, else None."""
    if len(buf) < off + 40:
        return None
    nxt = buf[off + 6]
    src = bytes(buf[off + 8:off + 24])
    dst = bytes(buf[off + 24:off + 40])
    pos = off + 40
    while nxt in _IPV6_EXT_HEADERS:
        if len(buf) < pos + 8:
            return None
        nxt = buf[pos]
        pos += (buf[pos + 1] + 1) * 8
    if nxt != 17:
        return None
    return src, dst, pos


def _udp(linktype, buf):
    """(src, sport, dst, dport, payload offset, payload end) of an unfragmented UDP datagram."""
    etype, off = _l3(linktype, buf)
    if etype == 0x0800:
        if len(buf) < off + 20:
            return None
        vihl = buf[off]
        if vihl >> 4 != 4 or buf[off + 9] != 17 or ((buf[off + 6] << 8) | buf[off + 7]) & 0x3FFF:
            return None  # not IPv4, not UDP, or a fragment
        src = bytes(buf[off + 12:off + 16])
        dst = bytes(buf[off + 16:off + 20])
        udp = off + (vihl & 15) * 4
    elif etype == 0x86DD:
        found = _ipv6_udp(buf, off)
        if found is None:
            return None
        src, dst, udp = found
    else:
        return None
    if len(buf) < udp + 8:
        return None
    sport, dport, ulen = _UDP_HEADER.unpack_from(buf, udp)
    return src, sport, dst, dport, udp + 8, min(udp + ulen, len(buf))


def _rtp_header(buf, pos, end):
    """(seq, timestamp, ssrc, second byte) of an RTP header at ``pos``, or None if it is not one."""
    if end - pos < 12:
        return None
    b0 = buf[pos]
    b1 = buf[pos + 1]
    if b0 >> 6 != 2 or 192 <= b1 <= 223:
        return None  # not version 2, or RTCP (marker set with payload type 64-95)
    hdr = pos + 12 + 4 * (b0 & 15)
    if b0 & 0x10:
        if hdr + 4 > end:
            return None
        hdr += 4 + 4 * ((buf[hdr + 2] << 8) | buf[hdr + 3])
    if hdr > end:
        return None
    seq, stamp, ssrc = _RTP_PACKET.unpack_from(buf, pos + 2)
    return seq, stamp, ssrc, b1


# The common case in one struct call: a link header, a 20-byte IPv4 header, UDP and a 12-byte RTP
# header without CSRCs or extension. Per link type: (link-header format, its length, the
# ethertype that means IPv4 - empty where the link header has none).
_FAST_IPV4_UDP_RTP = "B5xHxB2x4s4sHHH2xBBHII"
_FAST_LINKS = {
    LINKTYPE_ETHERNET: ("12x2s", 14, b"\x08\x00"),
    LINKTYPE_LINUX_SLL: ("14x2s", 16, b"\x08\x00"),
    LINKTYPE_LINUX_SLL2: ("2s18x", 20, b"\x08\x00"),
    LINKTYPE_RAW: ("0s", 0, b""), LINKTYPE_RAW_BSD1: ("0s", 0, b""), LINKTYPE_RAW_BSD2: ("0s", 0, b""),
    LINKTYPE_IPV4: ("0s", 0, b""), LINKTYPE_NULL: ("4x0s", 4, b""), LINKTYPE_LOOP: ("4x0s", 4, b""),
}


def addr_text(addr, port):
    """``ip:port`` (``[ip]:port`` for IPv6) from packed address bytes."""
    if len(addr) == 4:
        return "%s:%d" % (socket.inet_ntop(socket.AF_INET, addr), port)
    return "[%s]:%d" % (socket.inet_ntop(socket.AF_INET6, addr), port)


def _pack_ip(text):
    try:
        return socket.inet_pton(socket.AF_INET, text)
    except OSError:
        return socket.inet_pton(socket.AF_INET6, text)


def parse_sdp(payload):
    """Media endpoints of a SIP message's SDP body: ``{(packed_ip, port): {pt: (name, rate)}}``.

    Only ``m=audio``/``m=video`` lines with a non-zero port count; the session-level ``c=``
    applies unless the media section has its own.
    """
    try:
        text = payload.decode("utf-8", "replace")
    except (AttributeError, UnicodeError):
        return {}
    head, sep, body = text.partition("\r\n\r\n")
    if not sep:
        head, sep, body = text.partition("\n\n")
    if not sep or "application/sdp" not in head.lower():
        return {}
    session_addr = None
    medias = []  # [addr, port, {pt: (name, rate)}]
    for raw in body.splitlines():
        line = raw.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        kind, value = line[0], line[2:].strip()
        if kind == "c":
            parts = value.split()
            if len(parts) >= 3 and parts[0] == "IN":
                try:
                    addr = _pack_ip(parts[2].split("/")[0])
                except (OSError, ValueError):
                    continue
                if medias:
                    medias[-1][0] = addr
                else:
                    session_addr = addr
        elif kind == "m":
            parts = value.split()
            try:
                port = int(parts[1].split("/")[0])
            except (IndexError, ValueError):
                continue
            medias.append([None, port, {}])
        elif kind == "a" and medias and value.lower().startswith("rtpmap:"):
            parts = value[7:].split(None, 1)
            try:
                ptype = int(parts[0])
                enc = parts[1].split("/")
                rate = int(enc[1]) if len(enc) > 1 and enc[1].isdigit() else 0
            except (IndexError, ValueError):
                continue
            medias[-1][2][ptype] = (enc[0], rate)
    endpoints = {}
    for addr, port, rtpmap in medias:
        addr = addr if addr is not None else session_addr
        if addr is not None and 0 < port < 65536:
            endpoints[(addr, port)] = rtpmap
    return endpoints


def clock_rate(payload_type, rtpmap=None):
    """RTP clock rate as Wireshark uses it for jitter; 0 = unknown (no jitter computed)."""
    if payload_type < 96:
        return CLOCK_RATES.get(payload_type, 0)
    if rtpmap and payload_type in rtpmap:
        name, rate = rtpmap[payload_type]
        if name.lower().startswith("telephone-event"):
            return 0
        # Below 1 kHz Wireshark's integer (clock_rate/1000) is 0 and its jitter meaningless.
        return rate if rate >= 1000 else 0
    return 0


def scan_capture(data, name="capture", detect="auto"):
    """One pass over a capture: collect the RTP packets per stream.

    Returns a dict with ``streams`` (``{key: [(time_ms, seq, timestamp, pt, marker), ...]}`` in
    arrival order, key = (src_ip, src_port, dst_ip, dst_port, ssrc), addresses as packed
    bytes), ``rtpmaps`` (per key, the SDP rtpmap of its announced endpoint, or None),
    ``frames``, ``detection`` (the mode used) and ``first_frame_s``/``last_frame_s`` (Unix
    times of the first and last frame, None for an empty capture). ``time_ms`` is relative to the capture's
    first frame, like Wireshark's ``frame.time_relative``.
    """
    if detect not in DETECT_MODES:
        raise ValueError("detect must be one of %s, got %r" % (", ".join(DETECT_MODES), detect))
    reader, linktype, micro, record = _open_capture(data, name)
    endpoints = {}     # (ip, port) -> rtpmap, from SDP seen so far
    streams = {}       # key -> list of packets
    sdp_start = {}     # key -> index of its first packet sent once its endpoint was announced
    pending = set()    # streams not yet tied to an announced endpoint
    rtpmaps = {}
    frames = 0
    t0 = buf = None
    fast = _FAST_LINKS.get(linktype)
    if fast is not None:
        fast_unpack = struct.Struct("!" + fast[0] + _FAST_IPV4_UDP_RTP).unpack_from
        fast_len = fast[1] + 40
        fast_etype = fast[2]
    else:
        fast_unpack, fast_len, fast_etype = None, 1 << 30, None
    frames_iter = iter(reader)
    try:
        for ts, buf in frames_iter:
            t0 = ts
            frames_iter = itertools.chain([(ts, buf)], frames_iter)
            break
        for ts, buf in frames_iter:
            frames += 1
            if len(buf) >= fast_len:
                (etype, vihl, frag, proto, src, dst, sport, dport, ulen,
                 b0, b1, seq, stamp, ssrc) = fast_unpack(buf)
                fast_ok = (vihl == 0x45 and proto == 17 and etype == fast_etype and not frag & 0x3FFF
                           and b0 & 0xDF == 0x80 and ulen >= 20)
            else:
                fast_ok = False
            if fast_ok:
                if 192 <= b1 <= 223:
                    continue  # RTCP
            else:
                try:
                    udp = _udp(linktype, buf)
                    if udp is None:
                        continue
                    src, sport, dst, dport, pos, end = udp
                    if end - pos < 12:
                        continue
                    if buf[pos] >> 6 != 2:
                        if buf[pos] >> 6 == 1 and b"sdp" in buf[pos:end]:
                            sdp = parse_sdp(bytes(buf[pos:end]))
                            if sdp:
                                endpoints.update(sdp)
                        continue
                    hdr = _rtp_header(buf, pos, end)
                except (IndexError, struct.error):
                    continue  # malformed frame: skip it, as tshark does not tap it
                if hdr is None:
                    continue
                seq, stamp, ssrc, b1 = hdr
            key = (src, sport, dst, dport, ssrc)
            pkts = streams.get(key)
            if pkts is None:
                pkts = streams[key] = []
                pending.add(key)
            if endpoints and pending and key in pending:
                announced = (dst, dport) in endpoints or (src, sport) in endpoints
                if announced:
                    rtpmap = endpoints.get((dst, dport))
                    rtpmaps[key] = rtpmap if rtpmap is not None else endpoints.get((src, sport))
                    sdp_start[key] = len(pkts)
                    pending.discard(key)
            if micro:
                pkts.append((round((ts - t0) * 1000000.0) / 1000.0, seq, stamp, b1 & 0x7F, b1 >> 7))
            else:
                pkts.append((float((ts - t0) * 1000), seq, stamp, b1 & 0x7F, b1 >> 7))
    except Exception as exc:  # pylint: disable=broad-except  # dpkt raises many types on corrupt records
        raise _read_error(name, exc) from None
    _check_last_record(data, name, record, buf)
    span = (float(t0), float(ts)) if frames else (None, None)  # pylint: disable=undefined-loop-variable
    if detect == "sdp" or (detect == "auto" and endpoints):
        mode = "sdp"
        streams = dict((key, pkts[sdp_start[key]:]) for key, pkts in streams.items() if key in sdp_start)
        streams = dict((key, pkts) for key, pkts in streams.items() if pkts)
    else:
        # Every stream counts; one whose endpoint an SDP announced still gets its payload map.
        mode = "heuristic"
    return {"streams": streams, "rtpmaps": rtpmaps, "frames": frames, "detection": mode,
            "first_frame_s": span[0], "last_frame_s": span[1]}


def wireshark_stats(pkts, rtpmap=None):
    """Statistics of one stream exactly as tshark 4.0's rtp,streams tap computes them.

    ``pkts`` = [(time_ms, seq, timestamp, pt, marker), ...] in arrival order; time_ms is
    relative to the first frame of the capture, as Wireshark's ``pinfo->rel_ts``.

    As in Wireshark 4.0 ``rtppacket_analyse``: a packet is "in time sequence" when its RTP
    timestamp is not older than the stream's first one (modulo 2^32, within 2^31); only such packets update
    the jitter and the reference arrival time, and only they, without the marker bit and not
    comfort noise (or right after it), count for the maximum delta and the maximum and mean
    jitter. The nominal time is the timestamp distance to the first packet over (clock/1000)
    (an integer division, as in C); a packet without a known clock rate (telephone-event, an
    unknown dynamic type) moves the reference arrival time but not the nominal time. The mean
    is Wireshark's running mean divided by the count of all packets so far.
    """
    t_prev, seq0, first_ts, pt0, _marker = pkts[0]
    start_seq = stop_seq = seq0
    cycles = 0
    under = False
    jitter = max_jitter = mean_jitter = 0.0
    max_delta = mean_delta = delta = 0.0
    min_delta = min_jitter = -1.0
    last_nominal = 0.0
    total_nr = 1
    prev_cn = pt0 == PT_CN or pt0 == PT_CN_OLD
    rate_pt = rate = divisor = None
    for t_ms, seq, stamp, ptype, marker in pkts[1:]:
        offset = (stamp - first_ts) & 0xFFFFFFFF
        in_seq = offset < 0x80000000
        if in_seq:
            if seq < start_seq and not under:
                cycles += 1
                under = True
            elif seq == 0 and stop_seq == 65535 and not under:
                cycles += 1
                under = True
            elif seq > start_seq and under:
                under = False
        follow_cn = prev_cn
        is_cn = prev_cn = ptype == PT_CN or ptype == PT_CN_OLD
        if ptype != rate_pt:
            rate_pt = ptype
            rate = clock_rate(ptype, rtpmap)
            # (clock_rate/1000) is an integer division in Wireshark (44100 Hz -> 44).
            divisor = rate // 1000
        if in_seq:
            delta = t_ms - t_prev
            if rate:
                nominal = offset / divisor
                diff = t_ms - (t_prev + (nominal - last_nominal))
                jitter = (15 * jitter + (diff if diff >= 0 else -diff)) / 16
                last_nominal = nominal
            t_prev = t_ms
            if not marker and not is_cn and not follow_cn:
                if delta > max_delta:
                    max_delta = delta
                if min_delta == -1 or delta < min_delta:
                    min_delta = delta
                # Wireshark divides by total_nr (all packets so far), not by the regular ones.
                mean_delta = (mean_delta * (total_nr - 1) + delta) / total_nr
                if rate:
                    if jitter > max_jitter:
                        max_jitter = jitter
                    if min_jitter == -1 or jitter < min_jitter:
                        min_jitter = jitter
                    mean_jitter = (mean_jitter * (total_nr - 1) + jitter) / total_nr
        stop_seq = seq
        total_nr += 1
    expected_pkts = stop_seq + cycles * 0x10000 - start_seq + 1
    return {
        "packets": total_nr,
        "expected": expected_pkts,
        "lost": expected_pkts - total_nr,
        "delta_min_ms": min_delta,
        "delta_max_ms": max_delta,
        "delta_mean_ms": mean_delta,
        "jitter_min_ms": min_jitter,
        "jitter_max_ms": max_jitter,
        "jitter_mean_ms": mean_jitter,
        "jitter_last_ms": jitter,
    }


# VoIPmonitor's RFC 3550 appendix A.1 constants.
_MIN_SEQUENTIAL = 2
_MAX_DROPOUT = 3000
_MAX_MISORDER = 100
_SEQ_MOD = 1 << 16


def voipmonitor_stats(pkts, rate, skip_pts=(101,)):
    """Loss-run distribution and PDV buckets as VoIPmonitor's RTP::read/update_stats count them.

    Packets go through RFC 3550 ``update_seq`` (probation of two packets, restarts on large
    jumps); for each accepted packet the increase of ``lost`` = expected - received is one loss
    run of that length (a reordered packet shows as a run of 1, then lowers ``lost`` when it
    arrives), and ``transit`` = inter-arrival ms - timestamp step ms gives the PDV bucket of
    ``|int(transit)|`` (ignored above 5000 ms: a timestamp jump). Packets with a payload type in
    ``skip_pts`` (telephone-event) count for the sequence but not for the statistics, as
    VoIPmonitor's update_stats returns early for payload 101.
    """
    runs = [0] * 11
    pdv = dict.fromkeys(PDV_KEYS, 0)
    if not rate or not pkts:
        return {"loss_runs": dict(zip(LOSS_RUN_KEYS, runs[1:])), "pdv": pdv}
    ms_per_tick = 1000.0 / rate
    t_first, seq_first, stamp_first = pkts[0][0], pkts[0][1], pkts[0][2]
    # init_seq(seq); max_seq = seq - 1; probation = MIN_SEQUENTIAL
    base_seq = seq_first
    max_seq = (seq_first - 1) & 0xFFFF
    bad_seq = _SEQ_MOD + 1
    cycles = received = 0
    probation = _MIN_SEQUENTIAL
    last_lost = 0
    last_time, last_stamp = t_first, stamp_first
    for t_ms, seq, stamp, ptype, _marker in pkts[1:]:
        # update_seq()
        udelta = (seq - max_seq) & 0xFFFF
        if probation:
            if seq == max_seq + 1:   # no wrap: VoIPmonitor compares in int
                probation -= 1
                max_seq = seq
                if probation:
                    continue
                base_seq = max_seq = seq
                bad_seq = _SEQ_MOD + 1
                cycles = 0
                received = 1
            else:
                probation = _MIN_SEQUENTIAL - 1
                max_seq = seq
                continue
        elif udelta < _MAX_DROPOUT:
            if seq < max_seq:
                cycles += _SEQ_MOD
            max_seq = seq
            received += 1
        elif udelta <= _SEQ_MOD - _MAX_MISORDER:
            if seq != bad_seq:
                bad_seq = (seq + 1) & 0xFFFF
                continue
            base_seq = max_seq = seq   # two sequential packets after a jump: the source restarted
            bad_seq = _SEQ_MOD + 1
            cycles = 0
            received = 1
        else:
            received += 1  # duplicate or reordered
        # update_stats()
        if ptype in skip_pts:
            continue
        lost = (cycles + max_seq - (base_seq + 1)) - received
        transit = (t_ms - last_time) - ((stamp - last_stamp) & 0xFFFFFFFF) * ms_per_tick
        last_time, last_stamp = t_ms, stamp
        if lost > last_lost:
            runs[min(lost - last_lost, 10)] += 1
        last_lost = lost
        adelay = int(transit)
        if -5000 <= adelay <= 5000:
            if adelay < 0:
                adelay = -adelay
            if adelay >= 50:
                for _low, high, name in PDV_BUCKETS:
                    if high is None or adelay < high:
                        pdv[name] += 1
                        break
    return {"loss_runs": dict(zip(LOSS_RUN_KEYS, runs[1:])), "pdv": pdv}


def stream_clock_rate(pkts, rtpmap=None):
    """The clock rate of the stream's first payload type that has one (0 if none)."""
    for pkt in pkts:
        rate = clock_rate(pkt[3], rtpmap)
        if rate:
            return rate
    return 0


def payload_name(ptype, rtpmap=None):
    """The payload type's name as tshark's rtp,streams writes it.

    ``rtpmap`` is the SDP's payload map of the stream (None when no SDP announced it).
    """
    if ptype in PAYLOAD_NAMES:
        return PAYLOAD_NAMES[ptype]
    if rtpmap is not None:
        return rtpmap[ptype][0] if ptype in rtpmap else "RTPType-%d" % ptype
    # Without SDP, Wireshark's defaults decode 101 as RFC 4733 events, 99 as RFC 2198 redundancy.
    return DYNAMIC_DEFAULT_NAMES.get(ptype, "RTPType-%d" % ptype)


def analyze_stream(key, pkts, rtpmap=None, jitter_buffers=True, mos_model="voipmonitor", one_way_delay_ms=0.0):
    """All statistics of one stream (``key`` and ``pkts`` as from :func:`scan_capture`) as a dict."""
    src, sport, dst, dport, ssrc = key
    rate = stream_clock_rate(pkts, rtpmap)
    first_pt = pkts[0][3]
    events = set([101])
    for ptype, (enc, _rate) in (rtpmap or {}).items():
        if enc.lower().startswith("telephone-event"):
            events.add(ptype)
    result = {
        "ssrc": "0x%08X" % ssrc,
        "src": addr_text(src, sport),
        "dst": addr_text(dst, dport),
        "payload_type": first_pt,
        "payload_name": payload_name(first_pt, rtpmap),
        "payload_names": [payload_name(ptype, rtpmap) for ptype in sorted(set(pkt[3] for pkt in pkts))],
        "clock_rate": rate,
        "start_s": pkts[0][0] / 1000.0,
        "end_s": pkts[-1][0] / 1000.0,
    }
    result.update(wireshark_stats(pkts, rtpmap))
    result["lost_percent"] = 100.0 * result["lost"] / result["expected"] if result["expected"] else 0.0
    result.update(voipmonitor_stats(pkts, rate, events))
    if jitter_buffers:
        # Comfort noise, like DTMF, is not voice for the buffers: the gap it covers is silence.
        result.update(emodel.jitter_buffer_mos(pkts, rate, model=mos_model, one_way_delay_ms=one_way_delay_ms,
                                               dtmf_pts=tuple(sorted(events | set([PT_CN, PT_CN_OLD])))))
    else:
        result.update({"mos_f1": None, "mos_f2": None, "mos_adaptive": None, "jitter_buffers": None})
    return result


def _check_int(name, value, low, high):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError("%s must be a whole number from %d to %d, got %r" % (name, low, high, value))
    return value


def _norm_host(value):
    text = str(value).strip() if isinstance(value, str) else None
    if text:
        text = text[1:-1] if text.startswith("[") and text.endswith("]") else text
        for family in (socket.AF_INET, socket.AF_INET6):
            try:
                return socket.inet_pton(family, text)
            except (OSError, ValueError):
                continue
    raise ValueError("hosts must hold IPv4 or IPv6 addresses, got %r" % (value,))


def _norm_ssrc(value):
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError("ssrc must be a number like 0xCA110000, got %r" % (value,))
    if isinstance(value, int):
        number = value
    else:
        text = value.strip().lower()
        try:
            number = int(text, 16) if text.startswith("0x") else int(text)
        except ValueError:
            raise ValueError("ssrc must be a number like 0xCA110000, got %r" % (value,)) from None
    if not 0 <= number <= 0xFFFFFFFF:
        raise ValueError("ssrc must fit in 32 bits, got %r" % (value,))
    return number


def check_options(detect="auto", hosts=None, ports=None, ssrcs=None, min_packets=1, jitter_buffers=True,
                  mos_model="voipmonitor", one_way_delay_ms=0.0):
    """Validate analysis options; ValueError says which one is wrong. Returns them normalised."""
    if detect not in DETECT_MODES:
        raise ValueError("detect must be one of %s, got %r" % (", ".join(DETECT_MODES), detect))
    if mos_model not in emodel.MOS_MODELS:
        raise ValueError("mos_model must be one of %s, got %r" % (", ".join(emodel.MOS_MODELS), mos_model))
    if not isinstance(jitter_buffers, bool):
        raise ValueError("jitter_buffers must be true or false, got %r" % (jitter_buffers,))
    if (isinstance(one_way_delay_ms, bool) or not isinstance(one_way_delay_ms, (int, float))
            or not 0 <= one_way_delay_ms <= 60000):
        raise ValueError("one_way_delay_ms must be a number of milliseconds from 0 to 60000, got %r" % (one_way_delay_ms,))
    for name, value in (("hosts", hosts), ("ports", ports), ("ssrcs", ssrcs)):
        if value is not None and not isinstance(value, (list, tuple, set, frozenset)):
            raise ValueError("%s must be a list, got %r" % (name, value))
    return {
        "detect": detect,
        "hosts": frozenset(_norm_host(host) for host in (hosts or ())),
        "ports": frozenset(_check_int("ports", port, 0, 65535) for port in (ports or ())),
        "ssrcs": frozenset(_norm_ssrc(value) for value in (ssrcs or ())),
        "min_packets": _check_int("min_packets", min_packets, 0, 1 << 31),
        "jitter_buffers": jitter_buffers,
        "mos_model": mos_model,
        "one_way_delay_ms": float(one_way_delay_ms),
    }


def summarize(streams):
    """Figures over all streams: totals, the largest jitter and delta, the lowest MOS values."""
    summary = {
        "streams": len(streams),
        "packets": sum(stream["packets"] for stream in streams),
        "lost": sum(stream["lost"] for stream in streams),
        "jitter_max_ms": max([stream["jitter_max_ms"] for stream in streams] or [0.0]),
        "delta_max_ms": max([stream["delta_max_ms"] for stream in streams] or [0.0]),
    }
    for key in ("mos_f1", "mos_f2", "mos_adaptive"):
        values = [stream[key] for stream in streams if stream.get(key) is not None]
        summary[key + "_min"] = min(values) if values else None
    return summary


def analyze_capture(data, name="capture", detect="auto", hosts=None, ports=None, ssrcs=None,
                    min_packets=1, jitter_buffers=True, mos_model="voipmonitor", one_way_delay_ms=0.0):
    """Analyse every RTP stream in capture ``data`` (bytes).

    Returns ``{"streams": [...], "summary": {...}, "frames": n, "rtp_packets": n, "detection":
    mode, "first_frame_s": t, "last_frame_s": t}``; streams are sorted by first arrival.
    ``hosts``/``ports``/``ssrcs`` keep streams with a matching source or destination
    address/port or SSRC (``0x``-hex or decimal); ``min_packets`` drops shorter streams.
    Raises ValueError for a bad option and PcapError for a bad capture.
    """
    opts = check_options(detect, hosts, ports, ssrcs, min_packets, jitter_buffers, mos_model, one_way_delay_ms)
    scan = scan_capture(data, name, opts["detect"])
    streams = []
    rtp_packets = 0
    for key, pkts in sorted(scan["streams"].items(), key=lambda item: (item[1][0][0], item[0])):
        rtp_packets += len(pkts)
        src, sport, dst, dport, ssrc = key
        if (len(pkts) < opts["min_packets"]
                or opts["hosts"] and src not in opts["hosts"] and dst not in opts["hosts"]
                or opts["ports"] and sport not in opts["ports"] and dport not in opts["ports"]
                or opts["ssrcs"] and ssrc not in opts["ssrcs"]):
            continue
        streams.append(analyze_stream(key, pkts, scan["rtpmaps"].get(key), opts["jitter_buffers"],
                                      opts["mos_model"], opts["one_way_delay_ms"]))
    return {"streams": streams, "summary": summarize(streams), "frames": scan["frames"], "rtp_packets": rtp_packets,
            "detection": scan["detection"], "first_frame_s": scan["first_frame_s"],
            "last_frame_s": scan["last_frame_s"]}


def read_capture(path):
    """Bytes of the capture at ``path``; PcapError if it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise PcapError("cannot read %s: %s" % (path, exc.strerror or exc)) from None
    except (TypeError, ValueError) as exc:
        raise PcapError("cannot read %r: %s" % (path, exc)) from None


def analyze_pcap(path, **kwargs):
    """:func:`analyze_capture` of the file at ``path`` (options are checked before it is read)."""
    check_options(**kwargs)
    return analyze_capture(read_capture(path), name=path, **kwargs)


_TSHARK_NUMBERS = ("packets", "lost", "lost_percent", "delta_min_ms", "delta_mean_ms", "delta_max_ms",
                   "jitter_min_ms", "jitter_mean_ms", "jitter_max_ms")


def parse_tshark_streams(text):
    """The table of ``tshark -q -z rtp,streams`` (Wireshark 4.0) as a list of dicts.

    Keys as in :func:`analyze_stream`: ``src``/``dst`` (``ip:port``, ``[ip]:port`` for IPv6),
    ``ssrc``, ``payload_names``, ``start_s``, ``end_s``, ``packets``, ``lost``, ``lost_percent``,
    ``delta_*_ms`` and ``jitter_*_ms`` (min, mean, max), and ``problem`` (tshark's X).
    Raises ValueError on a stream line it cannot read.
    """
    rows = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 17 or not parts[6].lower().startswith("0x"):
            continue
        problem = parts[-1] == "X"
        if problem:
            parts = parts[:-1]
        tail = parts[-9:]
        try:
            numbers = [int(tail[0]), int(tail[1]), float(tail[2].strip("()%"))] + [float(value) for value in tail[3:]]
            row = {"start_s": float(parts[0]), "end_s": float(parts[1]), "ssrc": "0x%08X" % int(parts[6], 16)}
            for key, ip_text, port in (("src", parts[2], parts[3]), ("dst", parts[4], parts[5])):
                row[key] = ("[%s]:%d" if ":" in ip_text else "%s:%d") % (ip_text, int(port))
        except (ValueError, IndexError):
            raise ValueError("not a tshark rtp,streams line: %r" % line) from None
        row.update(zip(_TSHARK_NUMBERS, numbers))
        row["payload_names"] = [name.strip() for name in " ".join(parts[7:-9]).split(",")]
        row["problem"] = problem
        rows.append(row)
    return rows
