#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: voip_quality
short_description: Call quality of the RTP streams in a packet capture
version_added: 0.1.0
description:
  - Reads a pcap or pcapng capture (for example one taken on the SIPp client while a VoIP guest
    is live-migrated) and returns one entry per RTP stream with the call-quality figures of
    Nkubito (2012), section 5.
  - The Wireshark figures are computed exactly as C(tshark -q -z rtp,streams) (Wireshark 4.0)
    computes them, in the same arrival order - packets, lost (expected minus received, negative
    with duplicates), minimum, mean and maximum delta, and the RFC 3550 interarrival jitter
    (minimum, mean, maximum) in milliseconds.
  - The VoIPmonitor figures of the thesis are the loss-run distribution C(a_sl1) to C(a_sl10)
    (runs of 1 to 9 and of 10 or more consecutively lost packets) and the packet delay variation
    buckets C(a_d50) to C(a_d300) (arrival interval minus RTP timestamp interval, in ms).
  - The MOS is computed after three simulated jitter buffers, as VoIPmonitor reports them -
    Asterisk's fixed buffer of 50 ms (RV(streams[].mos_f1)) and of 200 ms (RV(streams[].mos_f2))
    and its adaptive buffer of up to 500 ms (RV(streams[].mos_adaptive)). The loss ratio and
    burst ratio of what each buffer plays out feed the ITU-T G.107 E-model for G.711.
  - The analysis only reads the capture, so it also runs in check mode. With O(dest) the
    results are also written, atomically, as a measurement record (JSON); a fact file such as
    C(/etc/ansible/facts.d/xenlab_voip.fact) reads back as C(ansible_local.xenlab_voip).
author:
  - xenlab developers (@xenlab)
extends_documentation_fragment:
  - xenlab.migration.attributes
attributes:
  check_mode:
    support: full
    details:
      - The capture is analysed; O(dest) is not written, C(changed) says whether it would be.
  diff_mode:
    support: none
options:
  pcap:
    description:
      - Path of the capture on the managed host, pcap (micro- or nanosecond) or pcapng.
      - Link types Ethernet (with VLAN tags), Linux cooked (SLL, SLL2, as written by
        C(tcpdump -i any)), raw IP and BSD loopback.
    type: path
    required: true
  detect:
    description:
      - How RTP is told from other UDP traffic.
      - V(sdp) takes only UDP flows to or from an ip:port announced in an SDP body of SIP over
        UDP earlier in the capture, which is what tshark does by default.
      - V(heuristic) takes every UDP datagram that looks like RTP version 2, like
        C(tshark -o rtp.heuristic_rtp:TRUE).
      - V(auto) uses V(sdp) when the capture holds SDP, else V(heuristic).
    type: str
    choices: [auto, sdp, heuristic]
    default: auto
  hosts:
    description:
      - Keep only streams whose source or destination address is one of these IPv4 or IPv6
        addresses.
    type: list
    elements: str
  ports:
    description:
      - Keep only streams whose source or destination UDP port is one of these.
    type: list
    elements: int
  ssrcs:
    description:
      - Keep only streams with one of these SSRCs, written C(0xCA110000) or in decimal.
    type: list
    elements: str
  min_packets:
    description:
      - Leave out streams with fewer packets (stray RTP-looking datagrams in V(heuristic) mode).
    type: int
    default: 1
  jitter_buffers:
    description:
      - Simulate the three jitter buffers and compute the MOS values.
      - V(false) skips that part, which is most of the work; the C(mos_*) values are then null.
    type: bool
    default: true
  mos_model:
    description:
      - V(voipmonitor) scores like VoIPmonitor, whose figures the thesis reports (G.711 with
        packet-loss concealment, 4.5 without loss, delay not counted).
      - V(g107) uses the full ITU-T G.107 E-model with its default values, G.711 with
        concealment (Bpl 25.1), the burst ratio of the played-out stream, and the delay
        impairment Id of the mouth-to-ear delay - O(one_way_delay_ms) plus the buffer's mean
        playout delay.
    type: str
    choices: [voipmonitor, g107]
    default: voipmonitor
  one_way_delay_ms:
    description:
      - One-way network and codec delay in milliseconds added to the jitter buffer's delay for
        O(mos_model=g107) (0 to 60000).
    type: float
    default: 0
  dest:
    description:
      - Also write the results as a measurement record (JSON) to this file, atomically. Use
        C(/etc/ansible/facts.d/NAME.fact) to read it back as C(ansible_local.NAME).
      - An existing record with the same parameters and results is left alone (not changed).
    type: path
  create_dirs:
    description:
      - Create the parent directories of O(dest) when they do not exist.
    type: bool
    default: false
  record_params:
    description:
      - Extra parameters (scenario, credit cap, call length, ...) to store under C(params) in the
        record, next to the module's own.
    type: dict
requirements:
  - dpkt (Python library) on the managed host
notes:
  - Streams are keyed by source, destination and SSRC, like Wireshark's.
  - Times C(start_s) and C(end_s) are seconds from the first frame of the capture, like
    Wireshark's relative time.
  - The capture is read into memory; a capture of 100 000 RTP packets takes about a second.
