#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sipp_load
short_description: Place SIP calls with SIPp and report calls, failures and response times
version_added: 0.1.0
description:
  - Runs SIPp on the client host against a SIP server such as the testbed's Asterisk guest, with a
    built-in scenario (V(uac), V(uac_pcap), ...) or a scenario file such as the client role's
    C(uac_auth.xml), and reports what the calls' users felt - calls placed, successful and failed (by
    cause), retransmissions and response times - as in Nkubito (2012), section 5, where
    C(sipp -sn uac -d 20000 -s 2002 ASTERISK -m 1000) ran while the VoIP guest migrated.
  - O(state=run) runs SIPp in the foreground until it has made O(calls) calls or O(duration) seconds
    have passed. O(state=started) starts it in the background and returns its O(run_id) at once;
    O(state=stopped) stops it and returns the results. The pair brackets an action such as a live
    migration.
  - SIPp is stopped gracefully, by the PID in the run's state file after checking that
    C(/proc/PID/cmdline) and the process start time still match what was recorded; processes are
    never looked up by name. SIGUSR1 makes SIPp place no new calls and let those in flight end; after
    O(stop_timeout) seconds SIGTERM ends it at once (it still writes its statistics; the calls then
    in flight are RV(calls_in_flight)), and SIGKILL follows if even that fails. Only one SIGUSR1 is
    ever sent (SIPp 3.6.1 can hang on a second one).
  - SIPp writes its statistics (C(-trace_stat -stf FILE -fd N)), every call's response time
    (C(-trace_rtt -rtt_freq 1)), unexpected messages (C(-trace_err)) and its final screens
    (C(-trace_screen)) into the run's directory under O(state_dir). The module reads the statistics
    by column name, so the figures do not depend on SIPp's column order.
  - Failed calls are a measurement, not an error; the module fails when SIPp could not run at all
    (not installed, a bad scenario, a port in use, a target that does not resolve).
  - The password is passed to SIPp with C(-ap), the only way SIPp takes it, so local users of the
    client can see it in C(ps) while SIPp runs. The module masks it in what it returns and stores
    only a hash of the real command line.
author:
  - xenlab developers (@xenlab)
extends_documentation_fragment:
  - xenlab.migration.attributes
attributes:
  check_mode:
    support: full
    details:
      - With O(state=started) or O(state=run) nothing is started; the inputs are checked and the
        module reports the command it would run (password masked).
      - With O(state=stopped) nothing is stopped; the module reports whether SIPp is running.
  diff_mode:
    support: none
