#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: lab_process
short_description: Run a long-lived lab process (QEMU, the lab gateway) under a PID file
version_added: 0.1.0
description:
  - Starts a command detached from Ansible (new session, output to a log file), optionally inside a
    network namespace, and records its PID and command line in a state file.
  - Stops it by that PID only, after checking that C(/proc/PID/cmdline) is still the recorded command, so
    a recycled PID is never signalled. Processes are never looked up by name.
  - Used by the C(xenlab.migration.lab) role for the dom0 QEMU virtual machines and the lab gateway.
author: xenlab developers (@xenlab)
extends_documentation_fragment:
  - xenlab.migration.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
options:
  name:
    description: Name of the process, used in messages.
    type: str
    required: true
  argv:
    description:
      - Command and arguments. Required with O(state=started).
      - The command must stay in the foreground (for QEMU, do not use C(-daemonize)).
    type: list
    elements: str
  state_file:
    description: JSON file that records the PID, the command line and the start time.
    type: path
    required: true
  log_file:
    description: File that receives the process's standard output and error (appended).
    type: path
  netns:
    description: Name of a network namespace (C(ip netns)) to start the process in.
    type: str
  state:
    description:
      - V(started) starts the process unless the recorded one is running with the same command line.
      - V(stopped) sends SIGTERM, then SIGKILL after O(stop_timeout) seconds.
    type: str
    choices: [started, stopped]
    default: started
  restart_on_change:
    description: With O(state=started), restart a running process whose recorded command line differs from O(argv).
    type: bool
    default: false
  stop_timeout:
    description: Seconds to wait after SIGTERM before SIGKILL.
    type: int
    default: 20
  startup_wait:
    description: Seconds to watch a new process; if it exits within them the task fails and shows the log's tail.
    type: float
    default: 1.0
seealso:
  - name: ip-netns(8)
    description: Network namespace management.
    link: https://man7.org/linux/man-pages/man8/ip-netns.8.html
"""

EXAMPLES = r"""
- name: Run the source dom0 as a QEMU virtual machine inside the lab namespace
  xenlab.migration.lab_process:
    name: source
    netns: xenlab
    argv: [qemu-system-x86_64, -name, source, -accel, tcg, -m, "1536", -display, none]
    state_file: /srv/xenlab/.lab/run/source.json
    log_file: /srv/xenlab/.lab/run/source.log

- name: Stop it
  xenlab.migration.lab_process:
    name: source
    state_file: /srv/xenlab/.lab/run/source.json
    state: stopped
"""

RETURN = r"""
pid:
  description: PID of the process (started, or the one that was stopped); null when none ran.
  type: int
  returned: always
  sample: 4242
running:
  description: Whether the process runs when the module returns.
  type: bool
  returned: always
cmdline_changed:
  description: Whether a running process's command line differs from O(argv).
  type: bool
  returned: when O(state=started)
"""

import json
import os
import signal
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.xenlab.migration.plugins.module_utils.process import spawn_detached
from ansible_collections.xenlab.migration.plugins.module_utils.results import write_json_atomic


def read_state(path):
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("pid"), int) else None


def proc_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            raw = f.read()
    except OSError:
        return None
    if not raw:
        return None  # zombie or kernel thread
    return [a.decode("utf-8", "replace") for a in raw.rstrip(b"\0").split(b"\0")]


def alive_as(state):
    """True if the recorded PID still runs the recorded command line."""
    return state is not None and proc_cmdline(state["pid"]) == state.get("cmdline")


def tail(path, lines=20):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_gone(state, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive_as(state):
            return True
        time.sleep(0.1)
    return not alive_as(state)


def stop(module, state, timeout):
    pid = state["pid"]
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
        if not alive_as(state):
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        except OSError as exc:
            module.fail_json(msg="cannot signal %s (PID %d): %s" % (module.params["name"], pid, exc))
        if wait_gone(state, wait):
            return
    module.fail_json(msg="%s (PID %d) did not exit after SIGKILL" % (module.params["name"], pid))


def start(module):
    p = module.params
    argv = list(p["argv"])
    if p["netns"]:
        # `ip netns exec` execs the command, so the PID we record is the command's own.
        argv = ["ip", "netns", "exec", p["netns"]] + argv
    log_path = p["log_file"] or os.devnull
    try:
        proc = spawn_detached(argv, log_path)
    except OSError as exc:
        module.fail_json(msg="cannot start %s (log %s): %s" % (p["name"], log_path, exc), cmd=argv)
    deadline = time.monotonic() + p["startup_wait"]
    while True:
        rc = proc.poll()
        if rc is not None:
            module.fail_json(msg="%s exited with status %d right after start; log tail:\n%s"
                             % (p["name"], rc, tail(log_path)), cmd=argv, rc=rc)
        cmdline = proc_cmdline(proc.pid)
        # Until `ip netns exec` has exec'd, the child still shows ip's own command line.
        execd = cmdline is not None and cmdline[:3] != ["ip", "netns", "exec"]
        if time.monotonic() >= deadline and (execd or not p["netns"]):
            break
        if time.monotonic() >= deadline + 10:
            module.fail_json(msg="%s did not start its command within 10 s" % p["name"], cmd=argv)
        time.sleep(0.05)
    state = {"pid": proc.pid, "cmdline": cmdline, "name": p["name"],
             "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    write_json_atomic(p["state_file"], state)
    return state


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            argv=dict(type="list", elements="str"),
            state_file=dict(type="path", required=True),
            log_file=dict(type="path"),
            netns=dict(type="str"),
            state=dict(type="str", default="started", choices=["started", "stopped"]),
            restart_on_change=dict(type="bool", default=False),
            stop_timeout=dict(type="int", default=20),
            startup_wait=dict(type="float", default=1.0),
        ),
        required_if=[("state", "started", ["argv"])],
        supports_check_mode=True,
    )
    p = module.params
    state = read_state(p["state_file"])
    running = alive_as(state)

    if p["state"] == "stopped":
        if not running:
            if state is not None and not module.check_mode:
                os.unlink(p["state_file"])
            module.exit_json(changed=False, pid=None, running=False)
        if not module.check_mode:
            stop(module, state, p["stop_timeout"])
            os.unlink(p["state_file"])
        module.exit_json(changed=True, pid=state["pid"], running=False)

    if not p["argv"] or not all(p["argv"]):
        module.fail_json(msg="argv must be a non-empty list of non-empty strings")
    wanted_tail = list(p["argv"])
    changed_cmd = bool(running and state["cmdline"][-len(wanted_tail):] != wanted_tail)
    if running and not (changed_cmd and p["restart_on_change"]):
        if changed_cmd:
            module.warn("%s runs with another command line; set restart_on_change to apply the new one" % p["name"])
        module.exit_json(changed=False, pid=state["pid"], running=True, cmdline_changed=changed_cmd)
    if module.check_mode:
        module.exit_json(changed=True, pid=None, running=False, cmdline_changed=changed_cmd)
    if running:
        stop(module, state, p["stop_timeout"])
    new = start(module)
    module.exit_json(changed=True, pid=new["pid"], running=True, cmdline_changed=changed_cmd)


if __name__ == "__main__":
    main()