seealso:
  - name: tshark(1)
    description: C(tshark -q -z rtp,streams) prints the same Wireshark figures.
    link: https://www.wireshark.org/docs/man-pages/tshark.html
  - name: ITU-T G.107
    description: The E-model, a computational model for use in transmission planning.
    link: https://www.itu.int/rec/T-REC-G.107
"""

EXAMPLES = r"""
- name: Call quality of the capture taken during the migration
  xenlab.migration.voip_quality:
    pcap: /var/tmp/xenlab/call.pcap
  register: quality

- name: Show the thesis's Table 9 figures of the stream towards the client
  ansible.builtin.debug:
    msg: >-
      MOS F1/F2/adaptive {{ stream.mos_f1 | round(2) }}/{{ stream.mos_f2 | round(2) }}/{{ stream.mos_adaptive | round(2) }},
      max jitter {{ stream.jitter_max_ms | round(2) }} ms, lost {{ stream.lost }}
  vars:
    stream: "{{ quality.streams | selectattr('dst', 'match', '^10\\.0\\.0\\.20:') | first }}"

- name: Only the streams of the Asterisk guest, kept as a local fact
  xenlab.migration.voip_quality:
    pcap: /var/tmp/xenlab/call.pcap
    hosts: [10.0.0.50]
    dest: /etc/ansible/facts.d/xenlab_voip.fact
    create_dirs: true
    record_params:
      scenario: migrate_cap35
      cap: 35
  become: true

- name: Full E-model with 40 ms network delay, jitter only (fast)
  xenlab.migration.voip_quality:
    pcap: /var/tmp/xenlab/call.pcapng
    mos_model: g107
    one_way_delay_ms: 40
