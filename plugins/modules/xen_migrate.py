#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: xen_migrate
short_description: Live-migrate a Xen domain and record its timing and per-iteration pre-copy statistics
version_added: 0.1.0
description:
  - Runs C(xl migrate) (or C(xm migrate -l) on old toolstacks) on the source dom0, time-stamping every line
    the toolstack prints, and returns the total migration time, the toolstack's phases, and the per-iteration
    pre-copy statistics.
  - Per-iteration statistics come from libxc's progress lines, which stock C(xl) hides; the module preloads the
    shim of the M(xenlab.migration.xen_build) role (O(progress_shim)) when it exists. With the patched
    libxenguest of that role it also collects the stop policy's own log (one line per policy call) and can
    choose the stop policy (O(policy)).
  - If the migration fails or times out, the module checks that the domain still runs on the source and says so
    in the failure message; a domain left paused by a failed migration is unpaused.
  - Results can be written atomically as a JSON measurement record (O(result_file)), for example a fact file in
    C(/etc/ansible/facts.d).
author: xenlab developers (@xenlab)
extends_documentation_fragment:
  - xenlab.migration.attributes
attributes:
  check_mode:
    support: full
    details: In check mode the module only checks that the domain runs here and reports that it would migrate.
  diff_mode:
    support: none
