#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: downtime_probe
short_description: Measure a service's downtime with a timestamped ICMP or UDP probe
version_added: 0.1.0
description:
  - Runs on the client host of the lab and needs only Python 3 and, for ICMP, iputils C(ping) there.
    Sends a probe every O(interval_ms) towards O(target), records when each probe was sent and when
    its answer arrived, and computes the downtime (Nkubito 2012, section 4, Eq. (14)).
  - RV(downtime_ms) is Eq. (14), unreachable probes times the probe interval, where every lost probe
    counts with the interval it really had (the time until the next probe was sent).
    RV(downtime_nominal_ms) multiplies by O(interval_ms) instead, exactly as the thesis did with
    C(ping -i 0.05); it underestimates when the prober falls behind its nominal interval, as iputils
    ping does (C(-i 0.01) sends every ~16 ms on a 250 Hz kernel, and slower while answers are missing).
  - RV(longest_gap_ms) is the longest time between two consecutive answers. Without loss it is about
    one interval; across an outage it is the outage plus about one interval.
  - O(state=started) starts the probe in the background (a new session, output to files in
    O(state_dir)) and returns at once with its O(probe_id); O(state=stopped) stops it and returns the
    results. The pair brackets an action such as C(xl migrate). O(state=run) probes in the foreground
    for O(duration) seconds.
  - The probe is stopped by the PID in its state file, after checking that C(/proc/PID/cmdline) and the
    process start time still match what was recorded; processes are never looked up by name.
  - O(probe_type=icmp) runs iputils C(ping -D -O -n -i INTERVAL -w MAX_DURATION TARGET).
    Non-root users cannot go below 2 ms with iputils (older versions refuse anything below 200 ms;
    the module then reports ping's message).
  - O(probe_type=udp) runs a small UDP sender/receiver that the module writes into the probe's
    directory and runs with its own Python. The target must send each datagram back unchanged. Run
    this module with O(probe_type=udp_echo) there (a second task, delegated to the guest), or for
    example C(socat UDP-RECVFROM:PORT,fork EXEC:cat).
  - O(probe_type=udp_echo) runs that echo responder on this host (O(bind_address), O(port)); when
    stopped it reports how many datagrams it echoed.
  - Raw logs, the state file and the result record stay in O(state_dir)/PROBE_ID/ as evidence.
author:
  - xenlab developers (@xenlab)
extends_documentation_fragment:
  - xenlab.migration.attributes
attributes:
  check_mode:
    support: full
    details:
      - With O(state=started) or O(state=run) nothing is started; the inputs are checked and the
        module reports the command it would run.
      - With O(state=stopped) nothing is stopped; the module reports whether the probe is running.
  diff_mode:
    support: none
options:
  state:
    description:
      - V(started) starts a background probe and returns its id.
      - V(stopped) stops the probe O(probe_id) and returns its results. Stopping a probe that was
        already stopped returns its stored results and reports no change.
      - V(run) probes for O(duration) seconds and returns the results.
    type: str
    required: true
    choices: [started, stopped, run]
  target:
    description:
      - Host name or address to probe. Resolved once when the probe starts; the probe then uses the
        address (RV(target_address)), so a DNS outage cannot look like downtime.
      - Required with O(state=started) and O(state=run), except for O(probe_type=udp_echo).
    type: str
  probe_type:
    description:
      - V(icmp) uses iputils C(ping); V(udp) sends numbered UDP datagrams to O(port) on the target,
        which must echo them; V(udp_echo) runs the echo responder on this host.
      - Ignored with O(state=stopped), where the probe's state file says what it is.
    type: str
    choices: [icmp, udp, udp_echo]
    default: icmp
    aliases: [mode]
  probe_id:
    description:
      - Identifies the probe. Required with O(state=stopped).
      - With O(state=started) or O(state=run) a new id is made when none is given. An id whose probe
        is still running, or was started and never stopped, is refused. An id whose probe was stopped
        can be used again; its old directory (logs, state and result files) is then replaced, so keep
        results with O(dest).
      - Letters, digits, V(.), V(_) and V(-), starting with a letter or digit; at most 64 characters.
    type: str
  interval_ms:
    description:
      - Time between probes in milliseconds, at least 1 (2 for non-root ICMP); the thesis used 50.
    type: float
    default: 10
  port:
    description:
      - UDP port of the echo responder (O(probe_type=udp)) or the port to listen on
        (O(probe_type=udp_echo)).
    type: int
    default: 7
  bind_address:
    description:
      - Address the O(probe_type=udp_echo) responder listens on.
    type: str
    default: 0.0.0.0
  answer_timeout_ms:
    description:
      - When a O(probe_type=udp) probe is stopped it sends nothing more and waits this long for
        answers still in flight; probes unanswered by then count as lost.
    type: float
    default: 500
  duration:
    description:
      - Seconds to probe with O(state=run). Required with O(state=run).
    type: float
  max_duration:
    description:
      - A background probe stops by itself after this many seconds, so a forgotten one cannot run
        (and log) for ever. V(0) means never. O(state=stopped) still analyses such a probe's log.
    type: int
    default: 3600
  state_dir:
    description:
      - Directory holding one subdirectory per probe (state file, logs, result record).
      - Defaults to C(/run/xenlab-downtime-probe) for root and C(~/.cache/xenlab-downtime-probe)
        otherwise.
    type: path
  dest:
    description:
      - Also write the result record (JSON, see RV(result_file)) to this file, atomically. Use
        C(/etc/ansible/facts.d/NAME.fact) to read it back as C(ansible_local.NAME).
      - Only with O(state=stopped) and O(state=run).
    type: path
  create_dirs:
    description:
      - Create the parent directories of O(dest) when they do not exist.
    type: bool
    default: false
  record_params:
    description:
      - Extra parameters (scenario, cap, call length, ...) stored under C(params) in the result
        record, next to the probe's own. They may not replace the probe's own keys.
    type: dict
  stop_timeout:
    description:
      - Seconds to wait for the probe to exit after SIGINT before it is killed with SIGKILL (a killed
        ping loses its statistics block; the per-probe lines are kept).
    type: float
    default: 5
notes:
  - Times in results are Unix seconds (C(*_s)) or ISO-8601 UTC (C(*_utc)); durations carry C(_ms) or C(_s).
  - Put the loss on a hop between client and target (a router, the guest's host); dropping packets in
    the prober's own network stack makes sends fail instead of being lost.
  - Probes sent after the last answer count as lost (RV(lost_trailing)); many of them mean the probe
    was stopped during an outage.
  - The module needs Python 3.7 or later on the host it runs on, also for O(probe_type=udp_echo).
seealso:
  - name: ping(8)
    description: iputils ping, whose C(-D) and C(-O) output the icmp probe parses.
    link: https://man7.org/linux/man-pages/man8/ping.8.html
  - name: socat(1)
    description: Another UDP echo responder for O(probe_type=udp).
    link: https://man7.org/linux/man-pages/man1/socat.1.html
"""

EXAMPLES = r"""
- name: Start a 10 ms ping probe towards the VoIP guest
  xenlab.migration.downtime_probe:
    state: started
    target: 10.0.0.50
    interval_ms: 10
  register: probe
  become: true

- name: Migrate the guest
  ansible.builtin.command: xl migrate voip dom0-b
  delegate_to: dom0-a
  changed_when: true

- name: Stop the probe and keep the result as a local fact
  xenlab.migration.downtime_probe:
    state: stopped
    probe_id: "{{ probe.probe_id }}"
    dest: /etc/ansible/facts.d/xenlab_downtime.fact
    create_dirs: true
    record_params:
      scenario: sipp_d20
      cap: 35
  register: downtime
  become: true

- name: Show Eq. (14) downtime and the longest gap
  ansible.builtin.debug:
    msg: "{{ downtime.downtime_ms }} ms lost, longest gap {{ downtime.longest_gap_ms }} ms"

- name: Echo UDP probes on the guest
  xenlab.migration.downtime_probe:
    state: started
    mode: udp_echo
    port: 5007
  register: echo
  delegate_to: voip-guest

- name: Probe with UDP for 30 seconds in the foreground
  xenlab.migration.downtime_probe:
    state: run
    probe_type: udp
    target: 10.0.0.50
    port: 5007
    interval_ms: 5
    duration: 30
  register: udp_run

- name: Stop the echo responder
  xenlab.migration.downtime_probe:
    state: stopped
    probe_id: "{{ echo.probe_id }}"
  delegate_to: voip-guest
"""

RETURN = r"""
probe_id:
  description: Id of the probe, for O(state=stopped).
  returned: always
  type: str
  sample: 20240501T120000Z-3fa2c1
pid:
  description: PID of the probe process.
  returned: success, not in check mode
  type: int
  sample: 4242
state_file:
  description: JSON state file of the probe (PID, start time, command line, log paths).
  returned: success, not in check mode
  type: str
  sample: /run/xenlab-downtime-probe/20240501T120000Z-3fa2c1/state.json
log_file:
  description: Raw output of the probe (ping's output or the UDP helper's log).
  returned: success, not in check mode
  type: str
  sample: /run/xenlab-downtime-probe/20240501T120000Z-3fa2c1/probe.log
cmd:
  description: Command line of the probe process.
  returned: success
  type: list
  elements: str
  sample: [/usr/bin/ping, -D, -O, -n, -i, "0.01", -w, "3600", 10.0.0.50]
probe_type:
  description: The probe type.
  returned: success
  type: str
  sample: icmp
target_address:
  description: Address the probe sends to (O(target) resolved), or the bind address of an echo responder.
  returned: success
  type: str
  sample: 10.0.0.50
interval_ms:
  description: Nominal probe interval (O(interval_ms)).
  returned: success
  type: float
  sample: 10.0
started_utc:
  description: When the probe started.
  returned: success, not in check mode
  type: str
  sample: "2024-05-01T12:00:00.123456Z"
stopped_utc:
  description: When the probe was stopped.
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: str
  sample: "2024-05-01T12:00:31.654321Z"
duration_s:
  description: Seconds between start and stop.
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: float
  sample: 31.53
probe_running:
  description: Whether the probe process is alive and still the recorded one.
  returned: check mode with O(state=stopped)
  type: bool
  sample: true
downtime_ms:
  description:
    - Eq. (14), lost probes times the probe interval, each lost probe counted with its own measured
      interval (the time until the next probe was sent).
  returned: when O(state) is V(stopped) or V(run) and O(probe_type) is not V(udp_echo), not in check mode
  type: float
  sample: 1008.0
downtime_nominal_ms:
  description: Eq. (14) as the thesis computed it, RV(lost) times O(interval_ms).
  returned: like RV(downtime_ms)
  type: float
  sample: 630.0
longest_gap_ms:
  description: Longest time between two consecutive answers; null with fewer than two answers.
  returned: like RV(downtime_ms)
  type: float
  sample: 1024.0
longest_gap_start_s:
  description: Unix time of the answer that opens the longest gap.
  returned: like RV(downtime_ms)
  type: float
  sample: 1714564812.250113
longest_gap_end_s:
  description: Unix time of the answer that closes the longest gap.
  returned: like RV(downtime_ms)
  type: float
  sample: 1714564813.274113
longest_gap_after_seq:
  description: Sequence number of the answered probe that opens the longest gap.
  returned: like RV(downtime_ms)
  type: int
  sample: 63
longest_gap_before_seq:
  description: Sequence number of the answered probe that closes the longest gap.
  returned: like RV(downtime_ms)
  type: int
  sample: 127
longest_gap_start_utc:
  description: RV(longest_gap_start_s) as ISO-8601 UTC.
  returned: like RV(downtime_ms)
  type: str
  sample: "2024-05-01T12:00:12.250113Z"
longest_gap_end_utc:
  description: RV(longest_gap_end_s) as ISO-8601 UTC.
  returned: like RV(downtime_ms)
  type: str
  sample: "2024-05-01T12:00:13.274113Z"
sent:
  description: Probes sent, from the first to the last sequence number seen (a probe still in flight when ping stopped is not counted).
  returned: like RV(downtime_ms)
  type: int
  sample: 187
received:
  description: Probes answered at least once.
  returned: like RV(downtime_ms)
  type: int
  sample: 124
lost:
  description: Probes never answered, the count in Eq. (14).
  returned: like RV(downtime_ms)
  type: int
  sample: 63
missing:
  description: Lost probes that left no line at all in the probe's output (plain C(ping) without C(-O)); included in RV(lost).
  returned: like RV(downtime_ms)
  type: int
  sample: 0
lost_leading:
  description: Lost probes before the first answer.
  returned: like RV(downtime_ms)
  type: int
  sample: 0
lost_trailing:
  description: Lost probes after the last answer; many of them mean the probe was stopped during an outage.
  returned: like RV(downtime_ms)
  type: int
  sample: 0
loss_pct:
  description: Lost probes in percent of those sent.
  returned: like RV(downtime_ms)
  type: float
  sample: 33.69
interval_mean_ms:
  description: Mean time between probes as they were sent, (last send - first send) / (sent - 1).
  returned: like RV(downtime_ms)
  type: float
  sample: 16.06
first_sent_s:
  description: Unix time the first probe was sent.
  returned: like RV(downtime_ms)
  type: float
  sample: 1714564811.002113
last_sent_s:
  description: Unix time the last probe was sent.
  returned: like RV(downtime_ms)
  type: float
  sample: 1714564813.990113
first_received_s:
  description: Unix time of the first answer; null if none came.
  returned: like RV(downtime_ms)
  type: float
  sample: 1714564811.002201
last_received_s:
  description: Unix time of the last answer; null if none came.
  returned: like RV(downtime_ms)
  type: float
  sample: 1714564813.990190
loss_runs:
  description:
    - Runs of consecutive lost probes (at most 100, in order), each with C(first_seq), C(last_seq),
      C(lost), C(first_sent_s), C(downtime_ms), C(downtime_nominal_ms) and the bounding answers
      C(gap_start_s), C(gap_end_s), C(gap_ms).
  returned: like RV(downtime_ms)
  type: list
  elements: dict
  sample: [{first_seq: 64, last_seq: 126, lost: 63, first_sent_s: 1714564812.26, downtime_ms: 1008.0,
            downtime_nominal_ms: 630.0, gap_start_s: 1714564812.25, gap_end_s: 1714564813.27, gap_ms: 1024.0}]
ping_statistics:
  description: Ping's own statistics block (transmitted, received, loss_pct, rtt_min_ms, rtt_avg_ms, ...); null if ping was killed.
  returned: when O(probe_type=icmp) and O(state) is V(stopped) or V(run), not in check mode
  type: dict
  sample: {transmitted: 188, received: 124, loss_pct: 34.04, rtt_avg_ms: 0.027}
probe_errors:
  description: Number of socket errors the UDP probe logged (for example ICMP port unreachable when nothing echoes).
  returned: when O(probe_type=udp) and O(state) is V(stopped) or V(run), not in check mode
  type: int
  sample: 0
packets_echoed:
  description: Datagrams the echo responder sent back; null if it was killed before it could say.
  returned: when O(probe_type=udp_echo) and O(state) is V(stopped) or V(run), not in check mode
  type: int
  sample: 3120
result_file:
  description:
    - The result record kept in the probe's directory, a JSON object with C(schema_version),
      C(kind=downtime_probe), C(host), C(recorded_utc), C(started_utc), C(finished_utc), C(params) and
      C(results) (the figures above).
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: str
  sample: /run/xenlab-downtime-probe/20240501T120000Z-3fa2c1/result.json
dest:
  description: Where the result record was also written (O(dest)).
  returned: when O(dest) is set, not in check mode
  type: str
  sample: /etc/ansible/facts.d/xenlab_downtime.fact
"""

import os
import pwd
import re
import secrets
import signal
import socket
import sys
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.xenlab.migration.plugins.module_utils import downtime, parsers, results
from ansible_collections.xenlab.migration.plugins.module_utils.process import check_alive, read_cmdline, read_proc_stat, spawn_detached

RECORD_KIND = "downtime_probe"
STATE_VERSION = 1
MIN_INTERVAL_MS = 1.0
MAX_INTERVAL_MS = 60000.0
MIN_USER_INTERVAL_MS = 2.0  # iputils refuses smaller intervals to non-root users
MAX_LOSS_RUNS = 100
STARTUP_CHECK_S = 0.3
PROBE_FILES = ("state.json", "probe.log", "stderr.log", "udp_probe.py", "result.json")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

# The UDP sender/receiver and echo responder. Written into the probe's directory and run with the
# module's interpreter (the module's own files vanish when the module exits), so that the process
# has a command line of its own to verify before it is signalled.
UDP_PROBE_SCRIPT = r'''# xenlab.migration downtime_probe UDP helper (written by the module; Python 3 stdlib only).
"""probe: send numbered UDP datagrams, log every send and answer. echo: send such datagrams back.

probe log (stdout): "# xenlab-udp-probe 1 target=A port=P interval_ms=I answer_timeout_ms=T", then
"tx SEQ TIME" per datagram sent, "rx SEQ TIME" per answer, "err TIME MESSAGE" per socket error and
finally "end TIME sent=N answered=M" (TIME = Unix seconds). echo log: "# xenlab-udp-echo 1 bind=A
port=P", "err TIME MESSAGE" lines, "end TIME echoed=N". SIGINT or SIGTERM stops either; the probe
then sends nothing more and waits answer_timeout_ms for answers still in flight. Both stop by
themselves after --max-duration seconds (0: never), so a forgotten probe cannot run for ever.
"""
import argparse
import select
import signal
import socket
import struct
import sys
import time

MAGIC = b"XLDP"
PACKET = struct.Struct("!4sQd")  # magic, sequence number, send time
STOP = []


def _stop(signum, frame):
    STOP.append(signum)


def _err(out, text):
    out.write("err %.6f %s\n" % (time.time(), text))


def probe(args, out):
    try:
        family, _type, _proto, _name, addr = socket.getaddrinfo(args.target, args.port, 0, socket.SOCK_DGRAM)[0]
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.connect(addr)
    except (OSError, IndexError) as exc:
        sys.stderr.write("udp probe: cannot send to %s port %d: %s\n" % (args.target, args.port, exc))
        return 2
    sock.setblocking(False)
    out.write("# xenlab-udp-probe 1 target=%s port=%d interval_ms=%s answer_timeout_ms=%s\n"
              % (addr[0], args.port, args.interval_ms, args.answer_timeout_ms))
    out.flush()
    interval = args.interval_ms / 1000.0
    seq = 0
    answered = set()
    next_send = time.monotonic()
    last_flush = next_send
    give_up = next_send + args.max_duration if args.max_duration > 0 else None
    deadline = None
    while True:
        now = time.monotonic()
        if give_up is not None and now >= give_up and not STOP:
            _err(out, "max duration of %g s reached" % args.max_duration)
            STOP.append(0)
        if STOP and deadline is None:
            # Send nothing more, but wait for answers still in flight.
            deadline = now + args.answer_timeout_ms / 1000.0
        if deadline is not None and now >= deadline:
            break
        if deadline is None and now >= next_send:
            wall = time.time()
            out.write("tx %d %.6f\n" % (seq, wall))
            try:
                sock.send(PACKET.pack(MAGIC, seq, wall))
            except OSError as exc:
                _err(out, "send seq %d: %s" % (seq, exc.strerror or exc))
            seq += 1
            next_send += interval
            while next_send <= now:  # fell behind: skip slots rather than send a burst
                next_send += interval
        wait = (deadline if deadline is not None else next_send) - time.monotonic()
        try:
            readable = select.select([sock], [], [], min(max(wait, 0.0), 0.2))[0]
        except InterruptedError:
            readable = []
        while readable:
            try:
                data = sock.recv(2048)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # e.g. an ICMP port unreachable, reported on the connected socket
                _err(out, "recv: %s" % (exc.strerror or exc))
                break
            stamp = time.time()
            if len(data) < PACKET.size:
                continue
            magic, rseq, _sent = PACKET.unpack(data[:PACKET.size])
            if magic != MAGIC or rseq >= seq:
                continue
            answered.add(rseq)
            out.write("rx %d %.6f\n" % (rseq, stamp))
        if now - last_flush >= 0.2:
            out.flush()
            last_flush = now
    out.write("end %.6f sent=%d answered=%d\n" % (time.time(), seq, len(answered)))
    out.flush()
    return 0


def echo(args, out):
    family = socket.AF_INET6 if ":" in args.bind else socket.AF_INET
    try:
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.bind((args.bind, args.port))
    except OSError as exc:
        sys.stderr.write("udp echo: cannot listen on %s port %d: %s\n" % (args.bind, args.port, exc))
        return 2
    out.write("# xenlab-udp-echo 1 bind=%s port=%d\n" % (args.bind, args.port))
    out.flush()
    count = 0
    give_up = time.monotonic() + args.max_duration if args.max_duration > 0 else None
    while not STOP:
        if give_up is not None and time.monotonic() >= give_up:
            _err(out, "max duration of %g s reached" % args.max_duration)
            break
        try:
            readable = select.select([sock], [], [], 0.2)[0]
        except InterruptedError:
            continue
        if not readable:
            continue
        try:
            data, peer = sock.recvfrom(65535)
            sock.sendto(data, peer)
            count += 1
        except InterruptedError:
            continue
        except OSError as exc:
            _err(out, "echo: %s" % (exc.strerror or exc))
            out.flush()
    out.write("end %.6f echoed=%d\n" % (time.time(), count))
    out.flush()
    return 0


def cli():
    parser = argparse.ArgumentParser(description="xenlab downtime_probe UDP helper")
    sub = parser.add_subparsers(dest="mode")
    p_probe = sub.add_parser("probe")
    p_probe.add_argument("--target", required=True)
    p_probe.add_argument("--port", type=int, required=True)
    p_probe.add_argument("--interval-ms", type=float, required=True)
    p_probe.add_argument("--answer-timeout-ms", type=float, default=500.0)
    p_echo = sub.add_parser("echo")
    p_echo.add_argument("--bind", default="0.0.0.0")
    p_echo.add_argument("--port", type=int, required=True)
    for sub_parser in (p_probe, p_echo):
        sub_parser.add_argument("--max-duration", type=float, default=0.0, help="stop after this many seconds (0: never)")
    args = parser.parse_args()
    if args.mode is None:
        parser.error("mode probe or echo is required")
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if args.mode == "probe":
        return probe(args, sys.stdout)
    return echo(args, sys.stdout)


if __name__ == "__main__":
    raise SystemExit(cli())
'''


class ProbeError(Exception):
    """A failure to report with fail_json; ``extra`` goes into the result."""

    def __init__(self, msg, **extra):
        super(ProbeError, self).__init__(msg)
        self.extra = extra


def default_state_dir():
    uid = os.geteuid()
    if uid == 0:
        return "/run/xenlab-downtime-probe"
    # The effective user's home, not $HOME (which become may leave pointing at another user's).
    return os.path.join(pwd.getpwuid(uid).pw_dir, ".cache", "xenlab-downtime-probe")


def format_interval_s(interval_ms):
    """ping's -i argument: seconds, without trailing zeros (10 ms -> '0.01')."""
    return ("%.6f" % (interval_ms / 1000.0)).rstrip("0").rstrip(".")


def resolve(target):
    try:
        infos = socket.getaddrinfo(target, None, 0, socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ProbeError("unknown target %r: it does not resolve (%s)" % (target, exc))
    if not infos:
        raise ProbeError("unknown target %r: it resolves to no address" % (target,))
    return infos[0][4][0]


def check_our_process(pid, cmd, start_ticks):
    """(True, '') if PID is alive and is the probe we started, else (False, why not)."""
    alive, why = check_alive(pid, start_ticks)
    if not alive:
        return False, why
    cmdline = read_cmdline(pid)
    if cmdline != cmd:
        return False, "PID %d now runs %r, not the probe %r" % (pid, cmdline, cmd)
    return True, ""


def wait_gone(pid, start_ticks, timeout, proc=None):
    """Wait until the process has exited; True if it did within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None:
            if proc.poll() is not None:
                return True
        else:
            stat = read_proc_stat(pid)
            if stat is None or stat[0] in ("Z", "X") or stat[1] != start_ticks:
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def read_text(path):
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except (IOError, OSError, TypeError):
        return ""


class Prober(object):
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.state_dir = self.p["state_dir"] or default_state_dir()
        self.warnings = []
        self.ping = None
        self.replaces = False

    # --- inputs ----------------------------------------------------------------------------
    def probe_dir(self, probe_id):
        return os.path.join(self.state_dir, probe_id)

    def known_ids(self):
        try:
            names = sorted(os.listdir(self.state_dir))
        except OSError:
            return []
        return [name for name in names if os.path.isfile(os.path.join(self.state_dir, name, "state.json"))]

    @staticmethod
    def check_id(probe_id):
        if not _ID_RE.match(probe_id):
            raise ProbeError("probe_id %r is invalid: use letters, digits, '.', '_' and '-', starting with a letter "
                             "or digit, at most 64 characters" % (probe_id,))
        return probe_id

    @staticmethod
    def new_id():
        return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)

    def validate_start(self):
        p = self.p
        if not MIN_INTERVAL_MS <= p["interval_ms"] <= MAX_INTERVAL_MS:
            raise ProbeError("interval_ms must be between %g and %g, got %g" % (MIN_INTERVAL_MS, MAX_INTERVAL_MS, p["interval_ms"]))
        if not 0 < p["port"] < 65536:
            raise ProbeError("port must be between 1 and 65535, got %d" % p["port"])
        if p["answer_timeout_ms"] < 0:
            raise ProbeError("answer_timeout_ms must not be negative, got %g" % p["answer_timeout_ms"])
        if p["stop_timeout"] <= 0:
            raise ProbeError("stop_timeout must be positive, got %g" % p["stop_timeout"])
        if p["max_duration"] < 0:
            raise ProbeError("max_duration must be 0 (no limit) or a positive number of seconds, got %d" % p["max_duration"])
        if p["state"] == "run":
            if not p["duration"] > 0:
                raise ProbeError("duration must be a positive number of seconds, got %r" % p["duration"])
            if p["max_duration"] and p["duration"] > p["max_duration"]:
                raise ProbeError("duration %g s exceeds max_duration %d s" % (p["duration"], p["max_duration"]))
        if p["probe_type"] != "udp_echo" and not p["target"]:
            raise ProbeError("target is required with state=%s and probe_type=%s" % (p["state"], p["probe_type"]))
        probe_id = self.check_id(p["probe_id"]) if p["probe_id"] else self.new_id()
        self.replaces = self.check_id_free(probe_id)
        if p["probe_type"] == "udp_echo":
            if p["target"]:
                self.warnings.append("target is ignored with probe_type=udp_echo (it listens on bind_address)")
            return probe_id, p["bind_address"], self.build_cmd(probe_id, p["bind_address"])
        address = resolve(p["target"])
        if p["probe_type"] == "icmp":
            self.check_ping()
        return probe_id, address, self.build_cmd(probe_id, address)

    def check_id_free(self, probe_id):
        """Refuse an id whose probe is running or was never stopped; True if a stopped one is to be replaced."""
        directory = self.probe_dir(probe_id)
        if not os.path.exists(directory):
            return False
        state_file = os.path.join(directory, "state.json")
        state = None
        if os.path.isfile(state_file):
            try:
                state = results.read_json(state_file)
            except results.ResultFileError:
                state = None
        if not isinstance(state, dict) or not isinstance(state.get("pid"), int):
            raise ProbeError("probe_id %r: %s exists but holds no usable state file; remove it or choose another id"
                             % (probe_id, directory), probe_id=probe_id)
        if state.get("stopped_utc"):
            return True
        alive, why = check_our_process(state["pid"], state.get("cmd"), state.get("start_ticks"))
        if alive:
            raise ProbeError("probe %r is already running (pid %d, started %s): stop it with state=stopped first"
                             % (probe_id, state["pid"], state.get("started_utc")), probe_id=probe_id, pid=state["pid"],
                             state_file=state_file)
        raise ProbeError("probe %r was started at %s and never stopped (%s): stop it with state=stopped to get its "
                         "result, then start it again" % (probe_id, state.get("started_utc"), why),
                         probe_id=probe_id, state_file=state_file)

    def clear_stopped(self, probe_id):
        """Remove the directory of a stopped probe whose id is reused: only the files the module wrote."""
        directory = self.probe_dir(probe_id)
        try:
            for name in PROBE_FILES:
                path = os.path.join(directory, name)
                if os.path.lexists(path):
                    os.unlink(path)
            os.rmdir(directory)
        except OSError as exc:
            raise ProbeError("cannot reuse probe_id %r: %s (remove %s or choose another id)" % (probe_id, exc, directory),
                             probe_id=probe_id)

    def check_ping(self):
        ping = self.module.get_bin_path("ping")
        if not ping:
            raise ProbeError("ping is not installed (not found in PATH): install iputils-ping (Debian) or iputils (EL), "
                             "or use probe_type=udp")
        rc, out, err = self.module.run_command([ping, "-V"], environ_update={"LC_ALL": "C"})
        if rc != 0 or "iputils" not in out + err:
            raise ProbeError("%s is not iputils ping, which the probe needs for -D and -O" % ping, rc=rc, stdout=out, stderr=err)
        if os.geteuid() != 0 and self.p["interval_ms"] < MIN_USER_INTERVAL_MS:
            raise ProbeError("interval_ms %g is too small for ICMP as a non-root user: iputils allows users %g ms at least; "
                             "use become: true or a larger interval" % (self.p["interval_ms"], MIN_USER_INTERVAL_MS))
        self.ping = ping

    def build_cmd(self, probe_id, address):
        p = self.p
        if p["probe_type"] == "icmp":
            cmd = [self.ping or "ping", "-D", "-O", "-n", "-i", format_interval_s(p["interval_ms"])]
            if p["max_duration"]:
                cmd += ["-w", str(p["max_duration"])]
            return cmd + [address]
        script = os.path.join(self.probe_dir(probe_id), "udp_probe.py")
        limit = ["--max-duration", str(p["max_duration"])]
        if p["probe_type"] == "udp":
            return [sys.executable, script, "probe", "--target", address, "--port", str(p["port"]),
                    "--interval-ms", repr(float(p["interval_ms"])), "--answer-timeout-ms",
                    repr(float(p["answer_timeout_ms"]))] + limit
        return [sys.executable, script, "echo", "--bind", address, "--port", str(p["port"])] + limit

    # --- start -----------------------------------------------------------------------------
    def start(self, probe_id, address, cmd):
        directory = self.probe_dir(probe_id)
        if self.replaces:
            self.clear_stopped(probe_id)
        try:
            os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
            os.mkdir(directory, 0o700)
            if self.p["probe_type"] != "icmp":
                with open(os.path.join(directory, "udp_probe.py"), "w") as handle:
                    handle.write(UDP_PROBE_SCRIPT)
        except OSError as exc:
            raise ProbeError("cannot create the probe directory %s: %s" % (directory, exc))
        log_file = os.path.join(directory, "probe.log")
        err_file = os.path.join(directory, "stderr.log")
        env = dict(os.environ, LC_ALL="C", PYTHONUNBUFFERED="1")
        # A new session and no inherited descriptors: Ansible's pipes close when the module
        # exits, and the probe survives it. The directory is new, so the logs start empty.
        try:
            proc = spawn_detached(cmd, log_file, err_file, cwd=directory, env=env)
        except OSError as exc:
            raise ProbeError("cannot start the probe %s: %s" % (cmd[0], exc))
        started = time.time()
        stat = read_proc_stat(proc.pid)
        state = {
            "schema_version": STATE_VERSION,
            "probe_id": probe_id,
            "probe_type": self.p["probe_type"],
            "pid": proc.pid,
            "start_ticks": stat[1] if stat else None,
            "cmd": cmd,
            "target": self.p["target"],
            "target_address": address,
            "port": self.p["port"],
            "interval_ms": float(self.p["interval_ms"]),
            "answer_timeout_ms": float(self.p["answer_timeout_ms"]),
            "max_duration_s": self.p["max_duration"],
            "log_file": log_file,
            "stderr_file": err_file,
            "started_utc": results.utc_iso(started),
            "started_s": started,
            "stopped_utc": None,
        }
        state_file = os.path.join(directory, "state.json")
        results.write_json_atomic(state_file, state, mode=0o600)
        # ping fails fast on a refused interval or a missing route: catch that while we can say so.
        time.sleep(STARTUP_CHECK_S)
        if proc.poll() is not None:
            stderr = read_text(err_file).strip()
            state["stopped_utc"] = results.utc_iso()
            state["stopped_s"] = time.time()
            state["exit_code"] = proc.returncode
            results.write_json_atomic(state_file, state, mode=0o600)
            hint = ""
            if "interval" in stderr and os.geteuid() != 0:
                hint = " (small intervals need root: use become: true)"
            raise ProbeError("the probe exited at once with code %d: %s%s" % (proc.returncode, stderr or "no message", hint),
                             cmd=cmd, rc=proc.returncode, stderr=stderr, probe_id=probe_id, state_file=state_file)
        return proc, state, state_file

    # --- stop ------------------------------------------------------------------------------
    def load_state(self, probe_id):
        self.check_id(probe_id)
        state_file = os.path.join(self.probe_dir(probe_id), "state.json")
        if not os.path.isfile(state_file):
            known = self.known_ids()
            raise ProbeError("unknown probe_id %r: its state file %s is missing (probes known in %s: %s)"
                             % (probe_id, state_file, self.state_dir, ", ".join(known[-10:]) or "none"), probe_id=probe_id)
        try:
            state = results.read_json(state_file)
        except results.ResultFileError as exc:
            raise ProbeError("probe %r: unreadable state file: %s" % (probe_id, exc), probe_id=probe_id)
        needed = ("pid", "start_ticks", "cmd", "probe_type", "log_file", "started_s", "started_utc", "interval_ms")
        missing = [key for key in needed if not isinstance(state, dict) or key not in state]
        if missing:
            raise ProbeError("probe %r: state file %s lacks %s" % (probe_id, state_file, ", ".join(missing)), probe_id=probe_id)
        if not isinstance(state["pid"], int) or not isinstance(state["cmd"], list):
            raise ProbeError("probe %r: state file %s has no valid pid and cmd" % (probe_id, state_file), probe_id=probe_id)
        return state, state_file

    def stop(self, state, state_file, proc=None):
        pid, ticks, cmd = state["pid"], state["start_ticks"], state["cmd"]

        def alive_now():
            if proc is not None:
                return proc.poll() is None, "it exited before it was stopped (code %s)" % proc.returncode
            return check_our_process(pid, cmd, ticks)

        def signal_probe(signum):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:  # it exited between the check and the signal
                pass

        alive, why = alive_now()
        if alive:
            # SIGINT makes ping print its statistics; the UDP helper then drains late answers.
            signal_probe(signal.SIGINT)
            grace = self.p["stop_timeout"]
            if state["probe_type"] == "udp":
                grace += state.get("answer_timeout_ms", 0.0) / 1000.0
            if not wait_gone(pid, ticks, grace, proc):
                alive, _why = alive_now()
                if alive:
                    signal_probe(signal.SIGKILL)
                    wait_gone(pid, ticks, 2.0, proc)
                    self.warnings.append("probe %d did not exit within %g s of SIGINT and was killed" % (pid, grace))
        else:
            self.warnings.append("the probe process had already stopped (%s); its log is analysed as it is" % why)
        stopped = time.time()
        state["stopped_utc"] = results.utc_iso(stopped)
        state["stopped_s"] = stopped
        if proc is not None:
            state["exit_code"] = proc.returncode
        results.write_json_atomic(state_file, state, mode=0o600)
        return stopped

    def analyse(self, state):
        text = read_text(state["log_file"])
        out = {}
        interval_s = state["interval_ms"] / 1000.0
        try:
            if state["probe_type"] == "udp_echo":
                parsed = parsers.parse_udp_echo_log(text, partial_ok=True)
                for error in parsed["errors"][:3]:
                    self.warnings.append("echo responder: %s" % error["message"])
                return {"packets_echoed": parsed["echoed"]}
            if state["probe_type"] == "icmp":
                parsed = parsers.parse_ping(text, partial_ok=True)
                records = parsers.records_from_ping(parsed)
                out["ping_statistics"] = parsed["statistics"]
            else:
                parsed = parsers.parse_udp_probe_log(text, partial_ok=True)
                records = parsers.records_from_udp_log(parsed)
                out["probe_errors"] = len(parsed["errors"])
                if parsed["errors"]:
                    self.warnings.append("the UDP probe logged %d socket errors, the first: %s"
                                         % (len(parsed["errors"]), parsed["errors"][0]["message"]))
            if not records:
                raise ValueError("the probe sent nothing that its log shows")
            figures = downtime.analyse(records, interval_s)
        except ValueError as exc:
            raise ProbeError("cannot compute the downtime from %s: %s" % (state["log_file"], exc),
                             stderr=read_text(state.get("stderr_file")), probe_id=state["probe_id"])
        runs = figures.pop("loss_runs")
        out.update(figures)
        out["loss_runs"] = runs[:MAX_LOSS_RUNS]
        if len(runs) > MAX_LOSS_RUNS:
            self.warnings.append("%d runs of lost probes; only the first %d are returned" % (len(runs), MAX_LOSS_RUNS))
        for key in ("start", "end"):
            value = out["longest_gap_%s_s" % key]
            out["longest_gap_%s_utc" % key] = None if value is None else results.utc_iso(value)
        if out["lost_trailing"] and out["lost_trailing"] * out["interval_mean_ms"] >= 500.0:
            self.warnings.append("the last %d probes were lost: the probe was stopped during an outage, so the downtime "
                                 "is cut short" % out["lost_trailing"])
        if out["interval_mean_ms"] > 1.25 * out["interval_ms"]:
            self.warnings.append("the probes went out every %.1f ms on average, not every %g ms; downtime_ms uses the "
                                 "measured intervals, downtime_nominal_ms the nominal one"
                                 % (out["interval_mean_ms"], out["interval_ms"]))
        return out

    def finish(self, state, state_file, stopped):
        figures = self.analyse(state)
        params = {
            "probe_id": state["probe_id"],
            "probe_type": state["probe_type"],
            "target": state.get("target"),
            "target_address": state.get("target_address"),
            "port": state.get("port"),
            "interval_ms": state["interval_ms"],
            "cmd": state["cmd"],
        }
        for key, value in (self.p["record_params"] or {}).items():
            if key in params:
                raise ProbeError("record_params may not replace the probe's own parameter %r" % key)
            params[key] = value
        try:
            record = results.measurement_record(RECORD_KIND, figures, params=params, started=state["started_s"], finished=stopped)
            directory = os.path.dirname(state_file)
            result_file = results.write_json_atomic(os.path.join(directory, "result.json"), record, mode=0o600)
        except (OSError, ValueError, TypeError) as exc:
            raise ProbeError("cannot write the result record: %s" % exc, probe_id=state["probe_id"])
        state["result_file"] = result_file
        results.write_json_atomic(state_file, state, mode=0o600)
        out = dict(figures)
        out.update({
            "result_file": result_file,
            "stopped_utc": state["stopped_utc"],
            "duration_s": round(stopped - state["started_s"], 6),
        })
        if self.p["dest"]:
            out["dest"] = self.write_dest(record, result_file, out)
        return out

    def write_dest(self, record, result_file, out):
        try:
            return results.write_json_atomic(self.p["dest"], record, make_dirs=self.p["create_dirs"])
        except (OSError, ValueError) as exc:
            raise ProbeError("cannot write dest %s: %s (create_dirs=%s); the result is in %s"
                             % (self.p["dest"], exc, self.p["create_dirs"], result_file), **out)

    def stored_result(self, state, state_file):
        """Results of a probe stopped earlier, from its result record."""
        result_file = state.get("result_file")
        if not result_file:
            raise ProbeError("probe %r was stopped at %s but has no result record (its analysis failed); its log is %s"
                             % (state["probe_id"], state["stopped_utc"], state["log_file"]), **describe(state, state_file))
        try:
            record = results.read_record(result_file, kind=RECORD_KIND)
        except results.ResultFileError as exc:
            raise ProbeError("probe %r was stopped at %s; its result record is unusable: %s"
                             % (state["probe_id"], state["stopped_utc"], exc), **describe(state, state_file))
        out = dict(record["results"])
        out.update({
            "result_file": result_file,
            "stopped_utc": state["stopped_utc"],
            "duration_s": round(state.get("stopped_s", state["started_s"]) - state["started_s"], 6),
        })
        if self.p["dest"]:
            out["dest"] = self.write_dest(record, result_file, out)
        return out


def describe(state, state_file):
    return {
        "probe_id": state["probe_id"],
        "pid": state["pid"],
        "state_file": state_file,
        "log_file": state["log_file"],
        "cmd": state["cmd"],
        "probe_type": state["probe_type"],
        "target_address": state.get("target_address"),
        "interval_ms": state["interval_ms"],
        "started_utc": state["started_utc"],
    }


def run_module(module, prober):
    p = module.params
    result = {"changed": False}
    if p["dest"] and p["state"] == "started":
        raise ProbeError("dest is only used with state=stopped or state=run (the result exists once the probe stops)")

    if p["state"] in ("started", "run"):
        probe_id, address, cmd = prober.validate_start()
        if module.check_mode:
            verb = "start" if p["state"] == "started" else "run for %g s" % p["duration"]
            if prober.replaces:
                verb = "replace the stopped probe %r and %s" % (probe_id, verb)
            result.update(changed=True, probe_id=probe_id, cmd=cmd, probe_type=p["probe_type"],
                          target_address=address, interval_ms=float(p["interval_ms"]),
                          msg="check mode: would %s %s" % (verb, " ".join(cmd)))
            return result, prober.warnings
        proc, state, state_file = prober.start(probe_id, address, cmd)
        result.update(describe(state, state_file))
        result["changed"] = True
        if p["state"] == "started":
            return result, prober.warnings
        try:
            time.sleep(max(p["duration"] - STARTUP_CHECK_S, 0.0))
        finally:
            stopped = prober.stop(state, state_file, proc=proc)
        result.update(prober.finish(state, state_file, stopped))
        return result, prober.warnings

    # state == stopped
    if p["target"]:
        prober.warnings.append("target is ignored with state=stopped")
    state, state_file = prober.load_state(p["probe_id"])
    result.update(describe(state, state_file))
    if state.get("stopped_utc"):
        result.update(prober.stored_result(state, state_file))
        result["msg"] = "probe %r was already stopped at %s" % (p["probe_id"], state["stopped_utc"])
        result["changed"] = bool(p["dest"]) and not module.check_mode
        return result, prober.warnings
    if module.check_mode:
        alive, why = check_our_process(state["pid"], state["cmd"], state["start_ticks"])
        result.update(changed=True, probe_running=alive,
                      msg="check mode: would stop probe %d" % state["pid"] if alive else "check mode: %s; would analyse its log" % why)
        return result, prober.warnings
    stopped = prober.stop(state, state_file)
    result.update(prober.finish(state, state_file, stopped))
    result["changed"] = True
    return result, prober.warnings


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", required=True, choices=["started", "stopped", "run"]),
            target=dict(type="str"),
            probe_type=dict(type="str", default="icmp", choices=["icmp", "udp", "udp_echo"], aliases=["mode"]),
            probe_id=dict(type="str"),
            interval_ms=dict(type="float", default=10),
            port=dict(type="int", default=7),
            bind_address=dict(type="str", default="0.0.0.0"),
            answer_timeout_ms=dict(type="float", default=500),
            duration=dict(type="float"),
            max_duration=dict(type="int", default=3600),
            state_dir=dict(type="path"),
            dest=dict(type="path"),
            create_dirs=dict(type="bool", default=False),
            record_params=dict(type="dict"),
            stop_timeout=dict(type="float", default=5),
        ),
        required_if=[
            ("state", "stopped", ("probe_id",)),
            ("state", "run", ("duration",)),
        ],
        supports_check_mode=True,
    )
    prober = Prober(module)
    try:
        result, warnings = run_module(module, prober)
    except ProbeError as exc:
        for warning in prober.warnings:
            module.warn(warning)
        module.fail_json(msg=str(exc), **exc.extra)
    except (OSError, ValueError) as exc:
        for warning in prober.warnings:
            module.warn(warning)
        module.fail_json(msg="downtime_probe failed: %s" % exc)
    for warning in warnings:
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
