# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lab end-to-end tests: one local lab per test session, shared by every test.

The session brings the lab up with site.yml on the lab inventory (which starts the QEMU dom0s
and the containers first) unless XENLAB_LAB_REUSE=1 says it is already converged. Everything
runs through ansible/ansible-playbook exactly as a user would.
"""

import json
import os
import re
import subprocess
import time

import pytest

ROOT = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))
INVENTORY = os.path.join(ROOT, "inventories", "lab")
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def _env():
    env = dict(os.environ)
    env["PATH"] = os.path.join(ROOT, ".venv", "bin") + os.pathsep + env.get("PATH", "")
    env["ANSIBLE_CONFIG"] = os.path.join(ROOT, "ansible.cfg")
    env["CONTAINERS_CONF"] = os.path.join(ROOT, "tests", "containers.conf")
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["ANSIBLE_NOCOLOR"] = "1"
    # Per-task times in the logs (tests/output/lab): where a long bring-up spends its minutes.
    env.setdefault("ANSIBLE_CALLBACKS_ENABLED", "ansible.posix.timer,ansible.posix.profile_tasks")
    return env


LOG_DIR = os.path.join(ROOT, "tests", "output", "lab")
_LOG_SEQ = []


def run(argv, timeout=3600, check=True, name=None):
    """Run a command; its output also goes to tests/output/lab/NN-<name>.log as it comes, so a
    long playbook can be followed with tail -f."""
    os.makedirs(LOG_DIR, exist_ok=True)
    _LOG_SEQ.append(1)
    name = os.path.basename(name or argv[0])
    log = os.path.join(LOG_DIR, "%02d-%s.log" % (len(_LOG_SEQ), re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:60]))
    t0 = time.monotonic()
    with open(log, "w+", encoding="utf-8") as out:
        out.write("+ %s\n" % " ".join(argv))
        out.flush()
        try:
            proc = subprocess.run(argv, cwd=ROOT, env=_env(), stdout=out, stderr=subprocess.STDOUT, text=True,
                                  timeout=timeout, check=False)
        finally:
            out.seek(0)
            text = out.read()
    proc.stdout, proc.stderr = text, ""
    proc.seconds = time.monotonic() - t0
    if check and proc.returncode != 0:
        raise AssertionError("%s failed (rc %d) after %.0f s:\n%s\n%s" % (
            " ".join(argv), proc.returncode, proc.seconds, proc.stdout[-6000:], proc.stderr[-3000:]))
    return proc


def playbook(path, *extra, **kw):
    kw.setdefault("name", path)
    return run(["ansible-playbook", "-i", INVENTORY, path] + list(extra), **kw)


def recap(stdout):
    return dict((h, dict(ok=int(o), changed=int(c), unreachable=int(u), failed=int(f)))
                for h, o, c, u, f in RECAP.findall(stdout))


def adhoc(host, module, args, check=True, extra=(), env=None):
    """Run one module on one host; return its result mapping (json callback)."""
    env_argv = ["ansible", "-i", INVENTORY, host, "-m", module, "-a", args] + list(extra)
    t0 = time.monotonic()
    env = dict(_env(), **(env or {}))
    env["ANSIBLE_LOAD_CALLBACK_PLUGINS"] = "1"
    env.pop("ANSIBLE_CALLBACKS_ENABLED", None)  # stdout must be the JSON callback's alone
    env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
    proc = subprocess.run(env_argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800, check=False)
    try:
        data = json.loads(proc.stdout)
        res = data["plays"][0]["tasks"][0]["hosts"][host]
    except (ValueError, KeyError, IndexError):
        raise AssertionError("no JSON result from %s:\n%s\n%s" % (" ".join(env_argv), proc.stdout[-3000:], proc.stderr[-3000:]))
    res["_seconds"] = time.monotonic() - t0
    if check and (res.get("failed") or res.get("unreachable")):
        raise AssertionError("%s on %s failed: %s" % (module, host, json.dumps(res)[-4000:]))
    return res


def shell(host, command, check=True):
    """Run a shell command on a host: rc, stdout (without its last newline) and stderr.

    Through `raw`, not the shell module: a module costs 8-13 s on an emulated dom0 or guest (most
    of it Python importing ansible.module_utils under TCG), raw about 2 s, and the tests make dozens
    of such calls. ANSIBLE_SSH_USETTY=0 keeps stderr apart from stdout, as the shell module does.
    """
    res = adhoc(host, "ansible.builtin.raw", command, check=check, env={"ANSIBLE_SSH_USETTY": "0"})
    for key in ("stdout", "stderr"):
        if isinstance(res.get(key), str) and res[key].endswith("\n"):
            res[key] = res[key][:-1]
    return res


def where_is_guest(guest="voip"):
    """The dom0 the guest runs on; fails unless it runs on exactly one."""
    hosts = [h for h in ("source", "target") if shell(h, "xl domid %s" % guest, check=False).get("rc") == 0]
    assert len(hosts) == 1, "guest runs on %s" % hosts
    return hosts[0]


# The most telling tests first, so that a short time budget leaves out the least: the lab itself,
# the services, the scheduler module, then the campaign.
MODULE_ORDER = ("test_lab", "test_services", "test_xen_sched_credit", "test_campaign")


def pytest_collection_modifyitems(items):
    def rank(item):
        name = item.module.__name__.rpartition(".")[2]
        return MODULE_ORDER.index(name) if name in MODULE_ORDER else len(MODULE_ORDER)
    items.sort(key=rank)  # stable: a module's tests keep their order


def pytest_runtest_setup(item):
    """CI's time budget: a test marked lab_minutes(N) is skipped, with the reason printed, when
    fewer than N minutes are left before XENLAB_TEST_DEADLINE (a Unix time; `scripts/run-tests all`
    sets it). N is the test's time on a slow day of this machine kind (docs/lab.md): emulation
    speed varies 2-3x from day to day, and a run past CI's hard limit would lose every result."""
    marker = item.get_closest_marker("lab_minutes")
    deadline = os.environ.get("XENLAB_TEST_DEADLINE")
    if marker is None or not deadline:
        return
    left = (float(deadline) - time.time()) / 60.0
    if left < marker.args[0]:
        pytest.skip("CI time budget: needs about %d min on a slow day, %.0f min left before "
                    "XENLAB_TEST_DEADLINE; run it with `make lab-test`" % (marker.args[0], left))


def lab_down():
    playbook("playbooks/lab.yml", "-e", "lab_state=absent", check=False, timeout=600)


@pytest.fixture(scope="session")
def lab():
    """The converged lab: site.yml run once (bring-up time and first run printed)."""
    info = {}
    ours = os.environ.get("XENLAB_LAB_REUSE") != "1"
    down = ours and os.environ.get("XENLAB_LAB_KEEP") != "1"
    if ours:
        try:
            proc = playbook("site.yml", timeout=3600)
        except BaseException:
            # No test runs on a lab that did not converge: stop what came up (QEMU by its PID).
            if down:
                lab_down()
            raise
        info["site_first_seconds"] = proc.seconds
        print("\nxenlab: lab up and site.yml converged in %.0f s" % proc.seconds)
    yield info
    if down:
        lab_down()