options:
  state:
    description:
      - V(run) runs SIPp and returns when it has finished.
      - V(started) starts SIPp in the background and returns its O(run_id).
      - V(stopped) stops the run O(run_id) and returns its results. Stopping a run that was stopped
        before returns its stored results and reports no change.
    type: str
    choices: [run, started, stopped]
    default: run
  scenario:
    description:
      - A scenario built into SIPp (V(uac), V(uas), V(regexp), V(branchc), V(branchs), V(uac_pcap),
        V(3pcc-C-A), V(3pcc-C-B), V(3pcc-A), V(3pcc-B)), or the path of a scenario XML file on the
        client (anything with a C(/) or ending in C(.xml)), such as
        C(/usr/local/share/xenlab/sipp/uac_auth.xml) installed by the role C(xenlab.migration.client).
    type: str
    default: uac
  target:
    description:
      - Host name or address of the SIP server. Resolved once when SIPp starts; SIPp then gets the
        address. Required with O(state=run) and O(state=started).
    type: str
  port:
    description:
      - SIP port of the target.
    type: int
    default: 5060
  transport:
    description:
      - SIP transport. Only V(udp) (SIPp C(-t u1), one socket for all calls) for now.
    type: str
    choices: [udp]
    default: udp
  call_length_ms:
    description:
      - Length of each call in milliseconds (SIPp C(-d)), the pause of scenarios whose C(pause) has no
        own length. The thesis used 5000 to 30000. Omitted, SIPp's default applies (0).
    type: int
    aliases: [d]
  rate:
    description:
      - New calls per O(rate_period_ms) (SIPp C(-r), default 10).
    type: float
  rate_period_ms:
    description:
      - The period of O(rate) in milliseconds (SIPp C(-rp), default 1000).
    type: int
  limit:
    description:
      - At most this many calls at once (SIPp C(-l)); SIPp's default is 3 x call length (s) x rate.
    type: int
  calls:
    description:
      - Total number of calls to place (SIPp C(-m)); SIPp exits after that many. The thesis placed
        1000. With O(state=run), O(calls) or O(duration) is required.
    type: int
  service:
    description:
      - The user part of the request URI, the extension to call (SIPp C(-s)); 2002 is the testbed's
        automatic answering extension.
    type: str
    aliases: [extension]
  caller:
    description:
      - The From user, passed as C(-key caller NAME) (the collection's C(uac_auth.xml) uses it;
        SIPp's built-in scenarios ignore it).
      - Defaults to O(auth_user), else C(sipp).
    type: str
  auth_user:
    description:
      - User name for digest authentication challenges (SIPp C(-au); SIPp's default is O(service)).
    type: str
  auth_password:
    description:
      - Password for digest authentication challenges (SIPp C(-ap)). Keep it in Ansible Vault.
    type: str
  local_ip:
    description:
      - Local address for Via, Contact and From (SIPp C(-i)); SIPp's default is the host's primary address.
    type: str
  local_port:
    description:
      - Local SIP port (SIPp C(-p)).
    type: int
  media_ip:
    description:
      - Local media (RTP) address (SIPp C(-mi)).
    type: str
  extra_args:
    description:
      - Further SIPp arguments, appended as given (for example V([-recv_timeout, "5000"])).
    type: list
    elements: str
    default: []
  duration:
    description:
      - With O(state=run), stop SIPp gracefully after this many seconds even if it has not made
        O(calls) calls yet (RV(limit_reached)). Without it the run may take up to O(max_duration).
    type: float
  max_duration:
    description:
      - SIPp quits by itself after this many seconds (its C(-timeout)), so a forgotten run cannot go
        on for ever. V(0) means never. With O(state=run) it bounds the run when O(duration) is not set.
    type: int
    default: 3600
  stop_timeout:
    description:
      - Seconds the calls in flight get to end after SIPp was told to stop (SIGUSR1), before SIGTERM.
      - Default O(call_length_ms) plus 10 seconds.
    type: float
  stats_interval:
    description:
      - Seconds between two rows of SIPp's statistics file (SIPp C(-fd)).
    type: int
    default: 1
  pcap_dir:
    description:
      - Directory of SIPp's sample audio captures (C(g711a.pcap), ...). Scenarios that play
        C(pcap/g711a.pcap), such as V(uac_pcap) and C(uac_auth.xml), find it through a link named
        C(pcap) that the module makes in SIPp's working directory (the run's directory).
      - Default the first that exists of C(/usr/share/sip-tester) (Debian's sip-tester),
        C(/usr/share/sipp/pcap), C(/usr/local/share/sipp/pcap); none is needed for scenarios without audio.
    type: path
  executable:
    description:
      - The SIPp program, a name looked up in PATH or a path.
    type: str
    default: sipp
  run_id:
    description:
      - Identifies the run. Required with O(state=stopped).
      - With O(state=started) or O(state=run) a new id is made when none is given. An id whose run is
        still going, or was started and never stopped, is refused; the directory of a stopped one is
        replaced.
      - Letters, digits, V(.), V(_) and V(-), starting with a letter or digit; at most 64 characters.
    type: str
  state_dir:
    description:
      - Directory holding one subdirectory per run (state file, SIPp's files, the result record).
      - Defaults to C(/var/tmp/xenlab-sipp-load) for root and C(~/.cache/xenlab-sipp-load) otherwise.
    type: path
  result_file:
    description:
      - Also write the measurement record (JSON, see RV(run_record)) to this file, atomically. Use
        C(/etc/ansible/facts.d/NAME.fact) to read it back as C(ansible_local.NAME).
      - Only with O(state=stopped) and O(state=run).
    type: path
    aliases: [dest]
  create_dirs:
    description:
      - Create the parent directories of O(result_file) when they do not exist.
    type: bool
    default: false
  record_params:
    description:
      - Extra parameters (experiment, guest, cap, ...) stored under C(params) in the record, next to
        the run's own. They may not replace the run's own keys.
    type: dict
notes:
  - Times in results are ISO-8601 UTC (C(*_utc)); durations carry C(_ms) or C(_s) in their names.
  - SIPp's response time 1 of the built-in V(uac) runs from the INVITE to the 200 OK; in
    C(uac_auth.xml) it also spans the authentication round trip. RV(response_time_median_ms) and
    the other per-call figures come from C(-trace_rtt), which SIPp writes with millisecond resolution.
  - SIPp's exit code (RV(exit_code)) is only known with O(state=run); RV(outcome) says the same from
    the statistics for every state.
seealso:
  - name: sipp(1)
    description: SIPp, the SIP traffic generator.
    link: https://sipp.readthedocs.io/en/latest/
  - module: xenlab.migration.packet_capture
    description: Capture the calls' RTP for M(xenlab.migration.voip_quality).
  - module: xenlab.migration.downtime_probe
    description: Measure the downtime of the same migration.
"""

EXAMPLES = r"""
- name: 1000 calls of 20 s to extension 2002, as in the thesis
  xenlab.migration.sipp_load:
    target: 10.0.0.50
    scenario: /usr/local/share/xenlab/sipp/uac_auth.xml
    service: "2002"
    auth_user: sipp
    auth_password: "{{ vault_sipp_password }}"
    call_length_ms: 20000
    rate: 10
    calls: 1000
    result_file: /etc/ansible/facts.d/xenlab_sipp.fact
    create_dirs: true
  register: calls

- name: Start calls in the background
  xenlab.migration.sipp_load:
    state: started
    target: 10.0.0.50
    scenario: /usr/local/share/xenlab/sipp/uac_auth.xml
    service: "2002"
    auth_user: sipp
    auth_password: "{{ vault_sipp_password }}"
    call_length_ms: 10000
    rate: 2
    max_duration: 900
  register: load

- name: Migrate the VoIP guest
  ansible.builtin.command: xl migrate voip dom0-b
  delegate_to: dom0-a
  changed_when: true

- name: Stop the calls and collect the figures
  xenlab.migration.sipp_load:
    state: stopped
    run_id: "{{ load.run_id }}"
    record_params:
      experiment: voip_during_migration
  register: calls

- name: Report failed calls
  ansible.builtin.debug:
    msg: "{{ calls.calls_failed }} of {{ calls.calls_total }} calls failed ({{ calls.failed_by_cause }})"
"""

RETURN = r"""
run_id:
  description: Id of the run, for O(state=stopped).
  returned: always
  type: str
  sample: 20240501T120000Z-3fa2c1
cmd:
  description: SIPp's command line, the password masked.
  returned: success
  type: list
  elements: str
  sample: [/usr/bin/sipp, -sn, uac, "10.0.0.50:5060", -t, u1, -d, "20000", -m, "1000"]
pid:
  description: PID of SIPp.
  returned: success, not in check mode
  type: int
  sample: 4242
run_dir:
  description: The run's directory with SIPp's files.
  returned: success, not in check mode
  type: str
  sample: /var/tmp/xenlab-sipp-load/20240501T120000Z-3fa2c1
state_file:
  description: JSON state file of the run (PID, start time, masked command line).
  returned: success, not in check mode
  type: str
  sample: /var/tmp/xenlab-sipp-load/20240501T120000Z-3fa2c1/state.json
stat_file:
  description: SIPp's statistics CSV (C(-trace_stat)).
  returned: success, not in check mode
  type: str
  sample: /var/tmp/xenlab-sipp-load/20240501T120000Z-3fa2c1/stat.csv
rtt_file:
  description: SIPp's response time CSV (C(-trace_rtt)); null when SIPp wrote none (no call got as far).
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: str
  sample: /var/tmp/xenlab-sipp-load/20240501T120000Z-3fa2c1/uac_4242_rtt.csv
error_file:
  description: SIPp's log of unexpected messages and aborted calls (C(-trace_err)).
  returned: success, not in check mode
  type: str
  sample: /var/tmp/xenlab-sipp-load/20240501T120000Z-3fa2c1/errors.log
screen_file:
  description: SIPp's final screens (C(-trace_screen)).
  returned: success, not in check mode
  type: str
  sample: /var/tmp/xenlab-sipp-load/20240501T120000Z-3fa2c1/screen.log
stderr:
  description: The last lines SIPp wrote to its standard error.
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: str
  sample: "Resolving remote host '10.0.0.50'... Done."
started_utc:
  description: When SIPp started.
  returned: success, not in check mode
  type: str
  sample: "2024-05-01T12:00:00.123456Z"
stopped_utc:
  description: When SIPp had ended.
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: str
  sample: "2024-05-01T12:03:20.654321Z"
duration_s:
  description: Seconds from the start of SIPp to its end.
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: float
  sample: 200.53
running:
  description: Whether SIPp is running and still the recorded process.
  returned: check mode with O(state=stopped)
  type: bool
  sample: true
exit_code:
  description: SIPp's exit code with O(state=run) (negative - killed by that signal); null otherwise.
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: int
  sample: 1
exit_meaning:
  description: What RV(exit_code) means according to SIPp's documentation.
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: str
  sample: at least one call failed (or SIPp stopped on an error before placing calls)
outcome:
  description:
    - V(ok) every finished call succeeded; V(failed_calls) at least one failed; V(no_calls) none
      was placed; V(error) SIPp reported a fatal error.
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: str
  sample: failed_calls
stop_signals:
  description: The signals the module sent to end SIPp, in order (empty when it ended by itself).
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: list
  elements: str
  sample: [SIGUSR1]
limit_reached:
  description: With O(state=run), whether SIPp was stopped because O(duration) (or O(max_duration)) was reached.
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: bool
  sample: false
calls_total:
  description: Calls SIPp created (C(TotalCallCreated)).
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: int
  sample: 1000
calls_outgoing:
  description: Calls SIPp placed (C(OutgoingCall(C))).
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: int
  sample: 1000
calls_incoming:
  description: Calls SIPp received (C(IncomingCall(C)), server scenarios).
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: int
  sample: 0
calls_successful:
  description: Calls that ran through the whole scenario (C(SuccessfulCall(C))).
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: int
  sample: 805
calls_failed:
  description: Calls that failed (C(FailedCall(C))); the thesis's "failed calls" of Table 2.
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: int
  sample: 195
calls_in_flight:
  description: Calls still open when SIPp ended (C(CurrentCall)), neither successful nor failed; non-zero after SIGTERM.
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: int
  sample: 0
failed_by_cause:
  description: Failed calls per cause, from SIPp's C(Failed<Cause>(C)) columns (all of them, zeros included).
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: dict
  sample: {TimeoutOnRecv: 150, MaxUDPRetrans: 45, UnexpectedMessage: 0}
retransmissions:
  description: SIP retransmissions (C(Retransmissions(C))).
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: int
  sample: 312
dead_call_msgs:
  description: Messages for calls SIPp had already ended (C(DeadCallMsgs(C))).
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: int
  sample: 0
out_of_call_msgs:
  description: Messages that belonged to no call (C(OutOfCallMsgs(C))).
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: int
  sample: 0
sipp_warnings:
  description: SIPp's warning count (C(Warnings(C))).
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: int
  sample: 0
fatal_errors:
  description: SIPp's fatal error count (C(FatalErrors(C))).
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: int
  sample: 0
call_rate_cps:
  description: Calls per second over the run (C(CallRate(C))).
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: float
  sample: 9.98
target_rate_cps:
  description: The call rate SIPp aimed at (C(TargetRate)).
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: float
  sample: 10
elapsed_s:
  description: SIPp's run time from its statistics (C(CurrentTime) - C(StartTime) of the last row).
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: float
  sample: 120.42
response_time_min_ms:
  description: Shortest response time 1 of a call (C(-trace_rtt)); null without samples.
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: float
  sample: 2.0
response_time_mean_ms:
  description: Mean response time 1 over the calls (C(-trace_rtt)).
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: float
  sample: 10.93
response_time_median_ms:
  description: Median response time 1 (C(-trace_rtt)).
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: float
  sample: 8.0
response_time_p95_ms:
  description: 95th percentile of response time 1 (C(-trace_rtt), linear interpolation between ranks).
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: float
  sample: 31.0
response_time_max_ms:
  description: Longest response time 1 (C(-trace_rtt)).
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: float
  sample: 1203.0
response_time_samples:
  description: Number of response times in C(-trace_rtt) for timer 1.
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: int
  sample: 805
response_time_stat_mean_ms:
  description: SIPp's own mean of response time 1 (C(ResponseTime1(C))).
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: float
  sample: 10.0
response_time_stat_stdev_ms:
  description: SIPp's standard deviation of response time 1 (C(ResponseTime1StDev(C))).
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: float
  sample: 4.0
call_length_mean_ms:
  description: SIPp's mean call length (C(CallLength(C))).
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: float
  sample: 20012.0
call_length_stdev_ms:
  description: SIPp's standard deviation of the call length (C(CallLengthStDev(C))).
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: float
  sample: 3.0
run_record:
  description:
    - The measurement record kept in the run's directory, a JSON object with C(schema_version),
      C(kind=sipp_load), C(host), C(recorded_utc), C(started_utc), C(finished_utc), C(params) and
      C(results) (the figures above).
  returned: when O(state) is V(stopped) or V(run), not in check mode
  type: str
  sample: /var/tmp/xenlab-sipp-load/20240501T120000Z-3fa2c1/result.json
result_file:
  description: Where the record was also written (O(result_file)).
  returned: when O(result_file) is set, not in check mode
  type: str
  sample: /etc/ansible/facts.d/xenlab_sipp.fact
"""

import glob
import hashlib
import os
import pwd
import re
import secrets
import signal
import socket
import time
import xml.etree.ElementTree as ET

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.xenlab.migration.plugins.module_utils import parsers, results
from ansible_collections.xenlab.migration.plugins.module_utils import sipp as sipplib
from ansible_collections.xenlab.migration.plugins.module_utils.process import check_alive, read_cmdline, read_proc_stat, spawn_detached

RECORD_KIND = "sipp_load"
STATE_VERSION = 1
STARTUP_CHECK_S = 0.5
TERM_WAIT_S = 5.0
KILL_WAIT_S = 2.0
STOP_GRACE_EXTRA_S = 10.0
STDERR_TAIL_LINES = 10
PCAP_DIRS = ("/usr/share/sip-tester", "/usr/share/sipp/pcap", "/usr/local/share/sipp/pcap")
RUN_FILES = ("state.json", "stat.csv", "errors.log", "screen.log", "stderr.log", "result.json", "pcap")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# Figures that go into the record's results (paths and process details stay out).
FIGURE_KEYS = ("calls_total", "calls_outgoing", "calls_incoming", "calls_successful", "calls_failed", "calls_in_flight",
               "failed_by_cause", "retransmissions", "dead_call_msgs", "out_of_call_msgs", "sipp_warnings",
               "fatal_errors", "call_rate_cps", "target_rate_cps", "elapsed_s", "response_time_min_ms",
               "response_time_mean_ms", "response_time_median_ms", "response_time_p95_ms", "response_time_max_ms",
               "response_time_samples", "response_time_stat_mean_ms", "response_time_stat_stdev_ms",
               "call_length_mean_ms", "call_length_stdev_ms", "outcome", "exit_code", "exit_meaning",
               "stop_signals", "limit_reached", "duration_s")


class SippLoadError(Exception):
    """A failure to report with fail_json; ``extra`` goes into the result."""

    def __init__(self, msg, **extra):
        super(SippLoadError, self).__init__(msg)
        self.extra = extra


def default_state_dir():
    uid = os.geteuid()
    if uid == 0:
        return "/var/tmp/xenlab-sipp-load"
    return os.path.join(pwd.getpwuid(uid).pw_dir, ".cache", "xenlab-sipp-load")


def cmdline_digest(argv):
    return hashlib.sha256(b"\0".join(arg.encode("utf-8", "surrogateescape") for arg in argv)).hexdigest()


def check_our_process(pid, digest, start_ticks):
    """(True, '') if PID is alive and is the SIPp we started, else (False, why not)."""
    alive, why = check_alive(pid, start_ticks)
    if not alive:
        return False, why
    cmdline = read_cmdline(pid)
    if cmdline is None or cmdline_digest(cmdline) != digest:
        return False, "PID %d now runs %r, not the recorded SIPp" % (pid, (cmdline or [""])[0])
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


def read_text(path, limit=None):
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as handle:
            return handle.read() if limit is None else handle.read(limit)
    except (IOError, OSError, TypeError):
        return ""


def stderr_tail(path):
    lines = [line for line in read_text(path).splitlines() if line.strip()]
    return "\n".join(lines[-STDERR_TAIL_LINES:])


class Runner(object):
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.state_dir = self.p["state_dir"] or default_state_dir()
        self.warnings = []
        self.replaces = False

    # --- inputs ----------------------------------------------------------------------------
    def run_dir(self, run_id):
        return os.path.join(self.state_dir, run_id)

    @staticmethod
    def check_id(run_id):
        if not _ID_RE.match(run_id):
            raise SippLoadError("run_id %r is invalid: use letters, digits, '.', '_' and '-', starting with a letter "
                                "or digit, at most 64 characters" % (run_id,))
        return run_id

    def validate_numbers(self):
        p = self.p
        positive = (("rate", p["rate"]), ("rate_period_ms", p["rate_period_ms"]), ("limit", p["limit"]),
                    ("calls", p["calls"]), ("duration", p["duration"]), ("stop_timeout", p["stop_timeout"]),
                    ("stats_interval", p["stats_interval"]))
        for name, value in positive:
            if value is not None and not value > 0:
                raise SippLoadError("%s must be positive, got %r" % (name, value))
        if p["call_length_ms"] is not None and p["call_length_ms"] < 0:
            raise SippLoadError("call_length_ms must not be negative, got %d" % p["call_length_ms"])
        for name in ("port", "local_port"):
            if p[name] is not None and not 0 < p[name] < 65536:
                raise SippLoadError("%s must be between 1 and 65535, got %d" % (name, p[name]))
        if p["max_duration"] < 0:
            raise SippLoadError("max_duration must be 0 (no limit) or a positive number of seconds, got %d" % p["max_duration"])
        if p["state"] == "run" and p["calls"] is None and p["duration"] is None:
            raise SippLoadError("state=run needs calls (SIPp -m) or duration (seconds), or it would run until max_duration")
        if p["duration"] is not None and p["max_duration"] and p["duration"] > p["max_duration"]:
            raise SippLoadError("duration %g s exceeds max_duration %d s" % (p["duration"], p["max_duration"]))
        for arg in p["extra_args"]:
            if arg in ("-bg", "-stf", "-trace_stat", "-trace_rtt", "-error_file", "-screen_file", "-sf", "-sn"):
                raise SippLoadError("extra_args may not contain %s: the module sets it (see the options)" % arg)

    def find_sipp(self):
        exe = self.p["executable"]
        if "/" in exe:
            if os.path.isfile(exe) and os.access(exe, os.X_OK):
                return exe
            raise SippLoadError("SIPp executable %s does not exist or is not executable" % exe)
        path = self.module.get_bin_path(exe)
        if not path:
            raise SippLoadError("SIPp is not installed (%s not found in PATH): install sip-tester (Debian) or sipp "
                                "(EL; the role xenlab.migration.client does both)" % exe)
        return path

    def check_scenario(self):
        scenario = self.p["scenario"]
        if not scenario:
            raise SippLoadError("scenario must not be empty")
        if not sipplib.looks_like_path(scenario):
            if not sipplib.is_builtin(scenario):
                raise SippLoadError("scenario %r is not one of SIPp's built-in scenarios (%s); a scenario file is given "
                                    "by its path" % (scenario, ", ".join(sipplib.BUILTIN_SCENARIOS)))
            return scenario, scenario == "uac_pcap"
        path = os.path.abspath(scenario)
        if not os.path.isfile(path):
            raise SippLoadError("scenario file %s does not exist" % path)
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except (IOError, OSError) as exc:
            raise SippLoadError("cannot read scenario file %s: %s" % (path, exc))
        try:
            root = ET.fromstring(data)
        except ET.ParseError as exc:
            raise SippLoadError("scenario file %s is not valid XML: %s" % (path, exc))
        if root.tag != "scenario":
            raise SippLoadError("scenario file %s is not a SIPp scenario (its root element is <%s>, not <scenario>)"
                                % (path, root.tag))
        return path, b'play_pcap_audio="pcap/' in data or b"play_pcap_audio='pcap/" in data

    def find_pcap_dir(self, needed):
        given = self.p["pcap_dir"]
        if given:
            if not os.path.isdir(given):
                raise SippLoadError("pcap_dir %s is not a directory" % given)
            return given
        for candidate in PCAP_DIRS:
            if os.path.isfile(os.path.join(candidate, "g711a.pcap")):
                return candidate
        if needed:
            raise SippLoadError("the scenario plays pcap/g711a.pcap, but SIPp's sample captures were not found in %s: "
                                "install sip-tester or set pcap_dir" % ", ".join(PCAP_DIRS))
        return None

    def resolve_target(self):
        target = self.p["target"]
        if not target:
            raise SippLoadError("target is required with state=%s" % self.p["state"])
        try:
            infos = socket.getaddrinfo(target, self.p["port"], 0, socket.SOCK_DGRAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise SippLoadError("bad target %r: it does not resolve (%s)" % (target, exc))
        except OverflowError as exc:
            raise SippLoadError("bad target %r: %s" % (target, exc))
        if not infos:
            raise SippLoadError("bad target %r: it resolves to no address" % (target,))
        return infos[0][4][0]

    def check_id_free(self, run_id):
        """Refuse an id whose run is going or was never stopped; True if a stopped one is replaced."""
        directory = self.run_dir(run_id)
        if not os.path.exists(directory):
            return False
        state_file = os.path.join(directory, "state.json")
        try:
            state = results.read_json(state_file)
        except results.ResultFileError:
            state = None
        if not isinstance(state, dict) or not isinstance(state.get("pid"), int):
            raise SippLoadError("run_id %r: %s exists but holds no usable state file; remove it or choose another id"
                                % (run_id, directory), run_id=run_id)
        if state.get("stopped_utc"):
            return True
        alive, why = check_our_process(state["pid"], state.get("cmdline_sha256"), state.get("start_ticks"))
        if alive:
            raise SippLoadError("run %r is still going (pid %d, started %s): stop it with state=stopped first"
                                % (run_id, state["pid"], state.get("started_utc")), run_id=run_id, pid=state["pid"])
        raise SippLoadError("run %r was started at %s and never stopped (%s): stop it with state=stopped to get its "
                            "results, then start it again" % (run_id, state.get("started_utc"), why), run_id=run_id)

    def clear_stopped(self, run_id):
        directory = self.run_dir(run_id)
        try:
            for name in os.listdir(directory):
                if name in RUN_FILES or name.endswith(("_rtt.csv", "_errors.log", "_screen.log")):
                    os.unlink(os.path.join(directory, name))
            os.rmdir(directory)
        except OSError as exc:
            raise SippLoadError("cannot reuse run_id %r: %s (remove %s or choose another id)" % (run_id, exc, directory),
                                run_id=run_id)

    def prepare(self):
        """Check every input; returns (run_id, argv, details) without touching anything."""
        p = self.p
        self.validate_numbers()
        sipp = self.find_sipp()
        scenario, plays_pcap = self.check_scenario()
        pcap_dir = self.find_pcap_dir(plays_pcap)
        address = self.resolve_target()
        run_id = self.check_id(p["run_id"]) if p["run_id"] else time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)
        self.replaces = self.check_id_free(run_id)
        directory = self.run_dir(run_id)
        if p["max_duration"]:
            global_timeout = p["max_duration"]
        else:
            global_timeout = None
        if p["state"] == "run" and p["duration"] is not None:
            # A backstop in case the module itself dies: the graceful stop comes first.
            global_timeout = p["duration"] + self.grace() + TERM_WAIT_S + 5
        caller = p["caller"] or p["auth_user"] or "sipp"
        try:
            remote = sipplib.format_remote(address, p["port"])
            argv = sipplib.build_argv(
                sipp, scenario, remote=remote, caller=caller, transport=p["transport"],
                stat_file=os.path.join(directory, "stat.csv"), stats_interval_s=p["stats_interval"],
                error_file=os.path.join(directory, "errors.log"), screen_file=os.path.join(directory, "screen.log"),
                extra_args=p["extra_args"], call_length_ms=p["call_length_ms"], rate=p["rate"],
                rate_period_ms=p["rate_period_ms"], limit=p["limit"], calls=p["calls"], service=p["service"],
                auth_user=p["auth_user"], auth_password=p["auth_password"], local_ip=p["local_ip"],
                local_port=p["local_port"], media_ip=p["media_ip"], global_timeout_s=global_timeout)
        except sipplib.SippArgError as exc:
            raise SippLoadError(str(exc))
        details = {"scenario": scenario, "target": p["target"], "target_address": address, "port": p["port"],
                   "caller": caller, "pcap_dir": pcap_dir}
        return run_id, argv, details

    def grace(self):
        if self.p["stop_timeout"] is not None:
            return self.p["stop_timeout"]
        return (self.p["call_length_ms"] or 0) / 1000.0 + STOP_GRACE_EXTRA_S

    # --- start -----------------------------------------------------------------------------
    def start(self, run_id, argv, details):
        directory = self.run_dir(run_id)
        if self.replaces:
            self.clear_stopped(run_id)
        try:
            os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
            os.mkdir(directory, 0o700)
            if details["pcap_dir"]:
                os.symlink(details["pcap_dir"], os.path.join(directory, "pcap"))
        except OSError as exc:
            raise SippLoadError("cannot create the run directory %s: %s" % (directory, exc))
        err_file = os.path.join(directory, "stderr.log")
        env = dict(os.environ, LC_ALL="C")
        # SIPp's screen goes nowhere: it redraws every second and would fill the disk; the final
        # screens are in screen.log (-trace_screen).
        try:
            proc = spawn_detached(argv, os.devnull, err_file, cwd=directory, env=env)
        except OSError as exc:
            raise SippLoadError("cannot start SIPp %s: %s" % (argv[0], exc))
        started = time.time()
        stat = read_proc_stat(proc.pid)
        state = {
            "schema_version": STATE_VERSION,
            "run_id": run_id,
            "pid": proc.pid,
            "start_ticks": stat[1] if stat else None,
            "cmd": sipplib.mask_argv(argv),
            "cmdline_sha256": cmdline_digest(argv),
            "run_dir": directory,
            "stat_file": os.path.join(directory, "stat.csv"),
            "error_file": os.path.join(directory, "errors.log"),
            "screen_file": os.path.join(directory, "screen.log"),
            "stderr_file": err_file,
            "grace_s": self.grace(),
            "params": self.record_params(details),
            "started_utc": results.utc_iso(started),
            "started_s": started,
            "stopped_utc": None,
        }
        state_file = os.path.join(directory, "state.json")
        results.write_json_atomic(state_file, state, mode=0o600)
        return proc, state, state_file

    def record_params(self, details):
        p = self.p
        params = dict(details)
        params.pop("pcap_dir")
        for key in ("transport", "call_length_ms", "rate", "rate_period_ms", "limit", "calls", "service", "auth_user",
                    "local_ip", "local_port", "media_ip", "extra_args", "duration", "max_duration"):
            params[key] = p[key]
        merge_params(params, p["record_params"])
        return params

    def check_startup(self, proc, state, state_file):
        """Fail while we can still say why if SIPp stopped at once without placing a call."""
        deadline = time.monotonic() + STARTUP_CHECK_S
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        if proc.poll() is None:
            return
        figures = self.try_stat(state)
        if figures and figures.get("calls_total"):
            return  # a short run that is already over; analysed when stopped
        self.mark_stopped(state, state_file, time.time(), proc.returncode, [])
        message = stderr_tail(state["stderr_file"]) or "no message"
        raise SippLoadError("SIPp exited at once with code %d (%s): %s" % (proc.returncode, sipplib.exit_meaning(proc.returncode), message),
                            rc=proc.returncode, cmd=state["cmd"], run_id=state["run_id"], state_file=state_file)

    # --- stop ------------------------------------------------------------------------------
    def load_state(self, run_id):
        self.check_id(run_id)
        state_file = os.path.join(self.run_dir(run_id), "state.json")
        if not os.path.isfile(state_file):
            raise SippLoadError("unknown run_id %r: its state file %s is missing" % (run_id, state_file), run_id=run_id)
        try:
            state = results.read_json(state_file)
        except results.ResultFileError as exc:
            raise SippLoadError("run %r: unreadable state file: %s" % (run_id, exc), run_id=run_id)
        needed = ("pid", "start_ticks", "cmd", "cmdline_sha256", "stat_file", "started_s", "started_utc", "run_dir",
                  "stderr_file", "params")
        missing = [key for key in needed if not isinstance(state, dict) or key not in state]
        if missing:
            raise SippLoadError("run %r: state file %s lacks %s" % (run_id, state_file, ", ".join(missing)), run_id=run_id)
        if not isinstance(state["pid"], int):
            raise SippLoadError("run %r: state file %s has no valid pid" % (run_id, state_file), run_id=run_id)
        return state, state_file

    def stop(self, state, proc=None):
        """End SIPp: SIGUSR1 (once), after the grace period SIGTERM, then SIGKILL. Returns the signals sent."""
        pid, ticks = state["pid"], state["start_ticks"]
        sent = []

        def alive_now():
            if proc is not None:
                return proc.poll() is None
            return check_our_process(pid, state["cmdline_sha256"], ticks)[0]

        def send(signum, name, wait):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                return True
            sent.append(name)
            return wait_gone(pid, ticks, wait, proc)

        if not alive_now():
            return sent
        grace = state.get("grace_s", STOP_GRACE_EXTRA_S)
        if send(signal.SIGUSR1, "SIGUSR1", grace) or not alive_now():
            return sent
        self.warnings.append("SIPp still had calls in flight %g s after SIGUSR1; it was ended with SIGTERM "
                             "(those calls count in calls_in_flight)" % grace)
        if send(signal.SIGTERM, "SIGTERM", TERM_WAIT_S) or not alive_now():
            return sent
        self.warnings.append("SIPp did not exit on SIGTERM and was killed; its statistics may lack the last rows")
        send(signal.SIGKILL, "SIGKILL", KILL_WAIT_S)
        return sent

    @staticmethod
    def mark_stopped(state, state_file, stopped, exit_code, signals):
        state["stopped_utc"] = results.utc_iso(stopped)
        state["stopped_s"] = stopped
        state["exit_code"] = exit_code
        state["stop_signals"] = signals
        results.write_json_atomic(state_file, state, mode=0o600)

    # --- results ---------------------------------------------------------------------------
    @staticmethod
    def try_stat(state):
        try:
            return sipplib.stat_figures(parsers.parse_sipp_stat(read_text(state["stat_file"])))
        except ValueError:
            return None

    def analyse(self, state):
        text = read_text(state["stat_file"])
        if not text.strip():
            raise SippLoadError("SIPp wrote no statistics (%s is missing or empty); it said: %s"
                                % (state["stat_file"], stderr_tail(state["stderr_file"]) or "nothing"),
                                run_id=state["run_id"], stderr=stderr_tail(state["stderr_file"]))
        try:
            figures = sipplib.stat_figures(parsers.parse_sipp_stat(text))
        except ValueError as exc:
            raise SippLoadError("cannot read SIPp's statistics %s: %s" % (state["stat_file"], exc), run_id=state["run_id"],
                                stderr=stderr_tail(state["stderr_file"]))
        figures["sipp_warnings"] = figures.pop("warnings")
        rtt_files = sorted(glob.glob(os.path.join(state["run_dir"], "*_%d_rtt.csv" % state["pid"])))
        rtt_file = rtt_files[0] if rtt_files else None
        rtt = sipplib.rtt_figures({"columns": ["response_time_ms"], "rows": []})
        if rtt_file and read_text(rtt_file).strip():
            try:
                rtt = sipplib.rtt_figures(parsers.parse_sipp_rtt(read_text(rtt_file)))
            except ValueError as exc:
                self.warnings.append("cannot read SIPp's response times %s: %s" % (rtt_file, exc))
        figures.update(rtt)
        return figures, rtt_file

    def finish(self, state, state_file):
        figures, rtt_file = self.analyse(state)
        rc = state.get("exit_code")
        figures["outcome"] = sipplib.outcome(figures, rc)
        figures["exit_code"] = rc
        figures["exit_meaning"] = sipplib.exit_meaning(rc)
        figures["stop_signals"] = state.get("stop_signals", [])
        figures["limit_reached"] = bool(state.get("limit_reached"))
        figures["duration_s"] = round(state["stopped_s"] - state["started_s"], 6)
        params = dict(state["params"], run_id=state["run_id"], cmd=state["cmd"])
        if self.p["state"] == "stopped":
            merge_params(params, self.p["record_params"])
        record_results = dict((key, figures[key]) for key in FIGURE_KEYS)
        try:
            record = results.measurement_record(RECORD_KIND, record_results, params=params,
                                                started=state["started_s"], finished=state["stopped_s"])
            run_record = results.write_json_atomic(os.path.join(state["run_dir"], "result.json"), record, mode=0o600)
        except (OSError, ValueError, TypeError) as exc:
            raise SippLoadError("cannot write the result record: %s" % exc, run_id=state["run_id"])
        state["run_record"] = run_record
        state["rtt_file"] = rtt_file
        results.write_json_atomic(state_file, state, mode=0o600)
        out = dict(figures)
        out.update(run_record=run_record, rtt_file=rtt_file, stopped_utc=state["stopped_utc"],
                   stderr=stderr_tail(state["stderr_file"]))
        if figures["outcome"] == "error":
            raise SippLoadError("SIPp ended with a fatal error (exit code %s, %s): %s"
                                % (rc, figures["exit_meaning"], out["stderr"] or "no message"), **out)
        if self.p["result_file"]:
            out["result_file"] = self.write_result_file(record, out)
        return out

    def write_result_file(self, record, out):
        try:
            return results.write_record(self.p["result_file"], record, make_dirs=self.p["create_dirs"])
        except (OSError, ValueError) as exc:
            raise SippLoadError("cannot write result_file %s: %s (create_dirs=%s); the record is in %s"
                                % (self.p["result_file"], exc, self.p["create_dirs"], out["run_record"]), **out)

    def stored_result(self, state):
        run_record = state.get("run_record")
        if not run_record:
            raise SippLoadError("run %r was stopped at %s but has no result record (its analysis failed); its files are in %s"
                                % (state["run_id"], state["stopped_utc"], state["run_dir"]), **describe(state))
        try:
            record = results.read_record(run_record, kind=RECORD_KIND)
        except results.ResultFileError as exc:
            raise SippLoadError("run %r was stopped at %s; its result record is unusable: %s"
                                % (state["run_id"], state["stopped_utc"], exc), **describe(state))
        out = dict(record["results"])
        out.update(run_record=run_record, rtt_file=state.get("rtt_file"), stopped_utc=state["stopped_utc"],
                   stderr=stderr_tail(state["stderr_file"]))
        if self.p["result_file"]:
            out["result_file"] = self.write_result_file(record, out)
        return out


def merge_params(params, extra):
    """Add record_params to the run's own parameters, which they may not replace."""
    for key, value in (extra or {}).items():
        if key in params or key in ("run_id", "cmd"):
            raise SippLoadError("record_params may not replace the run's own parameter %r" % key)
        params[key] = value


def describe(state):
    return {
        "run_id": state["run_id"],
        "pid": state["pid"],
        "cmd": state["cmd"],
        "run_dir": state["run_dir"],
        "state_file": os.path.join(state["run_dir"], "state.json"),
        "stat_file": state["stat_file"],
        "error_file": state.get("error_file"),
        "screen_file": state.get("screen_file"),
        "started_utc": state["started_utc"],
    }


def run_module(module, runner):
    p = module.params
    result = {"changed": False}
    if p["result_file"] and p["state"] == "started":
        raise SippLoadError("result_file is only used with state=stopped or state=run (the results exist once SIPp has ended)")

    if p["state"] in ("started", "run"):
        run_id, argv, details = runner.prepare()
        if module.check_mode:
            verb = "start" if p["state"] == "started" else "run"
            result.update(changed=True, run_id=run_id, cmd=sipplib.mask_argv(argv),
                          msg="check mode: would %s %s" % (verb, " ".join(sipplib.mask_argv(argv))))
            return result
        proc, state, state_file = runner.start(run_id, argv, details)
        result.update(describe(state), changed=True)
        if p["state"] == "started":
            runner.check_startup(proc, state, state_file)
            return result
        limit = p["duration"] if p["duration"] is not None else p["max_duration"] or None
        signals = []
        try:
            deadline = None if limit is None else time.monotonic() + limit
            while proc.poll() is None:
                if deadline is not None and time.monotonic() >= deadline:
                    state["limit_reached"] = True
                    break
                time.sleep(0.1)
        finally:
            signals = runner.stop(state, proc=proc)
            proc.wait()
            runner.mark_stopped(state, state_file, time.time(), proc.returncode, signals)
        if state.get("limit_reached") and p["calls"] is not None:
            runner.warnings.append("SIPp had not made its %d calls after %g s and was stopped" % (p["calls"], limit))
        result.update(runner.finish(state, state_file))
        return result

    # state == stopped
    state, state_file = runner.load_state(p["run_id"])
    result.update(describe(state))
    merge_params(dict(state["params"], run_id=None, cmd=None), p["record_params"])  # refuse clashes before stopping
    if state.get("stopped_utc"):
        result.update(runner.stored_result(state))
        result["msg"] = "run %r was already stopped at %s" % (p["run_id"], state["stopped_utc"])
        result["changed"] = bool(p["result_file"]) and not module.check_mode
        return result
    if module.check_mode:
        alive, why = check_our_process(state["pid"], state["cmdline_sha256"], state["start_ticks"])
        result.update(changed=True, running=alive,
                      msg="check mode: would stop SIPp %d" % state["pid"] if alive else "check mode: %s; would analyse its files" % why)
        return result
    signals = runner.stop(state)
    runner.mark_stopped(state, state_file, time.time(), None, signals)
    result.update(runner.finish(state, state_file))
    result["changed"] = True
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", default="run", choices=["run", "started", "stopped"]),
            scenario=dict(type="str", default="uac"),
            target=dict(type="str"),
            port=dict(type="int", default=5060),
            transport=dict(type="str", default="udp", choices=["udp"]),
            call_length_ms=dict(type="int", aliases=["d"]),
            rate=dict(type="float"),
            rate_period_ms=dict(type="int"),
            limit=dict(type="int"),
            calls=dict(type="int"),
            service=dict(type="str", aliases=["extension"]),
            caller=dict(type="str"),
            auth_user=dict(type="str"),
            auth_password=dict(type="str", no_log=True),
            local_ip=dict(type="str"),
            local_port=dict(type="int"),
            media_ip=dict(type="str"),
            extra_args=dict(type="list", elements="str", default=[]),
            duration=dict(type="float"),
            max_duration=dict(type="int", default=3600),
            stop_timeout=dict(type="float"),
            stats_interval=dict(type="int", default=1),
            pcap_dir=dict(type="path"),
            executable=dict(type="str", default="sipp"),
            run_id=dict(type="str"),
            state_dir=dict(type="path"),
            result_file=dict(type="path", aliases=["dest"]),
            create_dirs=dict(type="bool", default=False),
            record_params=dict(type="dict"),
        ),
        required_if=[("state", "stopped", ("run_id",))],
        supports_check_mode=True,
    )
    runner = Runner(module)
    try:
        result = run_module(module, runner)
    except SippLoadError as exc:
        for warning in runner.warnings:
            module.warn(warning)
        module.fail_json(msg=str(exc), **exc.extra)
    except (OSError, ValueError) as exc:
        for warning in runner.warnings:
            module.warn(warning)
        module.fail_json(msg="sipp_load failed: %s" % exc)
    for warning in runner.warnings:
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
