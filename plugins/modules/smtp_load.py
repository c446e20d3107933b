#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: smtp_load
short_description: Send tagged mails over SMTP at a rate, time each one, and check their delivery
version_added: 0.1.0
description:
  - The thesis's mail load (Nkubito 2012, section 5 - 1000 mails from jane to john while the mail VM
    migrates, response time per mail) with Python's C(smtplib), on the client. Needs only Python 3.8 or later
    on the host it runs on.
  - O(state=send) sends O(count) mails from O(sender) to O(recipient) to O(host):O(port), one SMTP session
    (TCP connection) per mail, mail number N due at (N - 1) / O(rate) seconds after the start, with up to
    O(concurrency) sessions at once. A mail whose turn comes while all sessions are busy starts late.
  - 'Measured per mail (ms): RV(response_ms) from the start of the TCP connect to the server''s 250 reply
    after the end of DATA (connect, greeting, EHLO, MAIL, RCPT, DATA, message; QUIT is not counted);
    RV(transaction_ms) from MAIL FROM to that 250; RV(connect_ms) from the start of the connect to the 220
    greeting. RV(timeline) gives every mail''s start and end times and reply code.'
  - A failure is a measurement, not an error of the module - a refused connection, a timeout, a 4xx or 5xx
    reply are counted in RV(failed_mails) with the stage, code and text (RV(failures)), and the module succeeds.
    Mails are not retried.
  - Each mail carries C(Message-ID <RUN.SEQ.smtp-load@DOMAIN>) and the headers C(X-Xenlab-Run) (RV(run_id)),
    C(X-Xenlab-Seq) (1, 2, ...) and C(X-Xenlab-Sent) (Unix time of the attempt).
  - O(state=check) runs on the mail server and looks for the mails of O(run_id) in O(mailbox) (a Maildir
    or an mbox file) until every seq in O(expected_seqs) is there or O(delivery_timeout) passes. With
    O(check_delivery=true) O(state=send) and O(state=stopped) do the same on their own host (when client
    and mailbox share it).
  - O(state=started) starts the sender in the background and returns its RV(run_id) at once;
    O(state=stopped) stops it (no new mail starts, mails in flight finish) and returns the figures. The
    pair brackets an action such as a live migration. The sender is this module's code, written into
    O(state_dir)/RUN_ID/ and run with the module's Python; it is stopped by the PID in its state file after
    checking that C(/proc/PID/cmdline) and the process start time still match.
  - Every figure can be written as a measurement record (JSON, C(schema_version), C(kind=smtp_load) or
    C(kind=smtp_delivery), C(params), C(results)) to O(result_file).
author:
  - xenlab developers (@xenlab)
extends_documentation_fragment:
  - xenlab.migration.attributes
attributes:
  check_mode:
    support: full
    details:
      - With O(state=send) or O(state=started) nothing is sent; the module reports what it would send.
      - With O(state=stopped) nothing is stopped; the module reports whether the sender is running.
      - O(state=check) only reads the mailbox and runs as usual, but does not write O(result_file).
  diff_mode:
    support: none
