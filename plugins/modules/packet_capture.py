#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: packet_capture
short_description: Capture packets with dumpcap in the background, for example the RTP of calls during a migration
version_added: 0.1.0
description:
  - Starts C(dumpcap) (Wireshark's capture program) on an interface of the client host with a capture
    filter, writing a pcap file, and stops it later; the pair brackets an action such as a live
    migration while M(xenlab.migration.sipp_load) places calls. The capture feeds
    M(xenlab.migration.voip_quality), which computes jitter, loss runs, PDV and MOS (Nkubito 2012,
    section 5, where Wireshark and VoIPmonitor read the client's capture).
  - O(state=started) returns once C(dumpcap) reports that it is capturing, with the capture's
    O(capture_id). O(state=stopped) stops it by the PID in its state file, after checking that
    C(/proc/PID/cmdline) and the process start time still match what was recorded (processes are never
    looked up by name), and returns the packet counts, the file(s) and their size.
  - O(state=stopped) waits half a second before it sends SIGINT, because libpcap hands C(dumpcap)
    the packets in blocks (every 250 ms on Linux) and what is still in the kernel's buffer when
    C(dumpcap) stops is lost.
  - The capture stops by itself after O(max_duration) seconds or, without a ring buffer, when the file
    reaches O(max_size_kb). With O(ring_files) it keeps the last O(ring_files) files of O(max_size_kb) each.
  - The inputs (interface, filter) are checked with C(dumpcap -d) before anything starts, also in check mode.
  - Capturing needs root or the capabilities C(cap_net_raw,cap_net_admin) on C(dumpcap) (Debian sets
    them when C(wireshark-common/install-setuid) is answered yes; the client role does that).
author:
  - xenlab developers (@xenlab)
extends_documentation_fragment:
  - xenlab.migration.attributes
attributes:
  check_mode:
    support: full
    details:
      - With O(state=started) nothing is started; the interface and filter are checked and the module
        reports the command it would run.
      - With O(state=stopped) nothing is stopped; the module reports whether the capture is running.
  diff_mode:
    support: none
options:
  state:
    description:
      - V(started) starts a capture and returns its O(capture_id).
      - V(stopped) stops the capture O(capture_id) and returns its figures. Stopping a capture that
        was stopped before returns its stored figures and reports no change.
    type: str
    required: true
    choices: [started, stopped]
  interface:
    description:
      - Interface to capture on (a name such as C(eth0), C(lo) or C(any), as C(dumpcap -D) lists them).
        Required with O(state=started).
    type: str
  capture_filter:
    description:
      - Capture filter in libpcap syntax, for example V(udp) or V(udp and host 10.0.0.50).
    type: str
    aliases: [filter]
  path:
    description:
      - The capture file. Default C(capture.pcap) (or C(capture.pcapng)) in the capture's directory
        under O(state_dir). Its directory must exist and the file must not; with O(ring_files),
        C(dumpcap) adds a number and a time to the name of every file.
    type: path
  format:
    description:
      - V(pcap) (C(dumpcap -P)) is what M(xenlab.migration.voip_quality) and most tools read;
        V(pcapng) keeps interface names and capture statistics in the file.
    type: str
    choices: [pcap, pcapng]
    default: pcap
  snaplen:
    description:
      - Bytes kept of each packet (C(dumpcap -s)); RTP analysis needs the headers only, 200 is plenty.
        Default the whole packet.
    type: int
  max_size_kb:
    description:
      - Without O(ring_files), the capture stops when the file reaches this many kB (C(-a filesize)).
        With O(ring_files), the size of each file of the ring (C(-b filesize)). V(0) means no limit
        (not with O(ring_files)).
    type: int
    default: 1048576
  ring_files:
    description:
      - Keep a ring of this many files of O(max_size_kb) each (C(-b files)); older ones are deleted.
        V(0) writes one file.
    type: int
    default: 0
  max_duration:
    description:
      - The capture stops by itself after this many seconds (C(-a duration)), so a forgotten one cannot
        run for ever. V(0) means never.
    type: int
    default: 3600
  capture_id:
    description:
      - Identifies the capture. Required with O(state=stopped).
      - With O(state=started) a new id is made when none is given. An id whose capture is running, or
        was started and never stopped, is refused; the directory of a stopped one is replaced.
      - Letters, digits, V(.), V(_) and V(-), starting with a letter or digit; at most 64 characters.
    type: str
  state_dir:
    description:
      - Directory holding one subdirectory per capture (state file, dumpcap's messages, the result
        record and, by default, the capture itself).
      - Defaults to C(/var/tmp/xenlab-packet-capture) for root and C(~/.cache/xenlab-packet-capture) otherwise.
    type: path
  result_file:
    description:
      - Also write the measurement record (JSON, see RV(run_record)) to this file, atomically. Use
        C(/etc/ansible/facts.d/NAME.fact) to read it back as C(ansible_local.NAME).
      - Only with O(state=stopped).
    type: path
    aliases: [dest]
  create_dirs:
    description:
      - Create the parent directories of O(result_file) when they do not exist.
    type: bool
    default: false
  record_params:
    description:
      - Extra parameters (experiment, guest, ...) stored under C(params) in the record, next to the
        capture's own. They may not replace the capture's own keys.
    type: dict
  stop_timeout:
    description:
      - Seconds to wait for C(dumpcap) to exit after SIGINT before it is killed with SIGKILL (a killed
        dumpcap loses its statistics; the packets already written stay).
    type: float
    default: 10
  executable:
    description:
      - The dumpcap program, a name looked up in PATH (and C(/usr/sbin), C(/usr/bin)) or a path.
    type: str
    default: dumpcap
notes:
  - Capturing on the client sees the client's side of the calls. Capture on the host that plays the
    audio's receiver (or on both ends) to measure the path of the stream you are interested in.
  - The module counts the packets in the file(s) itself (RV(packets_in_files)), without Wireshark's
    C(capinfos), so that a killed C(dumpcap) still gives a count.
seealso:
  - name: dumpcap(1)
    description: Wireshark's capture program.
    link: https://www.wireshark.org/docs/man-pages/dumpcap.html
  - name: pcap-filter(7)
    description: The capture filter syntax.
    link: https://www.tcpdump.org/manpages/pcap-filter.7.html
  - module: xenlab.migration.voip_quality
    description: Analyse the RTP streams of the capture.
  - module: xenlab.migration.sipp_load
    description: Place the calls whose RTP is captured.
"""

EXAMPLES = r"""
- name: Capture the client's UDP traffic with the VoIP guest
  xenlab.migration.packet_capture:
    state: started
    interface: eth0
    capture_filter: udp and host 10.0.0.50
    snaplen: 200
  register: capture
  become: true

- name: Migrate the VoIP guest
  ansible.builtin.command: xl migrate voip dom0-b
  delegate_to: dom0-a
  changed_when: true

- name: Stop the capture
  xenlab.migration.packet_capture:
    state: stopped
    capture_id: "{{ capture.capture_id }}"
    result_file: /etc/ansible/facts.d/xenlab_capture.fact
    create_dirs: true
  register: pcap
  become: true

- name: Call quality of the captured RTP
  xenlab.migration.voip_quality:
    pcap: "{{ pcap.file }}"
  register: quality

- name: A ring of 10 files of 100 MB for a long experiment
  xenlab.migration.packet_capture:
    state: started
    interface: any
    capture_filter: udp
    max_size_kb: 100000
    ring_files: 10
    max_duration: 86400
  become: true
"""

RETURN = r"""
capture_id:
  description: Id of the capture, for O(state=stopped).
  returned: always
  type: str
  sample: 20240501T120000Z-3fa2c1
cmd:
  description: dumpcap's command line.
  returned: success
  type: list
  elements: str
  sample: [/usr/bin/dumpcap, -i, eth0, -f, udp, -P, -w, /var/tmp/xenlab-packet-capture/ID/capture.pcap, -a, "duration:3600"]
pid:
  description: PID of dumpcap.
  returned: success, not in check mode
  type: int
  sample: 4242
capture_dir:
  description: The capture's directory (state file, dumpcap's messages, the record).
  returned: success, not in check mode
  type: str
  sample: /var/tmp/xenlab-packet-capture/20240501T120000Z-3fa2c1
state_file:
  description: JSON state file of the capture.
  returned: success, not in check mode
  type: str
  sample: /var/tmp/xenlab-packet-capture/20240501T120000Z-3fa2c1/state.json
capture_path:
  description: The capture file as given to dumpcap (with O(ring_files), the base of the files' names).
  returned: success
  type: str
  sample: /var/tmp/xenlab-packet-capture/20240501T120000Z-3fa2c1/capture.pcap
interface:
  description: The interface.
  returned: success
  type: str
  sample: eth0
started_utc:
  description: When dumpcap reported that it was capturing.
  returned: success, not in check mode
  type: str
  sample: "2024-05-01T12:00:00.123456Z"
stopped_utc:
  description: When dumpcap had ended.
  returned: when O(state=stopped), not in check mode
  type: str
  sample: "2024-05-01T12:03:20.654321Z"
duration_s:
  description: Seconds from the start of the capture to its end.
  returned: when O(state=stopped), not in check mode
  type: float
  sample: 200.53
running:
  description: Whether dumpcap is running and still the recorded process.
  returned: check mode with O(state=stopped)
  type: bool
  sample: true
file:
  description: The capture file to analyse (with O(ring_files), the newest of RV(files)); null if none was written.
  returned: when O(state=stopped), not in check mode
  type: str
  sample: /var/tmp/xenlab-packet-capture/20240501T120000Z-3fa2c1/capture.pcap
files:
  description: Every capture file that exists, oldest first, with C(path), C(size_bytes) and C(packets).
  returned: when O(state=stopped), not in check mode
  type: list
  elements: dict
  sample: [{path: /var/tmp/xenlab-packet-capture/ID/capture.pcap, size_bytes: 1048576, packets: 4800}]
size_bytes:
  description: Total size of RV(files).
  returned: when O(state=stopped), not in check mode
  type: int
  sample: 1048576
packets_in_files:
  description: Packets in RV(files), counted by the module from the records of the files.
  returned: when O(state=stopped), not in check mode
  type: int
  sample: 4800
packets_captured:
  description: Packets dumpcap says it captured (its "Packets captured" line); null if it was killed before saying.
  returned: when O(state=stopped), not in check mode
  type: int
  sample: 4800
packets_received:
  description: Packets the interface delivered to dumpcap (its "Packets received/dropped" line); null if unknown.
  returned: when O(state=stopped), not in check mode
  type: int
  sample: 4800
packets_dropped:
  description: Packets dropped by the capture (kernel buffer full, ...); null if unknown.
  returned: when O(state=stopped), not in check mode
  type: int
  sample: 0
truncated:
  description: Whether the last packet record of a file is incomplete (dumpcap was killed while writing).
  returned: when O(state=stopped), not in check mode
  type: bool
  sample: false
stop_signals:
  description: The signals the module sent to end dumpcap (empty when it had stopped by itself).
  returned: when O(state=stopped), not in check mode
  type: list
  elements: str
  sample: [SIGINT]
dumpcap_messages:
  description: What dumpcap wrote to its standard error (the last lines).
  returned: when O(state=stopped), not in check mode
  type: str
  sample: "Capturing on 'eth0'\nFile: /var/tmp/.../capture.pcap\nPackets captured: 4800"
run_record:
  description:
    - The measurement record kept in the capture's directory, a JSON object with C(schema_version),
      C(kind=packet_capture), C(host), C(recorded_utc), C(started_utc), C(finished_utc), C(params) and
      C(results) (the figures above).
  returned: when O(state=stopped), not in check mode
  type: str
  sample: /var/tmp/xenlab-packet-capture/20240501T120000Z-3fa2c1/result.json
result_file:
  description: Where the record was also written (O(result_file)).
  returned: when O(result_file) is set, not in check mode
  type: str
  sample: /etc/ansible/facts.d/xenlab_capture.fact
"""

import glob
import os
import pwd
import re
import secrets
import signal
import struct
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.xenlab.migration.plugins.module_utils import results
from ansible_collections.xenlab.migration.plugins.module_utils.process import check_alive, read_cmdline, read_proc_stat, spawn_detached

RECORD_KIND = "packet_capture"
STATE_VERSION = 1
STARTUP_TIMEOUT_S = 10.0
STARTUP_SETTLE_S = 0.3
KILL_WAIT_S = 2.0
DRAIN_S = 0.5
MESSAGE_TAIL_LINES = 12
CAPTURE_FILES = ("state.json", "dumpcap.log", "result.json")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_CAPTURED_RE = re.compile(r"^Packets captured: (\d+)\s*$", re.M)
_RECEIVED_RE = re.compile(r"^Packets received/dropped on interface '.*': (\d+)/(\d+)", re.M)
_ERROR_RE = re.compile(r"^dumpcap: .*", re.M)
FIGURE_KEYS = ("packets_captured", "packets_received", "packets_dropped", "packets_in_files", "size_bytes",
               "files", "file", "truncated", "stop_signals", "duration_s")

_PCAP_MAGIC = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">", b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
_PCAPNG_PACKET_BLOCKS = (2, 3, 6)  # obsolete packet block, simple and enhanced packet blocks


class CaptureError(Exception):
    """A failure to report with fail_json; ``extra`` goes into the result."""

    def __init__(self, msg, **extra):
        super(CaptureError, self).__init__(msg)
        self.extra = extra


def default_state_dir():
    uid = os.geteuid()
    if uid == 0:
        return "/var/tmp/xenlab-packet-capture"
    return os.path.join(pwd.getpwuid(uid).pw_dir, ".cache", "xenlab-packet-capture")


def count_packets(path):
    """(packets, truncated) of a pcap or pcapng file, from its record framing only.

    Raises ValueError when the file is neither. A file cut off inside a record (dumpcap killed
    while writing) counts its complete records and reports truncated=True.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        magic = handle.read(4)
        if size == 0 or (len(magic) < 4 and size < 24):
            return 0, size > 0
        if magic in _PCAP_MAGIC:
            order = _PCAP_MAGIC[magic]
            if size < 24:
                return 0, True
            pos, count = 24, 0
            while pos + 16 <= size:
                handle.seek(pos + 8)
                incl_len = struct.unpack(order + "I", handle.read(4))[0]
                if pos + 16 + incl_len > size:
                    return count, True
                pos += 16 + incl_len
                count += 1
            return count, pos != size
        if magic == _PCAPNG_SHB:
            pos, count, order = 0, 0, "<"
            while pos + 12 <= size:
                handle.seek(pos)
                head = handle.read(12)
                if head[:4] == _PCAPNG_SHB:
                    order = "<" if head[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
                block_type, length = struct.unpack(order + "II", head[:8])
                if length < 12 or pos + length > size:
                    return count, True
                if block_type in _PCAPNG_PACKET_BLOCKS:
                    count += 1
                pos += length
            return count, pos != size
    raise ValueError("%s is neither a pcap nor a pcapng file (magic %s)" % (path, magic.hex()))


def parse_dumpcap_messages(text):
    """Figures of dumpcap's closing lines: packets captured, received, dropped (None when absent)."""
    # dumpcap updates its "Packets: N" count in place with carriage returns.
    text = text.replace("\r", "\n")
    out = {"packets_captured": None, "packets_received": None, "packets_dropped": None}
    captured = _CAPTURED_RE.findall(text)
    if captured:
        out["packets_captured"] = int(captured[-1])
    received = _RECEIVED_RE.findall(text)
    if received:
        out["packets_received"] = sum(int(r) for r, _d in received)
        out["packets_dropped"] = sum(int(d) for _r, d in received)
    return out


def check_our_process(pid, cmd, start_ticks):
    """(True, '') if PID is alive and is the dumpcap we started, else (False, why not)."""
    alive, why = check_alive(pid, start_ticks)
    if not alive:
        return False, why
    cmdline = read_cmdline(pid)
    if cmdline != cmd:
        return False, "PID %d now runs %r, not the capture %r" % (pid, cmdline, cmd)
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
        time.sleep(0.05)


def read_text(path):
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except (IOError, OSError, TypeError):
        return ""


def message_tail(text):
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("Packets: ")]
    return "\n".join(lines[-MESSAGE_TAIL_LINES:])


class Capture(object):
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.state_dir = self.p["state_dir"] or default_state_dir()
        self.warnings = []
        self.replaces = False

    def capture_dir(self, capture_id):
        return os.path.join(self.state_dir, capture_id)

    @staticmethod
    def check_id(capture_id):
        if not _ID_RE.match(capture_id):
            raise CaptureError("capture_id %r is invalid: use letters, digits, '.', '_' and '-', starting with a letter "
                               "or digit, at most 64 characters" % (capture_id,))
        return capture_id

    # --- start -----------------------------------------------------------------------------
    def find_dumpcap(self):
        exe = self.p["executable"]
        if "/" in exe:
            if os.path.isfile(exe) and os.access(exe, os.X_OK):
                return exe
            raise CaptureError("dumpcap executable %s does not exist or is not executable" % exe)
        path = self.module.get_bin_path(exe, opt_dirs=["/usr/sbin", "/usr/bin"])
        if not path:
            raise CaptureError("dumpcap is not installed (%s not found): install tshark (Debian, it brings dumpcap) or "
                               "wireshark-cli (EL); the role xenlab.migration.client does" % exe)
        return path

    def validate(self):
        p = self.p
        if not p["interface"]:
            raise CaptureError("interface is required with state=started")
        for name in ("max_size_kb", "ring_files", "max_duration"):
            if p[name] < 0:
                raise CaptureError("%s must not be negative, got %d" % (name, p[name]))
        if p["snaplen"] is not None and not 0 < p["snaplen"] <= 262144:
            raise CaptureError("snaplen must be between 1 and 262144, got %d" % p["snaplen"])
        if p["ring_files"] and not p["max_size_kb"]:
            raise CaptureError("ring_files needs max_size_kb, the size of each file of the ring")
        if p["ring_files"] == 1:
            raise CaptureError("ring_files must be 0 (one file) or at least 2")
        if not p["stop_timeout"] > 0:
            raise CaptureError("stop_timeout must be positive, got %r" % p["stop_timeout"])
        capture_id = self.check_id(p["capture_id"]) if p["capture_id"] else \
            time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)
        self.replaces = self.check_id_free(capture_id)
        path = p["path"] or os.path.join(self.capture_dir(capture_id), "capture." + p["format"])
        if p["path"]:
            if not os.path.isdir(os.path.dirname(path) or "."):
                raise CaptureError("the directory of path %s does not exist" % path)
            if os.path.lexists(path):
                raise CaptureError("path %s exists; the module does not overwrite captures (remove it or choose another)" % path)
        dumpcap = self.find_dumpcap()
        cmd = [dumpcap, "-i", p["interface"]]
        if p["capture_filter"]:
            cmd += ["-f", p["capture_filter"]]
        self.check_inputs(cmd)
        if p["snaplen"]:
            cmd += ["-s", str(p["snaplen"])]
        cmd += ["-P" if p["format"] == "pcap" else "-n", "-w", path]
        if p["ring_files"]:
            cmd += ["-b", "filesize:%d" % p["max_size_kb"], "-b", "files:%d" % p["ring_files"]]
        elif p["max_size_kb"]:
            cmd += ["-a", "filesize:%d" % p["max_size_kb"]]
        if p["max_duration"]:
            cmd += ["-a", "duration:%d" % p["max_duration"]]
        return capture_id, path, cmd

    def check_inputs(self, cmd):
        """Let dumpcap compile the filter for the interface (-d): it names a bad one or a missing device.

        dumpcap -d exits with 0 even then; its "dumpcap: ..." lines tell.
        """
        rc, out, err = self.module.run_command(cmd + ["-d"], environ_update={"LC_ALL": "C"})
        errors = _ERROR_RE.findall(err)
        if rc != 0 or errors:
            detail = " ".join(line.strip() for line in err.splitlines() if line.strip() and not line.startswith("Capturing on"))
            raise CaptureError("dumpcap refuses interface %r with filter %r: %s"
                               % (self.p["interface"], self.p["capture_filter"], detail or "rc=%d" % rc),
                               rc=rc, stderr=err, cmd=cmd + ["-d"])

    def check_id_free(self, capture_id):
        directory = self.capture_dir(capture_id)
        if not os.path.exists(directory):
            return False
        state_file = os.path.join(directory, "state.json")
        try:
            state = results.read_json(state_file)
        except results.ResultFileError:
            state = None
        if not isinstance(state, dict) or not isinstance(state.get("pid"), int):
            raise CaptureError("capture_id %r: %s exists but holds no usable state file; remove it or choose another id"
                               % (capture_id, directory), capture_id=capture_id)
        if state.get("stopped_utc"):
            return True
        alive, why = check_our_process(state["pid"], state.get("cmd"), state.get("start_ticks"))
        if alive:
            raise CaptureError("capture %r is running (pid %d, started %s): stop it with state=stopped first"
                               % (capture_id, state["pid"], state.get("started_utc")), capture_id=capture_id, pid=state["pid"])
        raise CaptureError("capture %r was started at %s and never stopped (%s): stop it with state=stopped to get its "
                           "figures, then start it again" % (capture_id, state.get("started_utc"), why), capture_id=capture_id)

    def clear_stopped(self, capture_id):
        directory = self.capture_dir(capture_id)
        try:
            for name in os.listdir(directory):
                if name in CAPTURE_FILES or name.startswith("capture"):
                    os.unlink(os.path.join(directory, name))
            os.rmdir(directory)
        except OSError as exc:
            raise CaptureError("cannot reuse capture_id %r: %s (remove %s or choose another id)"
                               % (capture_id, exc, directory), capture_id=capture_id)

    def start(self, capture_id, path, cmd):
        directory = self.capture_dir(capture_id)
        if self.replaces:
            self.clear_stopped(capture_id)
        try:
            os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
            os.mkdir(directory, 0o700)
        except OSError as exc:
            raise CaptureError("cannot create the capture directory %s: %s" % (directory, exc))
        log_file = os.path.join(directory, "dumpcap.log")
        try:
            proc = spawn_detached(cmd, os.devnull, log_file, cwd=directory, env=dict(os.environ, LC_ALL="C"))
        except OSError as exc:
            raise CaptureError("cannot start %s: %s" % (cmd[0], exc))
        stat = read_proc_stat(proc.pid)
        state = {
            "schema_version": STATE_VERSION,
            "capture_id": capture_id,
            "pid": proc.pid,
            "start_ticks": stat[1] if stat else None,
            "cmd": cmd,
            "capture_dir": directory,
            "path": path,
            "ring": bool(self.p["ring_files"]),
            "log_file": log_file,
            "params": self.own_params(path, cmd),
            "started_s": time.time(),
            "stopped_utc": None,
        }
        state["started_utc"] = results.utc_iso(state["started_s"])
        state_file = os.path.join(directory, "state.json")
        results.write_json_atomic(state_file, state, mode=0o600)
        self.wait_capturing(proc, state, state_file)
        return proc, state, state_file

    def wait_capturing(self, proc, state, state_file):
        """Return once dumpcap says "Capturing on" and is still alive a moment later; else fail."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline and proc.poll() is None and "Capturing on" not in read_text(state["log_file"]):
            time.sleep(0.05)
        settle = time.monotonic() + STARTUP_SETTLE_S
        while proc.poll() is None and time.monotonic() < settle:
            time.sleep(0.05)
        if proc.poll() is None:
            # The packets from now on are in the capture.
            state["started_s"] = time.time()
            state["started_utc"] = results.utc_iso(state["started_s"])
            results.write_json_atomic(state_file, state, mode=0o600)
            if "Capturing on" not in read_text(state["log_file"]):
                self.warnings.append("dumpcap did not report 'Capturing on' within %g s" % STARTUP_TIMEOUT_S)
            return
        messages = message_tail(read_text(state["log_file"]))
        self.mark_stopped(state, state_file, [], proc.returncode)
        raise CaptureError("dumpcap exited at once with code %d: %s" % (proc.returncode, messages or "no message"),
                           rc=proc.returncode, cmd=state["cmd"], capture_id=state["capture_id"], dumpcap_messages=messages)

    def own_params(self, path, cmd):
        p = self.p
        params = {"interface": p["interface"], "capture_filter": p["capture_filter"], "path": path, "format": p["format"],
                  "snaplen": p["snaplen"], "max_size_kb": p["max_size_kb"], "ring_files": p["ring_files"],
                  "max_duration": p["max_duration"], "cmd": cmd}
        merge_params(params, p["record_params"])
        return params

    # --- stop ------------------------------------------------------------------------------
    def load_state(self, capture_id):
        self.check_id(capture_id)
        state_file = os.path.join(self.capture_dir(capture_id), "state.json")
        if not os.path.isfile(state_file):
            raise CaptureError("unknown capture_id %r: its state file %s is missing" % (capture_id, state_file),
                               capture_id=capture_id)
        try:
            state = results.read_json(state_file)
        except results.ResultFileError as exc:
            raise CaptureError("capture %r: unreadable state file: %s" % (capture_id, exc), capture_id=capture_id)
        needed = ("pid", "start_ticks", "cmd", "capture_dir", "path", "ring", "log_file", "params", "started_s", "started_utc")
        missing = [key for key in needed if not isinstance(state, dict) or key not in state]
        if missing:
            raise CaptureError("capture %r: state file %s lacks %s" % (capture_id, state_file, ", ".join(missing)),
                               capture_id=capture_id)
        if not isinstance(state["pid"], int) or not isinstance(state["cmd"], list):
            raise CaptureError("capture %r: state file %s has no valid pid and cmd" % (capture_id, state_file),
                               capture_id=capture_id)
        return state, state_file

    def stop(self, state):
        pid, ticks = state["pid"], state["start_ticks"]
        alive, why = check_our_process(pid, state["cmd"], ticks)
        if not alive:
            self.warnings.append("dumpcap had already stopped (%s): it reached max_duration or max_size_kb, or was "
                                 "ended by something else" % why)
            return []
        # libpcap hands dumpcap the captured packets in blocks (every 250 ms on Linux); what is
        # still in the kernel's buffer when dumpcap stops is lost. Measured: 0.2 s is enough on lo.
        time.sleep(DRAIN_S)
        sent = []
        for signum, name, wait in ((signal.SIGINT, "SIGINT", self.p["stop_timeout"]), (signal.SIGKILL, "SIGKILL", KILL_WAIT_S)):
            if not check_our_process(pid, state["cmd"], ticks)[0]:
                break
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                break
            sent.append(name)
            if wait_gone(pid, ticks, wait):
                break
        if "SIGKILL" in sent:
            self.warnings.append("dumpcap did not exit within %g s of SIGINT and was killed; its statistics are missing"
                                 % self.p["stop_timeout"])
        return sent

    @staticmethod
    def mark_stopped(state, state_file, signals, exit_code=None):
        state["stopped_s"] = time.time()
        state["stopped_utc"] = results.utc_iso(state["stopped_s"])
        state["stop_signals"] = signals
        state["exit_code"] = exit_code
        results.write_json_atomic(state_file, state, mode=0o600)

    def capture_files(self, state):
        path = state["path"]
        if not state["ring"]:
            candidates = [path] if os.path.isfile(path) else []
        else:
            stem, ext = os.path.splitext(path)
            candidates = sorted(glob.glob(glob.escape(stem) + "_[0-9][0-9][0-9][0-9][0-9]_*" + glob.escape(ext)))
        files, truncated = [], False
        for name in candidates:
            try:
                packets, cut = count_packets(name)
                size = os.path.getsize(name)
            except (OSError, ValueError) as exc:
                self.warnings.append("cannot count the packets of %s: %s" % (name, exc))
                packets, cut, size = None, False, os.path.getsize(name) if os.path.exists(name) else 0
            truncated = truncated or cut
            files.append({"path": name, "size_bytes": size, "packets": packets})
        return files, truncated

    def finish(self, state, state_file):
        messages = read_text(state["log_file"])
        figures = parse_dumpcap_messages(messages)
        files, truncated = self.capture_files(state)
        figures.update(
            files=files,
            file=files[-1]["path"] if files else None,
            size_bytes=sum(f["size_bytes"] for f in files),
            packets_in_files=sum(f["packets"] or 0 for f in files),
            truncated=truncated,
            stop_signals=state.get("stop_signals", []),
            duration_s=round(state["stopped_s"] - state["started_s"], 6),
        )
        if not files:
            self.warnings.append("dumpcap wrote no capture file: %s" % (message_tail(messages) or "no message"))
        if figures["packets_dropped"]:
            self.warnings.append("the capture dropped %d packets" % figures["packets_dropped"])
        params = dict(state["params"], capture_id=state["capture_id"])
        merge_params(params, self.p["record_params"])
        try:
            record = results.measurement_record(RECORD_KIND, dict((k, figures[k]) for k in FIGURE_KEYS), params=params,
                                                started=state["started_s"], finished=state["stopped_s"])
            run_record = results.write_json_atomic(os.path.join(state["capture_dir"], "result.json"), record, mode=0o600)
        except (OSError, ValueError, TypeError) as exc:
            raise CaptureError("cannot write the result record: %s" % exc, capture_id=state["capture_id"])
        state["run_record"] = run_record
        results.write_json_atomic(state_file, state, mode=0o600)
        out = dict(figures, run_record=run_record, stopped_utc=state["stopped_utc"], dumpcap_messages=message_tail(messages))
        if self.p["result_file"]:
            out["result_file"] = self.write_result_file(record, out)
        return out

    def write_result_file(self, record, out):
        try:
            return results.write_record(self.p["result_file"], record, make_dirs=self.p["create_dirs"])
        except (OSError, ValueError) as exc:
            raise CaptureError("cannot write result_file %s: %s (create_dirs=%s); the record is in %s"
                               % (self.p["result_file"], exc, self.p["create_dirs"], out["run_record"]), **out)

    def stored_result(self, state):
        run_record = state.get("run_record")
        if not run_record:
            raise CaptureError("capture %r was stopped at %s but has no result record; its files are in %s"
                               % (state["capture_id"], state["stopped_utc"], state["capture_dir"]), **describe(state))
        try:
            record = results.read_record(run_record, kind=RECORD_KIND)
        except results.ResultFileError as exc:
            raise CaptureError("capture %r was stopped at %s; its result record is unusable: %s"
                               % (state["capture_id"], state["stopped_utc"], exc), **describe(state))
        out = dict(record["results"], run_record=run_record, stopped_utc=state["stopped_utc"],
                   dumpcap_messages=message_tail(read_text(state["log_file"])))
        if self.p["result_file"]:
            out["result_file"] = self.write_result_file(record, out)
        return out


def merge_params(params, extra):
    """Add record_params to the capture's own parameters, which they may not replace."""
    for key, value in (extra or {}).items():
        if key in params or key == "capture_id":
            raise CaptureError("record_params may not replace the capture's own parameter %r" % key)
        params[key] = value


def describe(state):
    return {
        "capture_id": state["capture_id"],
        "pid": state["pid"],
        "cmd": state["cmd"],
        "capture_dir": state["capture_dir"],
        "state_file": os.path.join(state["capture_dir"], "state.json"),
        "capture_path": state["path"],
        "interface": state["params"].get("interface"),
        "started_utc": state["started_utc"],
    }


def run_module(module, capture):
    p = module.params
    result = {"changed": False}
    if p["state"] == "started":
        if p["result_file"]:
            raise CaptureError("result_file is only used with state=stopped (the figures exist once the capture has ended)")
        capture_id, path, cmd = capture.validate()
        if module.check_mode:
            result.update(changed=True, capture_id=capture_id, cmd=cmd, capture_path=path, interface=p["interface"],
                          msg="check mode: would start %s" % " ".join(cmd))
            return result
        _proc, state, _state_file = capture.start(capture_id, path, cmd)
        result.update(describe(state), changed=True)
        return result

    state, state_file = capture.load_state(p["capture_id"])
    result.update(describe(state))
    if state.get("stopped_utc"):
        result.update(capture.stored_result(state))
        result["msg"] = "capture %r was already stopped at %s" % (p["capture_id"], state["stopped_utc"])
        result["changed"] = bool(p["result_file"]) and not module.check_mode
        return result
    merge_params(dict(state["params"], capture_id=None), p["record_params"])  # refuse clashes before stopping
    if module.check_mode:
        alive, why = check_our_process(state["pid"], state["cmd"], state["start_ticks"])
        result.update(changed=True, running=alive,
                      msg="check mode: would stop dumpcap %d" % state["pid"] if alive else "check mode: %s" % why)
        return result
    signals = capture.stop(state)
    capture.mark_stopped(state, state_file, signals)
    result.update(capture.finish(state, state_file))
    result["changed"] = True
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", required=True, choices=["started", "stopped"]),
            interface=dict(type="str"),
            capture_filter=dict(type="str", aliases=["filter"]),
            path=dict(type="path"),
            format=dict(type="str", default="pcap", choices=["pcap", "pcapng"]),
            snaplen=dict(type="int"),
            max_size_kb=dict(type="int", default=1048576),
            ring_files=dict(type="int", default=0),
            max_duration=dict(type="int", default=3600),
            capture_id=dict(type="str"),
            state_dir=dict(type="path"),
            result_file=dict(type="path", aliases=["dest"]),
            create_dirs=dict(type="bool", default=False),
            record_params=dict(type="dict"),
            stop_timeout=dict(type="float", default=10),
            executable=dict(type="str", default="dumpcap"),
        ),
        required_if=[("state", "stopped", ("capture_id",)), ("state", "started", ("interface",))],
        supports_check_mode=True,
    )
    capture = Capture(module)
    try:
        result = run_module(module, capture)
    except CaptureError as exc:
        for warning in capture.warnings:
            module.warn(warning)
        module.fail_json(msg=str(exc), **exc.extra)
    except (OSError, ValueError) as exc:
        for warning in capture.warnings:
            module.warn(warning)
        module.fail_json(msg="packet_capture failed: %s" % exc)
    for warning in capture.warnings:
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
