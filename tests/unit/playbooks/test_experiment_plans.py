"""The experiments' run plans, through the real playbooks (no lab: they stop before any host).

With an even number of policies (or sweep points) a fixed order inside each round sends every one
of them the same way between the two dom0s on every run; the dom0s' hand-over times differ by
more than the policies do on a converging set (benchmarks/README.md, 2026-12-07). The plans
reverse every other round, and a resumed directory that holds runs of another plan is refused
before anything in it is written.
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")

# Two dom0s nobody can reach: the playbook must stop at its own checks, before any task on them.
INVENTORY = """\
[xen_hosts]
a ansible_host=127.0.0.1 ansible_port=9 xenlab_address=127.0.0.2
b ansible_host=127.0.0.1 ansible_port=9 xenlab_address=127.0.0.3
[guests]
voip ansible_host=127.0.0.1 ansible_port=9 xenlab_address=127.0.0.4
[clients]
client ansible_host=127.0.0.1 ansible_port=9
"""


def run_playbook(tmp_path, playbook, extra, inventory=INVENTORY, timeout=300):
    """ansible-playbook on the unreachable inventory, with the collection from this checkout."""
    inv = tmp_path / "hosts"
    inv.write_text(inventory)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"),
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"))
    cmd = [ANSIBLE_PLAYBOOK, "-i", str(inv), os.path.join(ROOT, "playbooks", "experiments", playbook)]
    for e in extra:
        cmd += ["-e", e]
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)


def run_stop_policy(tmp_path, results_dir, *extra):
    return run_playbook(tmp_path, "stop_policy.yml", ["stop_policy_results_dir=%s" % results_dir, json.dumps(
        {"stop_policy_select": ["converging"], "stop_policy_policies": ["xen", "adaptive"]})] + list(extra))


@pytest.mark.skipif(not os.path.exists(ANSIBLE_PLAYBOOK), reason="ansible-playbook is not beside this Python")
def test_stop_policy_alternates_the_order_and_refuses_another_plan(tmp_path):
    rdir = tmp_path / "results"
    (rdir / "runs").mkdir(parents=True)
    (rdir / "params.json").write_text('{"before": true}\n')
    # The names a fixed order gave to 2 policies x 2 rounds; the new plan has the first two.
    for name in ("001-converging-xen-1", "002-converging-adaptive-1", "003-converging-xen-2",
                 "004-converging-adaptive-2"):
        (rdir / "runs" / (name + ".migration.json")).write_text("{}\n")
    out = run_stop_policy(tmp_path, rdir, "repetitions=2")
    text = " ".join((out.stdout + out.stderr).split())
    assert out.returncode != 0, text
    assert "holds runs this plan does not have (003-converging-xen-2, 004-converging-adaptive-2)" in text, text
    # Refused before it wrote anything: the directory's parameters are the ones it started with.
    assert (rdir / "params.json").read_text() == '{"before": true}\n'
    assert "TASK [Record the experiment's parameters" not in out.stdout


@pytest.mark.skipif(not os.path.exists(ANSIBLE_PLAYBOOK), reason="ansible-playbook is not beside this Python")
def test_campaign_plan_alternates_the_order(tmp_path):
    out = run_playbook(tmp_path, "cap_sweep.yml", ["results_root=%s" % tmp_path, "repetitions=3", '{"caps": [35, 100]}'],
                       inventory=INVENTORY + "[voip_servers]\nvoip\n", timeout=600)
    plans = list((tmp_path / "cap_sweep").glob("*/plan.json"))
    assert len(plans) == 1, out.stdout + out.stderr
    names = [r["name"] for r in json.loads(plans[0].read_text())["runs"]]
    assert names == ["001-cap35-1", "002-cap100-1", "003-cap100-2", "004-cap35-2", "005-cap35-3", "006-cap100-3"]
    # No lab here: the runs themselves fail, the campaign says so.
    assert out.returncode != 0