options:
  state:
    description:
      - V(send) sends the mails and returns the figures; V(started) starts a background sender;
        V(stopped) stops the sender O(run_id) and returns its figures (again, without change, for one stopped
        before); V(check) looks for the mails of O(run_id) in O(mailbox).
    type: str
    choices: [send, started, stopped, check]
    default: send
  host:
    description: SMTP server to send to (name or address). Required with O(state=send) and O(state=started).
    type: str
  port:
    description: SMTP port.
    type: int
    default: 25
  count:
    description:
      - Number of mails. With O(state=started), V(0) sends until the sender is stopped (or O(max_duration)).
    type: int
    default: 100
  rate:
    description: Mails per second (mail N is due at (N - 1) / O(rate) s); V(0) sends as fast as the sessions allow.
    type: float
    default: 10
  concurrency:
    description: Most SMTP sessions open at once (1 to 1000).
    type: int
    default: 4
  domain:
    description: Mail domain of the default O(sender) and O(recipient).
    type: str
    default: xen.com
  sender:
    description: Envelope and header sender. Default C(jane@DOMAIN).
    type: str
  recipient:
    description: Envelope and header recipient. Default C(john@DOMAIN).
    type: str
  helo:
    description: Name given in EHLO. Default this host's name (without a DNS lookup).
    type: str
  message_size:
    description: Size of each mail's body in bytes (the headers add about 350).
    type: int
    default: 1024
  timeout:
    description: Seconds to wait for the TCP connect and for each SMTP reply before the mail counts as failed.
    type: float
    default: 30
  run_id:
    description:
      - Names the run; its mails carry it in C(X-Xenlab-Run). Required with O(state=stopped) and O(state=check).
      - With O(state=send) or O(state=started) a new one is made when none is given. Letters, digits, V(.),
        V(_) and V(-), starting with a letter or digit; at most 64 characters.
    type: str
  max_duration:
    description:
      - A background sender stops by itself after this many seconds, so a forgotten one cannot run for ever;
        V(0) means never (only allowed with O(count) above 0).
    type: int
    default: 3600
  stop_timeout:
    description:
      - Seconds O(state=stopped) waits for the mails in flight to finish before it kills the sender (those
        mails then count in RV(unfinished)). Default O(timeout) plus 10.
    type: float
  state_dir:
    description:
      - Directory holding one subdirectory per background run (state file, sender, log, result record).
      - Defaults to C(/run/xenlab-smtp-load) for root and C(~/.cache/xenlab-smtp-load) otherwise.
    type: path
  mailbox:
    description:
      - The recipient's mailbox on this host, a Maildir directory (for example C(/home/john/Maildir)) or an mbox
        file (C(/var/mail/john)). Reading it usually needs root (become).
      - Required with O(state=check) and with O(check_delivery=true).
    type: path
  mailbox_format:
    description: V(auto) takes a directory for a Maildir and a file for an mbox.
    type: str
    choices: [auto, maildir, mbox]
    default: auto
  expected_seqs:
    description:
      - With O(state=check), the seqs that must be in the mailbox, usually RV(accepted_seqs) of the sending task.
        Without it the mailbox is scanned once and every mail of the run counts.
    type: list
    elements: int
  check_delivery:
    description: With O(state=send) or O(state=stopped), then wait for every accepted mail in O(mailbox) on this host.
    type: bool
    default: false
  delivery_timeout:
    description: Seconds to wait for the expected mails to appear in the mailbox.
    type: float
    default: 60
  result_file:
    description:
      - Write the figures as a measurement record (JSON) to this file, atomically. Use
        C(/etc/ansible/facts.d/NAME.fact) to read it back as C(ansible_local.NAME).
      - Not with O(state=started) (the figures exist once the sender stops).
    type: path
  create_dirs:
    description: Create the parent directories of O(result_file) when they do not exist.
    type: bool
    default: false
  record_params:
    description:
      - Extra parameters (scenario, cap, ...) stored under C(params) in the record, next to the module's own,
        which they may not replace.
    type: dict
notes:
  - Times in results are ms (C(*_ms)), s (C(*_s)) or ISO-8601 UTC (C(*_utc)).
  - RV(delivery_delay_ms) compares the mail server's clock (Maildir file name) with the sender's (header
    C(X-Xenlab-Sent)); across hosts it includes their clock offset. An mbox keeps no sub-second delivery time, so
    it is only given for a Maildir.
  - Mails accepted by the server whose 250 the sender never saw (a connection cut during a migration) appear in
    RV(unexpected_seqs) of the check.
seealso:
  - name: smtplib
    description: The Python SMTP client the module uses.
    link: https://docs.python.org/3/library/smtplib.html
  - name: postconf(5)
    description: The Postfix parameters behind the replies (C(smtpd_relay_restrictions), C(mynetworks)).
    link: https://www.postfix.org/postconf.5.html
  - module: xenlab.migration.downtime_probe
    description: The same started/stopped pattern for ping downtime.
"""

EXAMPLES = r"""
- name: Send 1000 mails from jane to john at 10 per second (thesis section 5)
  xenlab.migration.smtp_load:
    host: 10.0.0.51
    count: 1000
    rate: 10
    result_file: /var/lib/xenlab/mail-load.json
    create_dirs: true
  register: mail

- name: Check on the mail server that every accepted mail arrived
  xenlab.migration.smtp_load:
    state: check
    run_id: "{{ mail.run_id }}"
    mailbox: /home/john/Maildir
    expected_seqs: "{{ mail.accepted_seqs }}"
    delivery_timeout: 120
  delegate_to: mail
  become: true
  register: delivery

- name: Start mails in the background around a migration
  xenlab.migration.smtp_load:
    state: started
    host: 10.0.0.51
    count: 0
    rate: 20
    max_duration: 600
  register: load

- name: Migrate the mail guest
  ansible.builtin.command: xl migrate mail dom0-b
  delegate_to: dom0-a
  changed_when: true

- name: Stop the sender and keep its figures as a local fact
  xenlab.migration.smtp_load:
    state: stopped
    run_id: "{{ load.run_id }}"
    result_file: /etc/ansible/facts.d/xenlab_mail.fact
    create_dirs: true
    record_params:
      scenario: mail_during_migration
  register: figures

- name: Show the response times
  ansible.builtin.debug:
    msg: "{{ figures.accepted }}/{{ figures.sent }} accepted, p95 {{ figures.response_ms.p95 }} ms, max {{ figures.response_ms.max }} ms"
