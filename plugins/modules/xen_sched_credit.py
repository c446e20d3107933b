#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: xen_sched_credit
short_description: Read and set a Xen domain's credit scheduler weight and cap
version_added: 0.1.0
description:
  - Reads a domain's scheduler weight and cap with C(xl sched-credit -d) (credit scheduler) or C(xl sched-credit2 -d)
    (credit2), and sets the ones given that differ, so a second run changes nothing.
  - The scheduler is the one C(xl info) reports as C(xen_scheduler), unless O(scheduler) names it.
  - The cap is the percentage of one physical CPU the domain may use at most (V(0) means no cap; V(100) one
    full CPU); the thesis's experiments vary the cap of the migrated guest to throttle its dirtying rate.
    Xen accepts caps from 0 to 100 times the domain's vCPUs, and weights from 1 to 65535.
  - On old toolstacks (O(toolstack=xm), Xen 3.x with xend) the credit scheduler's C(xm sched-credit) is used.
  - Optionally writes the setting as a JSON measurement record (O(result_file)).
author: xenlab developers (@xenlab)
extends_documentation_fragment:
  - xenlab.migration.attributes
attributes:
  check_mode:
    support: full
    details: In check mode the current values are read and the values that would be set are returned; nothing is set.
  diff_mode:
    support: full
    details: The diff shows the weight and cap before and after.