"""

RETURN = r"""
streams:
  description: One entry per RTP stream, in order of first arrival.
  returned: success
  type: list
  elements: dict
  contains:
    ssrc:
      description: SSRC, C(0x) and 8 upper-case hex digits.
      type: str
      sample: "0xCA110000"
    src:
      description: Source C(ip:port) (C([ip]:port) for IPv6).
      type: str
      sample: "10.78.1.2:6000"
    dst:
      description: Destination C(ip:port).
      type: str
      sample: "10.78.2.2:6000"
    payload_type:
      description: RTP payload type of the first packet.
      type: int
      sample: 0
    payload_name:
      description: Its name as Wireshark writes it (from the SDP for dynamic types).
      type: str
      sample: g711U
    clock_rate:
      description: RTP clock rate in Hz used for jitter and PDV (0 if unknown).
      type: int
      sample: 8000
    start_s:
      description: Arrival of the first packet, seconds from the start of the capture.
      type: float
    end_s:
      description: Arrival of the last packet, seconds from the start of the capture.
      type: float
    packets:
      description: RTP packets received.
      type: int
      sample: 966
    expected:
      description: Packets expected from the sequence numbers (first to last, with wraps).
      type: int
    lost:
      description: Expected minus received, as tshark counts it (negative with duplicates).
      type: int
      sample: 34
    lost_percent:
      description: RV(streams[].lost) in percent of RV(streams[].expected).
      type: float
    delta_min_ms:
      description: Smallest time between consecutive packets (tshark's Min Delta; -1 if none).
      type: float
    delta_mean_ms:
      description: tshark's Mean Delta.
      type: float
    delta_max_ms:
      description: Largest time between consecutive packets (tshark's Max Delta).
      type: float
      sample: 525.698
    jitter_min_ms:
      description: tshark's Min Jitter (-1 if none).
      type: float
    jitter_mean_ms:
      description: Mean RFC 3550 jitter as tshark computes it.
      type: float
      sample: 5.677
    jitter_max_ms:
      description: Maximum RFC 3550 jitter as tshark computes it.
      type: float
      sample: 13.681
    jitter_last_ms:
      description: The jitter after the last packet.
      type: float
    loss_runs:
      description: VoIPmonitor's loss distribution - how many runs of 1 to 9 (C(a_sl1) to
        C(a_sl9)) and of 10 or more (C(a_sl10)) consecutive packets were lost.
      type: dict
      sample: {a_sl1: 5, a_sl2: 0, a_sl3: 2, a_sl4: 0, a_sl5: 0, a_sl6: 0, a_sl7: 0, a_sl8: 0, a_sl9: 0, a_sl10: 1}
    pdv:
      description: VoIPmonitor's delay distribution - packets whose arrival interval exceeded
        the timestamp interval by 50-69 (C(a_d50)), 70-89, 90-119, 120-149, 150-199, 200-299 and
        300 or more (C(a_d300)) ms.
      type: dict
      sample: {a_d50: 0, a_d70: 0, a_d90: 3, a_d120: 0, a_d150: 0, a_d200: 0, a_d300: 0}
    mos_f1:
      description: MOS after a fixed 50 ms jitter buffer (null if not simulated).
      type: float
      sample: 2.86
    mos_f2:
      description: MOS after a fixed 200 ms jitter buffer.
      type: float
    mos_adaptive:
      description: MOS after an adaptive jitter buffer of up to 500 ms.
      type: float
    jitter_buffers:
      description: Per buffer (C(f1), C(f2), C(adaptive)) what it lost - kind, size, packetization,
        lost frames, loss bursts by length, loss percent, burst ratio, and for O(mos_model=g107)
        the R factor and mouth-to-ear delay.
      type: dict
summary:
  description: Over all returned streams - their number, packets, lost, the largest jitter and
    delta, and the lowest of each MOS.
  returned: success
  type: dict
  sample: {streams: 4, packets: 3800, lost: 180, jitter_max_ms: 19.05, delta_max_ms: 842.3,
           mos_f1_min: 2.86, mos_f2_min: 2.86, mos_adaptive_min: 3.13}
frames:
  description: Frames in the capture.
  returned: success
  type: int
rtp_packets:
  description: RTP packets in all streams found, before the filters.
  returned: success
  type: int
detection:
  description: How RTP was found, V(sdp) or V(heuristic).
  returned: success
  type: str
  sample: sdp
pcap:
  description: Absolute path of the capture analysed.
  returned: success
  type: str
dest:
  description: Absolute path of the record file, when O(dest) is set.
  returned: when O(dest) is set
  type: str
"""

import hashlib
import json
import math
import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.xenlab.migration.plugins.module_utils import results, rtp

RECORD_KIND = "voip_quality"


def _finite(value):
    """JSON-safe copy: non-finite floats become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return dict((key, _finite(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _same_record(path, record):
    """True if ``path`` already holds a record with the same kind, params and results."""
    try:
        old = results.read_record(path, kind=RECORD_KIND)
    except results.ResultFileError:
        return False
    new = json.loads(json.dumps(record))
    return old.get("params") == new["params"] and old.get("results") == new["results"]


def run_module(module):
    p = module.params
    options = dict(detect=p["detect"], hosts=p["hosts"], ports=p["ports"], ssrcs=p["ssrcs"],
                   min_packets=p["min_packets"], jitter_buffers=p["jitter_buffers"],
                   mos_model=p["mos_model"], one_way_delay_ms=p["one_way_delay_ms"])
    rtp.check_options(**options)
    path = os.path.abspath(p["pcap"])
    data = rtp.read_capture(path)
    analysis = rtp.analyze_capture(data, name=path, **options)
    out = dict(changed=False, pcap=path, streams=_finite(analysis["streams"]), summary=_finite(analysis["summary"]),
               frames=analysis["frames"], rtp_packets=analysis["rtp_packets"], detection=analysis["detection"])
    if not p["dest"]:
        return out
    params = dict(options, pcap=path, pcap_bytes=len(data), pcap_sha256=hashlib.sha256(data).hexdigest())
    for key, value in (p["record_params"] or {}).items():
        if key in params:
            raise ValueError("record_params: %r is one of the module's own parameters in the record" % key)
        params[key] = value
    figures = dict((key, out[key]) for key in ("streams", "summary", "frames", "rtp_packets", "detection"))
    # The measured interval is the capture's; a time stamp a calendar cannot hold is left out.
    span = [value if value is not None and 0 <= value < 253402300800 else None
            for value in (analysis["first_frame_s"], analysis["last_frame_s"])]
    record = results.measurement_record(RECORD_KIND, figures, params=params, started=span[0], finished=span[1])
    dest = os.path.abspath(p["dest"])
    out["dest"] = dest
    if not p["create_dirs"] and not os.path.isdir(os.path.dirname(dest)):
        raise ValueError("the directory of dest (%s) does not exist; set create_dirs to create it"
                         % os.path.dirname(dest))
    if _same_record(dest, record):
        return out
    out["changed"] = True
    if not module.check_mode:
        results.write_json_atomic(dest, record, make_dirs=p["create_dirs"])
    return out


def main():
    module = AnsibleModule(
        argument_spec=dict(
            pcap=dict(type="path", required=True),
            detect=dict(type="str", default="auto", choices=["auto", "sdp", "heuristic"]),
            hosts=dict(type="list", elements="str"),
            ports=dict(type="list", elements="int"),
            ssrcs=dict(type="list", elements="str"),
            min_packets=dict(type="int", default=1),
            jitter_buffers=dict(type="bool", default=True),
            mos_model=dict(type="str", default="voipmonitor", choices=["voipmonitor", "g107"]),
            one_way_delay_ms=dict(type="float", default=0),
            dest=dict(type="path"),
            create_dirs=dict(type="bool", default=False),
            record_params=dict(type="dict"),
        ),
        supports_check_mode=True,
    )
    if not rtp.HAS_DPKT:
        module.fail_json(msg=missing_required_lib("dpkt"), exception=str(rtp.DPKT_IMPORT_ERROR))
    try:
        result = run_module(module)
    except rtp.PcapError as exc:
        module.fail_json(msg=str(exc), pcap=module.params["pcap"])
    except ValueError as exc:
        module.fail_json(msg="voip_quality: %s" % exc)
    except OSError as exc:
        module.fail_json(msg="voip_quality: cannot write %s: %s" % (module.params["dest"], exc.strerror or exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