"""

RETURN = r"""
run_id:
  description: Id of the run, carried by every mail in C(X-Xenlab-Run).
  returned: always
  type: str
  sample: 20240501T120000Z-3fa2c1
config:
  description: What the sender does (host, port, count, rate, concurrency, sender, recipient, helo, message_size, timeout, max_duration).
  returned: when O(state) is V(send), V(started) or V(stopped)
  type: dict
  sample: {host: 10.0.0.51, port: 25, count: 1000, rate: 10.0, concurrency: 4, sender: jane@xen.com}
estimated_duration_s:
  description: Time the sending would take at O(rate) (null when O(rate=0) or O(count=0)).
  returned: check mode with O(state=send) or O(state=started)
  type: float
  sample: 99.9
pid:
  description: PID of the background sender.
  returned: when O(state) is V(started) or V(stopped), not in check mode
  type: int
  sample: 4242
run_dir:
  description: Directory of the background run (state.json, the sender, its config, log and result.json).
  returned: when O(state) is V(started) or V(stopped)
  type: str
  sample: /run/xenlab-smtp-load/20240501T120000Z-3fa2c1
cmd:
  description: Command line of the background sender.
  returned: when O(state) is V(started) or V(stopped)
  type: list
  elements: str
  sample: [/usr/bin/python3, /run/xenlab-smtp-load/RUN/smtp_load.py, send, /run/xenlab-smtp-load/RUN/config.json]
started_utc:
  description: When the sending started.
  returned: when O(state) is V(send), V(started) or V(stopped), not in check mode
  type: str
  sample: "2024-05-01T12:00:00.123456Z"
finished_utc:
  description: When the last mail finished.
  returned: when O(state) is V(send) or V(stopped), not in check mode
  type: str
  sample: "2024-05-01T12:01:40.654321Z"
duration_s:
  description: Seconds from the start of the sending to its end.
  returned: when O(state) is V(send) or V(stopped), not in check mode
  type: float
  sample: 100.53
sent:
  description: Mails whose SMTP session was started.
  returned: when O(state) is V(send) or V(stopped), not in check mode
  type: int
  sample: 1000
accepted:
  description: Mails the server accepted (250 after DATA).
  returned: like RV(sent)
  type: int
  sample: 995
failed_mails:
  description: Mails not accepted, RV(rejected) plus RV(errors). (Not C(failed), which would fail the task.)
  returned: like RV(sent)
  type: int
  sample: 5
rejected:
  description: Failed mails the server refused with a reply code (4xx, 5xx, or an unexpected greeting).
  returned: like RV(sent)
  type: int
  sample: 0
errors:
  description: Failed mails without a reply code (connection refused or reset, timeout, connection closed).
  returned: like RV(sent)
  type: int
  sample: 5
unfinished:
  description: Mails still in flight when the background sender had to be killed (not in RV(sent)).
  returned: when O(state=stopped), not in check mode
  type: int
  sample: 0
accepted_seqs:
  description: Seqs of the accepted mails, for O(expected_seqs) of a check.
  returned: like RV(sent)
  type: list
  elements: int
  sample: [1, 2, 3]
failed_seqs:
  description: Seqs of the failed mails.
  returned: like RV(sent)
  type: list
  elements: int
  sample: [57, 58]
failures:
  description:
    - The first 100 failed mails with C(seq), C(stage) (connect, ehlo, mail, rcpt, data), C(code) (null without a
      reply), C(message), C(t_send_ms), C(t_done_ms).
  returned: like RV(sent)
  type: list
  elements: dict
  sample: [{seq: 57, stage: rcpt, code: 554, message: "5.7.1 <someone@example.org>: Relay access denied", t_send_ms: 5600.2, t_done_ms: 5607.9}]
failures_by_code:
  description: Failed mails per reply code (C(none) without a reply).
  returned: like RV(sent)
  type: dict
  sample: {"none": 5}
failures_by_stage:
  description: Failed mails per stage.
  returned: like RV(sent)
  type: dict
  sample: {connect: 5}
response_ms:
  description:
    - Response time of the accepted mails, start of the TCP connect to the 250 after DATA - C(count), C(min),
      C(mean), C(median), C(p95) (linear interpolation between closest ranks) and C(max); null values without
      accepted mails.
  returned: like RV(sent)
  type: dict
  sample: {count: 995, min: 4.6, mean: 19.0, median: 6.6, p95: 50.4, max: 1210.3}
transaction_ms:
  description: Like RV(response_ms), from MAIL FROM to the 250 after DATA.
  returned: like RV(sent)
  type: dict
  sample: {count: 995, min: 2.8, mean: 14.2, median: 4.2, p95: 43.7, max: 1201.0}