options:
  domain:
    description: Name or numeric ID of the domain, for example V(Domain-0) or V(voip).
    type: str
    required: true
  weight:
    description:
      - Scheduler weight to set (1 to 65535; Xen's default is 256). A domain with twice the weight gets twice
        the CPU of another when both compete.
      - Left unchanged when not given.
    type: int
  cap:
    description:
      - Cap to set, in percent of one physical CPU (0 is no cap). At most 100 times the domain's vCPUs.
      - Left unchanged when not given.
    type: int
  scheduler:
    description:
      - Scheduler of the domain's CPU pool. V(auto) takes C(xen_scheduler) from C(xl info).
      - Any other scheduler than credit or credit2 has neither weight nor cap; the module then fails and says
        to boot Xen with C(sched=credit).
    type: str
    choices: [auto, credit, credit2]
    default: auto
  toolstack:
    description: V(xl) (Xen 4.x) or V(xm) (xend, Xen 3.x as in the thesis; credit scheduler only).
    type: str
    choices: [xl, xm]
    default: xl
  result_file:
    description:
      - Write the resulting setting as a JSON measurement record (kind C(xen_sched_credit)) to this file,
        atomically; parent directories are created. A name ending in C(.fact) under C(/etc/ansible/facts.d)
        reads back as C(ansible_local.<name>).
      - The record carries the time it was taken, so it is rewritten on every run that is not in check mode;
        that alone does not make the task changed.
    type: path
notes:
  - Must run as root on the dom0 (the toolstack needs the privileged command interface).
  - Setting weight or cap does not survive a reboot of the domain; set it again after starting the guest.
seealso:
  - name: xl(1)
    description: The C(sched-credit), C(sched-credit2), C(list) and C(vcpu-list) commands.
    link: https://xenbits.xen.org/docs/4.17-testing/man/xl.1.html
  - name: Credit scheduler
    description: Weight and cap of Xen's credit scheduler.
    link: https://wiki.xenproject.org/wiki/Credit_Scheduler
  - module: xenlab.migration.xen_migrate
"""

EXAMPLES = r"""
- name: Cap the VoIP guest at 35 % of a CPU (the thesis's best cap)
  xenlab.migration.xen_sched_credit:
    domain: voip
    cap: 35

- name: Give Domain-0 twice the default weight, no cap
  xenlab.migration.xen_sched_credit:
    domain: Domain-0
    weight: 512
    cap: 0

- name: Read the current setting only
  xenlab.migration.xen_sched_credit:
    domain: voip
  register: sched

- name: Same cap on a Xen 3.x dom0 with xend, recorded as a local fact
  xenlab.migration.xen_sched_credit:
    domain: voip
    cap: 35
    toolstack: xm
    result_file: /etc/ansible/facts.d/xenlab_sched.fact
"""

RETURN = r"""
domain:
  description: Name of the domain.
  returned: success
  type: str
  sample: voip
domid:
  description: Domain ID.
  returned: success
  type: int
  sample: 3
scheduler:
  description: Scheduler used, V(credit) or V(credit2).
  returned: success
  type: str
  sample: credit
weight:
  description: Weight after the task (in check mode, the weight that would be set).
  returned: success
  type: int
  sample: 256
cap:
  description: Cap after the task in percent of a CPU, 0 for none (in check mode, the cap that would be set).
  returned: success
  type: int
  sample: 35
vcpus:
  description: Number of vCPUs of the domain, which bounds the cap (100 per vCPU).
  returned: success
  type: int
  sample: 1
before:
  description: Weight and cap read before any change.
  returned: success
  type: dict
  sample: {weight: 256, cap: 0}
after:
  description: Weight and cap after the task (read back from the toolstack unless in check mode).
  returned: success
  type: dict
  sample: {weight: 256, cap: 35}
cmd:
  description: The command that set the values (not run in check mode).
  returned: when changed
  type: list
  elements: str
  sample: [xl, sched-credit, -d, voip, -c, "35"]
result_file:
  description: Path of the measurement record written.
  returned: when O(result_file) is set and not in check mode
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.xenlab.migration.plugins.module_utils import results
from ansible_collections.xenlab.migration.plugins.module_utils.xl import (
    WEIGHT_MAX, WEIGHT_MIN, SCHEDULERS_WITH_WEIGHT_CAP, XlCommandError, XlParseError, XlRunner, cap_supported)

BOOT_HINT = "boot Xen with sched=credit on its command line (role xen_dom0: xen_dom0_scheduler: credit)"


def boot_hint(scheduler="credit"):
    return BOOT_HINT.replace("credit", scheduler)


def fail_command(module, exc, domain, scheduler=None, **extra):
    """Turn an XlCommandError into a message that says what to do."""
    ts = module.params["toolstack"]
    if exc.kind == "domain_not_found":
        msg = "domain %s not found on this host: it is not running here (see '%s list')" % (domain, ts)
    elif exc.kind == "scheduler_mismatch":
        actual = exc.detail.get("actual")
        wanted = exc.detail.get("wanted", scheduler)
        msg = "domain %s is not scheduled by %s%s: %s, or leave scheduler=auto to use the one Xen runs" % (
            domain, wanted, " but by %s" % actual if actual else "", boot_hint(wanted or "credit"))
    elif exc.kind == "cap_range":
        msg = "cap out of range for domain %s: Xen accepts 0 to %d" % (domain, exc.detail["max"])
    elif exc.kind == "weight_range":
        msg = "weight out of range: Xen accepts %d to %d" % (WEIGHT_MIN, WEIGHT_MAX)
    elif exc.kind == "permission":
        msg = "%s cannot reach the hypervisor: run the module as root on the dom0 (become: true)" % ts
    else:
        msg = exc.msg
    module.fail_json(msg=msg, cmd=exc.cmd, rc=exc.rc, stdout=exc.stdout, stderr=exc.stderr, error_kind=exc.kind,
                     changed=False, **extra)


def converge(module, xl):
    """Read, compare, set what differs; returns the result mapping (fails the module on bad input)."""
    p = module.params
    domain, weight, cap, ts = p["domain"].strip(), p["weight"], p["cap"], p["toolstack"]
    info = xl.info()
    scheduler = p["scheduler"]
    if scheduler == "auto":
        scheduler = info["xen_scheduler"]
    if scheduler not in SCHEDULERS_WITH_WEIGHT_CAP or (ts == "xm" and scheduler != "credit"):
        module.fail_json(msg="Xen on this host runs the %s scheduler, which %s has no weight or cap for: %s"
                             % (scheduler, ts, BOOT_HINT), scheduler=scheduler)
    if cap is not None:
        ok, why = cap_supported(scheduler, info.get("xen_version_tuple"), ts)
        if not ok:
            module.fail_json(msg="cannot cap domain %s: %s; %s" % (domain, why, BOOT_HINT), scheduler=scheduler)

    row = xl.list_domain(domain)
    name = row["name"]
    vcpus = xl.vcpu_count(name)
    out = dict(domain=name, domid=row["domid"], scheduler=scheduler, vcpus=vcpus)
    if cap is not None and cap > 100 * vcpus:
        module.fail_json(msg="cap %d is out of range for domain %s with %d vCPU%s: Xen accepts 0 to %d (percent of one CPU)"
                             % (cap, name, vcpus, "" if vcpus == 1 else "s", 100 * vcpus), **out)

    now = xl.sched_get(scheduler, name)
    if now["weight"] < 0 or now["cap"] < 0:
        # xm prints -1/-1 for a domain xend cannot read credit parameters of.
        module.fail_json(msg="%s reports no %s weight/cap for domain %s (weight %d, cap %d): %s"
                             % (ts, scheduler, name, now["weight"], now["cap"], BOOT_HINT), **out)
    before = dict(weight=now["weight"], cap=now["cap"])
    set_weight = weight if weight is not None and weight != before["weight"] else None
    set_cap = cap if cap is not None and cap != before["cap"] else None
    after = dict(weight=before["weight"] if set_weight is None else set_weight,
                 cap=before["cap"] if set_cap is None else set_cap)
    out.update(changed=after != before, before=before, after=after, weight=after["weight"], cap=after["cap"])
    if out["changed"]:
        out["cmd"] = xl.sched_set(scheduler, name, weight=set_weight, cap=set_cap)
        if not module.check_mode:
            read = xl.sched_get(scheduler, name)
            read = dict(weight=read["weight"], cap=read["cap"])
            if read != after:
                out.update(after=read, weight=read["weight"], cap=read["cap"])
                module.fail_json(msg="%s accepted the new setting of %s but reads back weight %d cap %d instead of %d/%d"
                                     % (ts, name, read["weight"], read["cap"], after["weight"], after["cap"]), **out)
    return out


def write_result(module, out):
    """Write the measurement record of ``out`` to O(result_file); returns the absolute path."""
    p = module.params
    record = results.measurement_record(
        "xen_sched_credit",
        dict(weight=out["weight"], cap_pct=out["cap"], weight_before=out["before"]["weight"],
             cap_before_pct=out["before"]["cap"], vcpus=out["vcpus"], changed=out["changed"]),
        params=dict(domain=out["domain"], domid=out["domid"], scheduler=out["scheduler"], toolstack=p["toolstack"],
                    weight=p["weight"], cap_pct=p["cap"]),
        host=os.uname()[1])
    try:
        return results.write_json_atomic(p["result_file"], record, make_dirs=True)
    except (OSError, ValueError) as exc:
        module.fail_json(msg="the result file %s could not be written: %s%s"
                             % (p["result_file"], exc, " (the new setting is in place)" if out["changed"] else ""), **out)
    return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            domain=dict(type="str", required=True),
            weight=dict(type="int"),
            cap=dict(type="int"),
            scheduler=dict(type="str", default="auto", choices=["auto", "credit", "credit2"]),
            toolstack=dict(type="str", default="xl", choices=["xl", "xm"]),
            result_file=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    domain, weight, cap, ts = p["domain"].strip(), p["weight"], p["cap"], p["toolstack"]

    # Inputs that are wrong whatever the host says.
    if not domain or domain.startswith("-"):
        module.fail_json(msg="domain must be a domain name or ID, not %r" % p["domain"])
    if weight is not None and not WEIGHT_MIN <= weight <= WEIGHT_MAX:
        module.fail_json(msg="weight must be between %d and %d, not %d" % (WEIGHT_MIN, WEIGHT_MAX, weight))
    if cap is not None and cap < 0:
        module.fail_json(msg="cap must be 0 (no cap) or a positive percentage of one CPU, not %d" % cap)
    if ts == "xm" and p["scheduler"] == "credit2":
        module.fail_json(msg="the xm toolstack has no sched-credit2 command: use toolstack=xl, or %s" % BOOT_HINT)

    binary = module.get_bin_path(ts)
    if binary is None:
        module.fail_json(msg="%s is not installed on this host (not in PATH): run the module on a Xen dom0 with the %s "
                             "toolstack (Debian: package xen-utils)" % (ts, ts))
    xl = XlRunner(module.run_command, binary=binary, check_mode=module.check_mode)

    try:
        out = converge(module, xl)
    except XlCommandError as exc:
        fail_command(module, exc, domain, scheduler=p["scheduler"])
        return
    except XlParseError as exc:
        module.fail_json(msg="cannot read the output of %s: %s" % (ts, exc), cmd=xl.calls[-1] if xl.calls else None)
        return

    if module._diff:
        label = "%s %s" % (out["scheduler"], out["domain"])
        out["diff"] = dict(before="weight: %d\ncap: %d\n" % (out["before"]["weight"], out["before"]["cap"]),
                           after="weight: %d\ncap: %d\n" % (out["after"]["weight"], out["after"]["cap"]),
                           before_header=label, after_header=label)
    if p["result_file"] and not module.check_mode:
        out["result_file"] = write_result(module, out)
    module.exit_json(**out)


if __name__ == "__main__":
    main()