options:
  domain:
    description: Name of the domain to migrate; it must run on the host the module runs on.
    type: str
    required: true
  target:
    description: Host (address or name) of the destination dom0, as C(ssh) reaches it from this dom0.
    type: str
    required: true
  toolstack:
    description: C(xl) (Xen 4.x) or C(xm) (xend, Xen 3.x as in the thesis; C(xm migrate -l) to the relocation server).
    type: str
    choices: [xl, xm]
    default: xl
  timeout:
    description: Seconds after which the migration is aborted (the toolstack is killed and the domain resumed on the source).
    type: int
    default: 900
  ssh_command:
    description: Remote command prefix for C(xl migrate -s), for example V(ssh -o BatchMode=yes).
    type: str
  progress_shim:
    description:
      - Library preloaded into C(xl) so that it prints libxc's per-iteration progress.
      - Ignored when the file does not exist (the result then has no per-iteration progress).
    type: path
    default: /usr/lib/xenlab/libxenlab-xlprogress.so
  policy:
    description:
      - Pre-copy stop policy for this migration; needs the patched libxenguest of the M(xenlab.migration.xen_build) role.
      - V(xen) (or its alias V(xen417)) is Xen 4.17's own rule run by the patch, V(xen34) Xen 3.4's, V(sd) the thesis's
        standard-deviation tracking, V(adaptive) the self-calibrating rule of docs/precopy.md.
      - Leave unset to use the dom0's configured default (C(/etc/xenlab/precopy.conf), else Xen's own function).
    type: str
    choices: [xen, xen417, xen34, sd, adaptive]
  policy_options:
    description:
      - "Parameters of the stop policy, passed as C(XENLAB_PRECOPY_<NAME>) environment variables, for example
        C({track_from: 10, sd_low: 0, sd_high: 50}). See docs/xen_build.md for the names."
    type: dict
    default: {}
  precopy_log:
    description:
      - File the patched libxenguest writes its per-call log to (C(XENLAB_PRECOPY_LOG)); read back and returned
        as RV(precopy). A fresh temporary file is used when unset.
    type: path
  result_file:
    description: Write the result as a JSON measurement record to this file (atomically; parent directories are created).
    type: path
  result_extra:
    description: Extra fields stored with the result record (for example the experiment's parameters).
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Migrate the VoIP guest to the target dom0
  xenlab.migration.xen_migrate:
    domain: voip
    target: 192.168.77.12
    result_file: /etc/ansible/facts.d/xenlab_last_migration.fact
  register: migration

- name: Same with the thesis's SD-tracking stop policy (patched libxenguest)
  xenlab.migration.xen_migrate:
    domain: voip
    target: 192.168.77.12
    policy: sd
    policy_options: {track_from: 10, sd_low: 0, sd_high: 50}
"""

RETURN = r"""
domain:
  description: The domain migrated.
  returned: always
  type: str
source:
  description: Host name of the source dom0.
  returned: always
  type: str
target:
  description: The destination.
  returned: always
  type: str
total_time_ms:
  description: Wall-clock time of the whole toolstack command.
  returned: success
  type: float
phases:
  description:
    - Milliseconds from the start of the command at which the toolstack reported each phase (when it did),
      C(suspended) (last pre-copy pass over, domain suspended), C(transfer_complete), C(target_started),
      C(done).
  returned: success
  type: dict
downtime_estimate_ms:
  description:
    - From the domain's suspension to the target's report of a successful start, as the toolstack's log shows it
      (the guest is paused in between; includes the destination's device hotplug).
  returned: when the log shows both moments
  type: float
iterations:
  description:
    - One record per pre-copy pass from libxc's progress lines, with C(pass), C(iteration), C(sent), C(total),
      C(phase) (V(live) or V(stop_and_copy)) and C(t_ms) (when the pass started).
  returned: success
  type: list
  elements: dict
precopy:
  description: The patched stop policy's per-call log records (empty with a stock libxenguest).
  returned: success
  type: list
  elements: dict
precopy_run:
  description:
    - What the patched libxenguest logged about this migration besides its calls, V(null) with a stock library.
    - C(policy) (the name it ran, V(xen) logs as V(xen417)), C(source) (V(env), V(file) or V(default)), C(decider)
      (V(simple_precopy_policy) when Xen's own function decided), C(params) (the policy's settings), C(stop)
      (iteration, V(before_send)/V(after_send), live passes, reason) and C(final) (the stop-and-copy; iteration,
      dirty_count, and the milliseconds suspend_ms, paused_ms, elapsed_ms since the pre-copy started).
  returned: success
  type: dict
log:
  description: The toolstack's output, one line per entry, each prefixed with its time in ms since the start.
  returned: always
  type: list
  elements: str
guest_on_source:
  description: After a failure, whether the domain still runs on the source.
  returned: failure
  type: bool
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.xenlab.migration.plugins.module_utils import precopy_log, results, xl
from ansible_collections.xenlab.migration.plugins.module_utils.process import run_timestamped

# xl's messages that mark the phases of a migration (tools/xl/xl_migrate.c).
PHASE_MARKS = (
    ("suspended", "Domain now suspended"),
    ("transfer_complete", "Target has acknowledged transfer"),
    ("target_started", "Target reports successful startup"),
    ("done", "Migration successful"),
)


# What the result file keeps of the module's return.
RECORD_KEYS = ("total_time_ms", "phases", "downtime_estimate_ms", "iterations", "precopy", "precopy_run")


def domain_state(module, toolstack, domain):
    """(running here?, state letters or None) from `xl list DOMAIN`."""
    rc, out, dummy = module.run_command([toolstack, "list", domain])
    if rc != 0:
        return False, None
    try:
        row = xl.find_domain(xl.parse_list(out), domain)
    except xl.XlParseError:
        return True, None
    return True, row["state"] if row else None


def phases_of(lines):
    found = {}
    for t_ms, line in lines:
        for name, mark in PHASE_MARKS:
            if name not in found and mark in line:
                found[name] = t_ms
    return found


def main():
    module = AnsibleModule(
        argument_spec=dict(
            domain=dict(type="str", required=True),
            target=dict(type="str", required=True),
            toolstack=dict(type="str", default="xl", choices=["xl", "xm"]),
            timeout=dict(type="int", default=900),
            ssh_command=dict(type="str"),
            progress_shim=dict(type="path", default="/usr/lib/xenlab/libxenlab-xlprogress.so"),
            policy=dict(type="str", choices=["xen", "xen417", "xen34", "sd", "adaptive"]),
            policy_options=dict(type="dict", default={}),
            precopy_log=dict(type="path"),
            result_file=dict(type="path"),
            result_extra=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    p = module.params
    domain, target, ts = p["domain"], p["target"], p["toolstack"]
    base = dict(domain=domain, target=target, source=os.uname()[1], log=[])
    if p["timeout"] <= 0:
        module.fail_json(changed=False, msg="timeout must be a positive number of seconds, not %d" % p["timeout"], **base)
    if not target.strip() or target.startswith("-"):
        module.fail_json(changed=False, msg="target must be a host name or address, not %r" % target, **base)
    bad = [k for k in p["policy_options"] if not k.replace("_", "").isalnum()]
    if bad:
        module.fail_json(changed=False, msg="policy_options names must be letters, digits and '_': %s" % ", ".join(bad), **base)
    if module.get_bin_path(ts) is None:
        module.fail_json(changed=False, msg="%s is not installed on %s: is this a Xen dom0?" % (ts, base["source"]), **base)

    here, state = domain_state(module, ts, domain)
    if not here:
        module.fail_json(changed=False, msg="domain %s does not run on %s (see '%s list'); nothing migrated" % (domain, base["source"], ts),
                         **base)
    if module.check_mode:
        module.exit_json(changed=True, msg="would migrate %s to %s" % (domain, target), **base)

    env = dict(os.environ)
    tmp_log = None
    if ts == "xl":
        argv = ["xl"]
        if p["ssh_command"]:
            argv += ["migrate", "-s", p["ssh_command"], domain, target]
        else:
            argv += ["migrate", domain, target]
        if p["progress_shim"] and os.path.exists(p["progress_shim"]):
            env["LD_PRELOAD"] = (p["progress_shim"] + " " + env.get("LD_PRELOAD", "")).strip()
        log_path = p["precopy_log"]
        if not log_path:
            fd, tmp_log = tempfile.mkstemp(prefix="xenlab-precopy.", suffix=".log")
            os.close(fd)
            log_path = tmp_log
        else:
            open(log_path, "w").close()
        env["XENLAB_PRECOPY_LOG"] = log_path
        if p["policy"]:
            env["XENLAB_PRECOPY_POLICY"] = p["policy"]
        for key, value in p["policy_options"].items():
            env["XENLAB_PRECOPY_" + key.upper()] = str(value)
    else:
        argv = ["xm", "migrate", "-l", domain, target]
        log_path = None

    started = results.utc_iso()
    rc, lines, timed_out, total_ms = run_timestamped(argv, env, p["timeout"])
    finished = results.utc_iso()
    base["log"] = ["%10.1f %s" % (t, line) for t, line in lines]
    text = "\n".join(line for dummy, line in lines)

    policy_text = ""
    if log_path and os.path.exists(log_path):
        with open(log_path, encoding="utf-8", errors="replace") as f:
            policy_text = f.read()
    if tmp_log:
        os.unlink(tmp_log)

    if rc != 0 or timed_out:
        here, state = domain_state(module, ts, domain)
        note = ""
        if here and state and "p" in state:
            # A failed xl migrate normally resumes the domain; make sure it is not left paused.
            module.run_command([ts, "unpause", domain])
            here, state = domain_state(module, ts, domain)
            note = " (it was paused: unpaused)"
        last = [line for dummy, line in lines if line.strip()][-3:]
        why = "timed out after %d s" % p["timeout"] if timed_out else "failed (exit %d)" % rc
        try:
            refused = [m["error"] for m in precopy_log.parse_precopy_log(policy_text) if m.get("error")]
        except ValueError:
            refused = []
        if refused:
            why += ", the patched libxenguest refused the stop policy settings (%s)" % refused[-1]
        where = ("%s still runs on the source %s, state %s%s" % (domain, base["source"], state, note) if here
                 else "%s is NOT running on the source %s any more: check the target" % (domain, base["source"]))
        module.fail_json(changed=False, msg="migration of %s to %s %s: %s. %s" % (domain, target, why, " | ".join(last), where),
                         guest_on_source=here, guest_state=state, total_time_ms=round(total_ms, 1), **base)

    try:
        passes = precopy_log.parse_xc_progress(text)
    except ValueError as e:
        module.warn("could not read the progress lines: %s" % e)
        passes = []
    times = dict((i + 1, t) for i, (t, dummy) in enumerate(lines))
    iterations = []
    for rec in passes:
        rec = dict(rec)
        rec["t_ms"] = times.get(rec.pop("line"))
        iterations.append(rec)
    precopy, precopy_run = [], None
    if policy_text.strip():
        try:
            migrations = precopy_log.parse_precopy_log(policy_text)
            if migrations:
                mig = migrations[-1]
                precopy = mig["records"]
                precopy_run = dict((k, mig.get(k)) for k in ("policy", "source", "decider", "params", "stop", "final"))
        except ValueError as e:
            module.warn("could not read the stop policy's log: %s" % e)

    phases = phases_of(lines)
    phases["done"] = phases.get("done", round(total_ms, 1))
    out = dict(base, total_time_ms=round(total_ms, 1), phases=phases, iterations=iterations,
               precopy=precopy, precopy_run=precopy_run, policy=p["policy"], started=started, finished=finished)
    if "suspended" in phases and "target_started" in phases:
        out["downtime_estimate_ms"] = round(phases["target_started"] - phases["suspended"], 1)

    here_after, dummy = domain_state(module, ts, domain)
    if here_after:
        module.warn("%s still shows on the source after a successful migration" % domain)

    if p["result_file"]:
        record = results.measurement_record(
            "migration",
            dict((k, out.get(k)) for k in RECORD_KEYS),
            params=dict(domain=domain, target=target, toolstack=ts, policy=p["policy"],
                        policy_options=p["policy_options"]),
            host=base["source"], started=started, finished=finished, extra=p["result_extra"] or None)
        try:
            results.write_json_atomic(p["result_file"], record, make_dirs=True)
        except (OSError, ValueError) as e:
            module.fail_json(changed=True, msg="migration succeeded but the result file %s could not be written: %s"
                             % (p["result_file"], e), **out)
        out["result_file"] = p["result_file"]
    module.exit_json(changed=True, **out)


if __name__ == "__main__":
    main()