connect_ms:
  description: Like RV(response_ms), from the start of the TCP connect to the 220 greeting.
  returned: like RV(sent)
  type: dict
  sample: {count: 995, min: 0.6, mean: 3.9, median: 1.0, p95: 10.9, max: 12.5}
failed_response_ms:
  description: Like RV(response_ms) for the failed mails, from the start of the connect to the failure.
  returned: like RV(sent)
  type: dict
  sample: {count: 5, min: 0.5, mean: 0.6, median: 0.6, p95: 0.7, max: 0.7}
schedule_lag_ms:
  description: How late the mails started against their schedule (C(mean), C(max)); large when every session was busy.
  returned: like RV(sent)
  type: dict
  sample: {mean: 0.8, max: 1.2}
send_rate_per_s:
  description: Mails started per second, between the first and the last start.
  returned: like RV(sent)
  type: float
  sample: 10.0
first_send_ms:
  description: Start of the first mail, ms after the start of the run.
  returned: like RV(sent)
  type: float
  sample: 1.1
last_done_ms:
  description: End of the last mail, ms after the start of the run.
  returned: like RV(sent)
  type: float
  sample: 99905.2
timeline:
  description: Every mail in seq order with C(seq), C(t_send_ms), C(t_done_ms) (ms after the start of the run), C(code) and C(ok).
  returned: like RV(sent)
  type: list
  elements: dict
  sample: [{seq: 1, t_send_ms: 1.131, t_done_ms: 59.315, code: 250, ok: true}]
found:
  description: Mails of the run found in the mailbox (distinct seqs).
  returned: when O(state=check), or with O(check_delivery=true)
  type: int
  sample: 995
expected:
  description: Number of seqs expected (O(expected_seqs), or the accepted ones with O(check_delivery)).
  returned: like RV(found), when there are expected seqs
  type: int
  sample: 995
delivered:
  description: Expected mails found in the mailbox (without expected seqs, every mail of the run found).
  returned: like RV(found)
  type: int
  sample: 995
missing_seqs:
  description: Expected seqs not in the mailbox when the check ended; a lost accepted mail shows here.
  returned: like RV(found)
  type: list
  elements: int
  sample: []
unexpected_seqs:
  description: Seqs in the mailbox that were not expected (accepted by the server while the sender saw a failure).
  returned: like RV(found)
  type: list
  elements: int
  sample: [58]
duplicate_seqs:
  description: Seqs delivered more than once.
  returned: like RV(found)
  type: list
  elements: int
  sample: []
delivery_delay_ms:
  description: Delivery time (Maildir file name) minus C(X-Xenlab-Sent), as C(count), C(min), C(mean), C(median), C(p95), C(max); Maildir only.
  returned: like RV(found)
  type: dict
  sample: {count: 5, min: 4.2, mean: 20.3, median: 6.0, p95: 56.1, max: 65.1}
waited_s:
  description: Seconds the check waited for the mails.
  returned: like RV(found)
  type: float
  sample: 0.5
mailbox_format:
  description: V(maildir) or V(mbox); null when the mailbox did not exist.
  returned: like RV(found)
  type: str
  sample: maildir
