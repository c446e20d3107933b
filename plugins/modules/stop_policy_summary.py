#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: stop_policy_summary
short_description: Summarise a stop-policy experiment's migrations, with offline replay of every run
version_added: 0.2.0
description:
  - Reads the migration records (and the downtime probe records beside them) that
    C(playbooks/experiments/stop_policy.yml) wrote into O(results_dir)C(/runs/), derives each run's figures
    (time after the first pass, stop-and-copy time and its two parts - the guest's suspend wait and the last
    batch -, downtime, pages sent, live passes), replays each run's
    recorded policy calls through the same policy of the analysis core (C(stop_policy.replay)) and checks
    that it stops at the same call.
  - Writes C(summary.csv) (one row per run), C(summary.json) (runs, medians per workload and policy, ratios
    against V(xen) and V(xen34)) and C(table.md) into O(results_dir), each atomically.
  - "Runs on the controller (C(delegate_to: localhost))."
author:
  - xenlab developers (@xenlab)
extends_documentation_fragment:
  - xenlab.migration.attributes
attributes:
  check_mode:
    support: full
    details: In check mode the summary is computed and returned but not written.
  diff_mode:
    support: none
options:
  results_dir:
    description: The experiment's results directory (C(results/stop_policy/<UTC timestamp>)).
    type: path
    required: true
  fail_on_replay_mismatch:
    description: Fail when the offline replay of a run does not stop at the call the patched library stopped at.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Summarise the experiment
  xenlab.migration.stop_policy_summary:
    results_dir: "{{ playbook_dir }}/../../results/stop_policy/20261125T120000Z"
  delegate_to: localhost
  register: summary

- name: Show the table
  ansible.builtin.debug:
    msg: "{{ summary.table.splitlines() }}"
"""

RETURN = r"""
runs:
  description: The figures of every run (see C(plugins/module_utils/policy_experiment.py) for each field).
  returned: success
  type: list
  elements: dict
rows:
  description: Medians per workload and policy with the replay count and the ratios against V(xen) and V(xen34).
  returned: success
  type: list
  elements: dict
table:
  description: The rows as a Markdown table.
  returned: success
  type: str
replay_mismatches:
  description: Runs whose offline replay stopped at another call than the real migration.
  returned: success
  type: list
  elements: str
"""

import glob
import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.xenlab.migration.plugins.module_utils import policy_experiment, results


def main():
    module = AnsibleModule(
        argument_spec=dict(
            results_dir=dict(type="path", required=True),
            fail_on_replay_mismatch=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    rdir = module.params["results_dir"]
    if not os.path.isdir(rdir):
        module.fail_json(msg="results_dir %s is not a directory" % rdir)
    paths = sorted(glob.glob(os.path.join(rdir, "runs", "*.migration.json")))
    if not paths:
        module.fail_json(msg="no migration records (runs/*.migration.json) in %s" % rdir)
    runs = []
    for path in paths:
        name = os.path.basename(path)[:-len(".migration.json")]
        probe_path = path[:-len(".migration.json")] + ".probe.json"
        try:
            migration = results.read_json(path)
            probe = results.read_json(probe_path) if os.path.exists(probe_path) else None
            runs.append(policy_experiment.run_figures(migration, probe, name))
        except (OSError, ValueError) as e:
            module.fail_json(msg="cannot use %s: %s" % (path, e))
    rows = policy_experiment.ratio_table(policy_experiment.aggregate(runs))
    table = policy_experiment.format_table(rows)
    mismatches = [r["run"] for r in runs if not r["replay_match"]]
    summary = {"results_dir": rdir, "runs": runs, "rows": rows, "replay_mismatches": mismatches}
    changed = False
    if not module.check_mode:
        try:
            for fname, text in (("summary.csv", policy_experiment.runs_csv(runs)),
                                ("summary.json", json.dumps(summary, indent=1, sort_keys=True) + "\n"),
                                ("table.md", table)):
                dest = os.path.join(rdir, fname)
                old = None
                if os.path.exists(dest):
                    with open(dest, encoding="utf-8") as f:
                        old = f.read()
                if old != text:
                    results.write_text_atomic(dest, text)
                    changed = True
        except OSError as e:
            module.fail_json(msg="cannot write the summary into %s: %s" % (rdir, e))
    if mismatches and module.params["fail_on_replay_mismatch"]:
        module.fail_json(msg="offline replay disagrees with the real stop in %d run(s): %s"
                         % (len(mismatches), ", ".join(mismatches)), changed=changed, **summary)
    module.exit_json(changed=changed, table=table, **summary)


if __name__ == "__main__":
    main()