result_file:
  description: Where the measurement record was written.
  returned: when O(result_file) is set, or with O(state=stopped) (the run directory's result.json), not in check mode
  type: str
  sample: /var/lib/xenlab/mail-load.json
"""

import os
import pwd
import signal
import socket
import sys
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.xenlab.migration.plugins.module_utils import results
from ansible_collections.xenlab.migration.plugins.module_utils import smtp_load as load
from ansible_collections.xenlab.migration.plugins.module_utils.process import check_alive, read_cmdline, read_proc_stat, spawn_detached

RECORD_KIND = "smtp_load"
CHECK_KIND = "smtp_delivery"
STATE_VERSION = 1
STARTUP_CHECK_S = 0.3
RUN_FILES = ("state.json", "config.json", "smtp_load.py", "sender.log", "stderr.log", "result.json")
CONFIG_KEYS = ("host", "port", "count", "rate", "concurrency", "sender", "recipient", "helo", "message_size",
               "timeout", "max_duration")


class ModuleError(Exception):
    """A failure to report with fail_json; ``extra`` goes into the result."""

    def __init__(self, msg, **extra):
        super(ModuleError, self).__init__(msg)
        self.extra = extra


# --- processes (PID, /proc/PID/cmdline and start time) ---------------------------------------------


def check_our_process(pid, cmd, start_ticks):
    """(True, '') if PID is alive and is the sender we started, else (False, why not)."""
    alive, why = check_alive(pid, start_ticks)
    if not alive:
        return False, why
    if read_cmdline(pid) != cmd:
        return False, "PID %d now runs another program" % pid
    return True, ""


def wait_gone(pid, start_ticks, timeout):
    deadline = time.monotonic() + timeout
    while True:
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


def default_state_dir():
    uid = os.geteuid()
    if uid == 0:
        return "/run/xenlab-smtp-load"
    return os.path.join(pwd.getpwuid(uid).pw_dir, ".cache", "xenlab-smtp-load")


def worker_source():
    """The text of module_utils/smtp_load.py, also when it was imported from AnsiballZ's zip."""
    loader = getattr(load, "__loader__", None)
    source = None
    if loader is not None and hasattr(loader, "get_source"):
        try:
            source = loader.get_source(load.__name__)
        except (ImportError, OSError):
            source = None
    if source is None:
        with open(load.__file__, "r", encoding="utf-8") as handle:
            source = handle.read()
    return source


# --- the module -------------------------------------------------------------------------------------

class SmtpLoad(object):
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.state_dir = self.p["state_dir"] or default_state_dir()
        self.warnings = []

    # inputs
    def config(self, run_id):
        p = self.p
        helo = p["helo"] or socket.gethostname() or "localhost"
        cfg = {
            "host": p["host"], "port": p["port"], "count": p["count"], "rate": p["rate"],
            "concurrency": p["concurrency"], "sender": p["sender"] or "jane@" + p["domain"],
            "recipient": p["recipient"] or "john@" + p["domain"], "helo": helo,
            "message_size": p["message_size"], "timeout": p["timeout"], "run_id": run_id,
            "max_duration": p["max_duration"] if p["state"] == "started" else 0,
        }
        if p["state"] == "send" and p["count"] < 1:
            raise ModuleError("count must be at least 1 with state=send (count=0, until stopped, needs state=started)")
        try:
            return load.validate_config(cfg)
        except load.SmtpLoadError as exc:
            raise ModuleError(str(exc))

    def run_id(self):
        if self.p["run_id"]:
            try:
                return load.check_run_id(self.p["run_id"])
            except load.SmtpLoadError as exc:
                raise ModuleError(str(exc))
        return load.new_run_id()

    def params_for_record(self, cfg):
        params = {key: cfg[key] for key in CONFIG_KEYS}
        params["run_id"] = cfg["run_id"]
        for key, value in (self.p["record_params"] or {}).items():
            if key in params:
                raise ModuleError("record_params may not replace the module's own parameter %r" % key)
            params[key] = value
        return params

    def write_record(self, kind, figures, params, started=None, finished=None, path=None):
        path = path or self.p["result_file"]
        try:
            record = results.measurement_record(kind, figures, params=params, started=started, finished=finished)
            return results.write_record(path, record, make_dirs=self.p["create_dirs"])
        except (OSError, ValueError, TypeError) as exc:
            raise ModuleError("cannot write the result record %s: %s (create_dirs=%s)" % (path, exc, self.p["create_dirs"]))

    def check_delivery(self, run_id, expected):
        p = self.p
        try:
            report = load.wait_for_delivery(p["mailbox"], run_id, expected=expected,
                                            fmt=p["mailbox_format"], timeout=p["delivery_timeout"])
        except load.SmtpLoadError as exc:
            raise ModuleError("cannot check the mailbox: %s" % exc)
        if not report["mailbox_exists"]:
            self.warnings.append("the mailbox %s does not exist (nothing delivered yet, or a wrong path?)" % p["mailbox"])
        if report["missing_seqs"]:
            self.warnings.append("%d of %d expected mails were not in %s after %g s"
                                 % (len(report["missing_seqs"]), report.get("expected", 0), p["mailbox"], report["waited_s"]))
        return report

    # state=send
    def send(self, result):
        run_id = self.run_id()
        cfg = self.config(run_id)
        result.update(run_id=run_id, config={key: cfg[key] for key in CONFIG_KEYS})
        if self.module.check_mode:
            result.update(changed=True, estimated_duration_s=self.estimate(cfg),
                          msg="check mode: would send %d mails from %s to %s via %s:%d"
                          % (cfg["count"], cfg["sender"], cfg["recipient"], cfg["host"], cfg["port"]))
            return result
        params = self.params_for_record(cfg)  # refuse bad record_params before sending anything
        records = []
        info = load.run_load(cfg, records.append)
        figures = load.summarize(records, attempted=info["attempted"])
        figures.pop("unfinished", None)
        figures.update(self.times(info["started_unix"], info["finished_unix"]))
        if self.p["check_delivery"]:
            figures.update(self.check_delivery(run_id, figures["accepted_seqs"]))
        result.update(figures)
        result["changed"] = True
        if self.p["result_file"]:
            result["result_file"] = self.write_record(RECORD_KIND, figures, params, info["started_unix"], info["finished_unix"])
        return result

    @staticmethod
    def estimate(cfg):
        if not cfg["rate"] or not cfg["count"]:
            return None
        return round((cfg["count"] - 1) / cfg["rate"], 3)

    @staticmethod
    def times(started, finished):
        return {"started_utc": results.utc_iso(started), "finished_utc": results.utc_iso(finished),
                "duration_s": round(finished - started, 6)}

    # state=started
    def run_dir(self, run_id):
        return os.path.join(self.state_dir, run_id)

    def check_id_free(self, run_id):
        """Refuse a run id whose sender runs or was never stopped; True if a stopped one is replaced."""
        directory = self.run_dir(run_id)
        if not os.path.exists(directory):
            return False
        state = self.read_state_file(os.path.join(directory, "state.json"))
        if not isinstance(state, dict) or not isinstance(state.get("pid"), int):
            raise ModuleError("run_id %r: %s exists but holds no usable state file; remove it or choose another run_id"
                              % (run_id, directory), run_id=run_id)
        if state.get("stopped_utc"):
            return True
        alive, why = check_our_process(state["pid"], state.get("cmd"), state.get("start_ticks"))
        if alive:
            raise ModuleError("the sender of run %r is already running (pid %d, started %s): stop it with state=stopped first"
                              % (run_id, state["pid"], state.get("started_utc")), run_id=run_id, pid=state["pid"])
        raise ModuleError("the sender of run %r was started at %s and never stopped (%s): stop it with state=stopped to get "
                          "its figures" % (run_id, state.get("started_utc"), why), run_id=run_id)

    @staticmethod
    def read_state_file(path):
        try:
            return results.read_json(path)
        except results.ResultFileError:
            return None

    def clear_stopped(self, run_id):
        directory = self.run_dir(run_id)
        try:
            for name in RUN_FILES:
                path = os.path.join(directory, name)
                if os.path.lexists(path):
                    os.unlink(path)
            os.rmdir(directory)
        except OSError as exc:
            raise ModuleError("cannot reuse run_id %r: %s (remove %s or choose another run_id)" % (run_id, exc, directory))

    def start(self, result):
        if self.p["result_file"]:
            raise ModuleError("result_file is only written with state=send, stopped or check (the figures exist once "
                              "the sender stops)")
        if self.p["check_delivery"]:
            raise ModuleError("check_delivery is used with state=stopped, not state=started")
        run_id = self.run_id()
        cfg = self.config(run_id)
        replaces = self.check_id_free(run_id)
        directory = self.run_dir(run_id)
        script = os.path.join(directory, "smtp_load.py")
        config_file = os.path.join(directory, "config.json")
        cmd = [sys.executable, script, "send", config_file]
        result.update(run_id=run_id, config={key: cfg[key] for key in CONFIG_KEYS}, run_dir=directory, cmd=cmd)
        if self.module.check_mode:
            verb = "replace the stopped run %r and start" % run_id if replaces else "start"
            result.update(changed=True, estimated_duration_s=self.estimate(cfg),
                          msg="check mode: would %s a sender of %s mails from %s to %s via %s:%d"
                          % (verb, cfg["count"] or "unlimited", cfg["sender"], cfg["recipient"], cfg["host"], cfg["port"]))
            return result
        self.params_for_record(cfg)
        if replaces:
            self.clear_stopped(run_id)
        try:
            os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
            os.mkdir(directory, 0o700)
            with open(script, "w", encoding="utf-8") as handle:
                handle.write(worker_source())
            results.write_json_atomic(config_file, cfg, mode=0o600)
        except OSError as exc:
            raise ModuleError("cannot create the run directory %s: %s" % (directory, exc))
        log_file = os.path.join(directory, "sender.log")
        err_file = os.path.join(directory, "stderr.log")
        env = dict(os.environ, LC_ALL="C", PYTHONUNBUFFERED="1")
        try:
            proc = spawn_detached(cmd, log_file, err_file, cwd=directory, env=env)
        except OSError as exc:
            raise ModuleError("cannot start the sender %s: %s" % (cmd[0], exc))
        started = time.time()
        stat = read_proc_stat(proc.pid)
        state = {
            "schema_version": STATE_VERSION, "run_id": run_id, "pid": proc.pid,
            "start_ticks": stat[1] if stat else None, "cmd": cmd, "config": cfg,
            "record_params": self.p["record_params"] or {}, "log_file": log_file, "stderr_file": err_file,
            "started_utc": results.utc_iso(started), "started_s": started, "stopped_utc": None,
        }
        state_file = os.path.join(directory, "state.json")
        results.write_json_atomic(state_file, state, mode=0o600)
        # A bad interpreter or configuration makes the sender exit at once: say so while we can. A short
        # run may also have finished already (code 0); state=stopped then reads its log.
        time.sleep(STARTUP_CHECK_S)
        if proc.poll() is not None and proc.returncode != 0:
            stderr = read_text(err_file).strip()
            state.update(stopped_utc=results.utc_iso(), stopped_s=time.time(), exit_code=proc.returncode)
            results.write_json_atomic(state_file, state, mode=0o600)
            raise ModuleError("the sender exited at once with code %d: %s" % (proc.returncode, stderr or "no message"),
                              run_id=run_id, cmd=cmd, rc=proc.returncode, stderr=stderr, run_dir=directory)
        result.update(changed=True, pid=proc.pid, started_utc=state["started_utc"])
        return result

    # state=stopped
    def load_state(self, run_id):
        directory = self.run_dir(run_id)
        state_file = os.path.join(directory, "state.json")
        if not os.path.isfile(state_file):
            try:
                known = sorted(name for name in os.listdir(self.state_dir)
                               if os.path.isfile(os.path.join(self.state_dir, name, "state.json")))
            except OSError:
                known = []
            raise ModuleError("unknown run_id %r: its state file %s is missing (runs known in %s: %s)"
                              % (run_id, state_file, self.state_dir, ", ".join(known[-10:]) or "none"), run_id=run_id)
        state = self.read_state_file(state_file)
        needed = ("pid", "start_ticks", "cmd", "config", "log_file", "started_s", "started_utc")
        missing = [key for key in needed if not isinstance(state, dict) or key not in state]
        if missing:
            raise ModuleError("run %r: state file %s is unreadable or lacks %s" % (run_id, state_file, ", ".join(missing)),
                              run_id=run_id)
        return state, state_file

    def stop(self, result):
        run_id = self.run_id()
        state, state_file = self.load_state(run_id)
        result.update(run_id=run_id, pid=state["pid"], cmd=state["cmd"], run_dir=os.path.dirname(state_file),
                      config={key: state["config"][key] for key in CONFIG_KEYS}, started_utc=state["started_utc"])
        if state.get("stopped_utc"):
            return self.stored(state, result)
        alive, why = check_our_process(state["pid"], state["cmd"], state["start_ticks"])
        if self.module.check_mode:
            result.update(changed=True, sender_running=alive,
                          msg="check mode: would stop sender %d" % state["pid"] if alive
                          else "check mode: %s; would read its log" % why)
            return result
        if alive:
            grace = self.p["stop_timeout"] if self.p["stop_timeout"] is not None else state["config"]["timeout"] + 10.0
            self.signal(state["pid"], signal.SIGTERM)
            if not wait_gone(state["pid"], state["start_ticks"], grace):
                if check_our_process(state["pid"], state["cmd"], state["start_ticks"])[0]:
                    self.signal(state["pid"], signal.SIGKILL)
                    wait_gone(state["pid"], state["start_ticks"], 2.0)
                    self.warnings.append("the sender did not finish its mails in flight within %g s and was killed" % grace)
        else:
            self.warnings.append("the sender had already stopped (%s); its log is read as it is" % why)
        stopped = time.time()
        state.update(stopped_utc=results.utc_iso(stopped), stopped_s=stopped)
        results.write_json_atomic(state_file, state, mode=0o600)
        figures = self.analyse(state)
        if self.p["check_delivery"]:
            figures.update(self.check_delivery(run_id, figures["accepted_seqs"]))
        params = self.params_for_record(state["config"])
        for key, value in state.get("record_params", {}).items():
            params.setdefault(key, value)
        started, finished = state["started_s"], figures.pop("_finished_unix")
        own = self.write_record(RECORD_KIND, figures, params, started, finished,
                                path=os.path.join(os.path.dirname(state_file), "result.json"))
        state["result_file"] = own
        results.write_json_atomic(state_file, state, mode=0o600)
        result.update(figures)
        result.update(changed=True, result_file=own)
        if self.p["result_file"]:
            result["result_file"] = self.write_record(RECORD_KIND, figures, params, started, finished)
        return result

    @staticmethod
    def signal(pid, signum):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    def analyse(self, state):
        try:
            parsed = load.parse_log(read_text(state["log_file"]))
        except load.SmtpLoadError as exc:
            raise ModuleError("cannot read the sender's log %s: %s" % (state["log_file"], exc),
                              stderr=read_text(state.get("stderr_file")), run_id=state["run_id"])
        end = parsed["end"]
        finished_seqs = {rec["seq"] for rec in parsed["records"]}
        unfinished = sorted(seq for seq in parsed["started"] if seq not in finished_seqs)
        if end is None:
            self.warnings.append("the sender did not finish its log (killed): %d mails in flight are not counted"
                                 % len(unfinished))
        elif end.get("reason") == "max_duration reached":
            self.warnings.append("the sender had stopped by itself after max_duration=%s s"
                                 % state["config"]["max_duration"])
        figures = load.summarize(parsed["records"])
        figures["unfinished"] = len(unfinished)
        started = parsed["header"].get("started_unix", state["started_s"])
        finished = end["finished_unix"] if end else state["stopped_s"]
        figures.update(self.times(started, finished))
        figures["_finished_unix"] = finished
        return figures

    def stored(self, state, result):
        own = state.get("result_file")
        if not own:
            raise ModuleError("run %r was stopped at %s but has no result record; its log is %s"
                              % (state["run_id"], state["stopped_utc"], state["log_file"]), run_id=state["run_id"])
        try:
            record = results.read_record(own, kind=RECORD_KIND)
        except results.ResultFileError as exc:
            raise ModuleError("run %r was stopped at %s; its result record is unusable: %s"
                              % (state["run_id"], state["stopped_utc"], exc), run_id=state["run_id"])
        result.update(record["results"])
        result.update(result_file=own, msg="run %r was already stopped at %s" % (state["run_id"], state["stopped_utc"]))
        if self.p["result_file"] and not self.module.check_mode:
            try:
                result["result_file"] = results.write_record(self.p["result_file"], record, make_dirs=self.p["create_dirs"])
            except (OSError, ValueError) as exc:
                raise ModuleError("cannot write the result record %s: %s" % (self.p["result_file"], exc))
            result["changed"] = True
        return result

    # state=check
    def check(self, result):
        p = self.p
        run_id = self.run_id()
        result["run_id"] = run_id
        report = self.check_delivery(run_id, p["expected_seqs"])
        result.update(report)
        if p["result_file"] and not self.module.check_mode:
            params = {"run_id": run_id, "mailbox": p["mailbox"], "mailbox_format": p["mailbox_format"],
                      "expected": len(set(p["expected_seqs"])) if p["expected_seqs"] is not None else None,
                      "delivery_timeout": p["delivery_timeout"]}
            for key, value in (p["record_params"] or {}).items():
                if key in params:
                    raise ModuleError("record_params may not replace the module's own parameter %r" % key)
                params[key] = value
            result["result_file"] = self.write_record(CHECK_KIND, report, params)
            result["changed"] = True
        return result

    def run(self):
        p = self.p
        result = {"changed": False}
        if p["state"] in ("send", "stopped") and p["check_delivery"] and not p["mailbox"]:
            raise ModuleError("check_delivery needs mailbox (the recipient's Maildir or mbox on this host)")
        if p["expected_seqs"] is not None and p["state"] != "check":
            self.warnings.append("expected_seqs is only used with state=check")
        if p["state"] == "send":
            return self.send(result)
        if p["state"] == "started":
            return self.start(result)
        if p["state"] == "stopped":
            return self.stop(result)
        return self.check(result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", default="send", choices=["send", "started", "stopped", "check"]),
            host=dict(type="str"),
            port=dict(type="int", default=25),
            count=dict(type="int", default=100),
            rate=dict(type="float", default=10),
            concurrency=dict(type="int", default=4),
            domain=dict(type="str", default="xen.com"),
            sender=dict(type="str"),
            recipient=dict(type="str"),
            helo=dict(type="str"),
            message_size=dict(type="int", default=1024),
            timeout=dict(type="float", default=30),
            run_id=dict(type="str"),
            max_duration=dict(type="int", default=3600),
            stop_timeout=dict(type="float"),
            state_dir=dict(type="path"),
            mailbox=dict(type="path"),
            mailbox_format=dict(type="str", default="auto", choices=["auto", "maildir", "mbox"]),
            expected_seqs=dict(type="list", elements="int"),
            check_delivery=dict(type="bool", default=False),
            delivery_timeout=dict(type="float", default=60),
            result_file=dict(type="path"),
            create_dirs=dict(type="bool", default=False),
            record_params=dict(type="dict"),
        ),
        required_if=[
            ("state", "send", ("host",)),
            ("state", "started", ("host",)),
            ("state", "stopped", ("run_id",)),
            ("state", "check", ("run_id", "mailbox")),
        ],
        supports_check_mode=True,
    )
    runner = SmtpLoad(module)
    try:
        if module.params["delivery_timeout"] < 0:
            raise ModuleError("delivery_timeout must not be negative, got %g" % module.params["delivery_timeout"])
        if module.params["stop_timeout"] is not None and module.params["stop_timeout"] <= 0:
            raise ModuleError("stop_timeout must be positive, got %g" % module.params["stop_timeout"])
        result = runner.run()
    except ModuleError as exc:
        for warning in runner.warnings:
            module.warn(warning)
        module.fail_json(msg=str(exc), **exc.extra)
    except (OSError, ValueError) as exc:
        for warning in runner.warnings:
            module.warn(warning)
        module.fail_json(msg="smtp_load failed: %s" % exc)
    for warning in runner.warnings:
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
