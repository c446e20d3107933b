#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: campaign_report
short_description: Summarise an experiment campaign and compare it with the thesis's tables in a report with plots
version_added: 0.2.0
description:
  - Reads a campaign results directory C(results/<campaign>/<UTC timestamp>/) (C(params.json), C(plan.json) and
    the per-run records C(runs/<run>.migration.json), C(.probe.json), C(.sipp.json), C(.smtp.json), C(.voip.json)
    written by M(xenlab.migration.xen_migrate), M(xenlab.migration.downtime_probe), M(xenlab.migration.sipp_load),
    M(xenlab.migration.smtp_load) and M(xenlab.migration.voip_quality)); see docs/campaigns.md.
  - Derives every run's figures (migration time, downtime, dirty rate, bandwidth, passes, failed calls, response
    times, MOS, ...) and the pre-copy model's prediction from the run's measured bandwidth and dirty rate
    (Eqs. 1-3, 9 and 12 of Nkubito (2012), section 3.1) with its error in percent.
  - Aggregates the runs per sweep point (n, median, mean, min, max, and the runs behind every number) into
    C(summary.csv), writes each run's figures and the record files they came from to C(runs.csv), and writes
    C(report.md) with PNG plots in C(plots/) - the campaign's figures next to the thesis's table (Table 2 for
    C(call_length_sweep), Tables 3-4 with the O(thesis_file)'s C(optimal_cap) choice for C(cap_sweep), Tables 5-6
    for C(sd_tracking), Tables 7-9 for C(voip_quality_caps), the model for C(guest_size_sweep)) with the trend
    directions compared in words.
  - Every file is written atomically and only when its content changes. Before anything is written the
    summary is traced back to the run files (C(campaign.check_provenance)); a mismatch fails the task.
  - "Runs on the controller (C(delegate_to: localhost))."
author:
  - xenlab developers (@xenlab)
extends_documentation_fragment:
  - xenlab.migration.attributes
attributes:
  check_mode:
    support: full
    details: In check mode the report and plots are computed and RV(written) lists the files that would change; nothing is written.
  diff_mode:
    support: none
options:
  results_dir:
    description: The campaign's results directory, C(results/<campaign>/<UTC timestamp>).
    type: path
    required: true
  dest:
    description: Directory for C(report.md), C(summary.csv), C(runs.csv) and C(plots/), created if needed; O(results_dir) when unset.
    type: path
  thesis_file:
    description:
      - The thesis's numbers, C(playbooks/vars/thesis_tables.yml) of this collection (needs PyYAML).
      - Without it the report has the campaign's figures and trends but no thesis columns.
    type: path
  plots:
    description: Draw the PNG plots (needs matplotlib on the controller); V(false) writes the report without them.
    type: bool
    default: true
  overhead_ms:
    description:
      - The model's fixed overheads beta in ms (Eq. 10's phases besides the memory copy), added to the predicted migration time
        and, unless O(downtime_overhead_ms) is set, to the predicted downtime.
      - When neither this nor O(downtime_overhead_ms) is set, both betas are measured by the calibration migration(s) the
        campaign made before its sweep (C(calibration/<name>.migration.json) in the results directory, see docs/campaigns.md),
        or 0 without one. Setting either turns the calibration off; this one is then 0 unless set.
    type: float
  downtime_overhead_ms:
    description:
      - The beta in ms added to the predicted downtime (Eq. 11's commitment and activation); defaults to O(overhead_ms) when
        that is set, and to the calibration's downtime minus its stop-and-copy when both are unset.
    type: float
  flat_tolerance_pct:
    description:
      - A trend line whose rise over the sweep is below this percentage of the mean value counts as flat, a
        change between two conditions below it as the same, when the directions are compared with the thesis's.
    type: float
    default: 5
  response_metric:
    description:
      - The response time of Table 3 and of the Table 4 cap choice.
      - V(auto) takes the first with data of V(ping_rtt_ms) (the probe's mean ping round trip, what the thesis
        measured), V(sip_response_ms) (SIPp) and V(mail_response_ms) (SMTP).
    type: str
    choices: [auto, ping_rtt_ms, sip_response_ms, mail_response_ms]
    default: auto
requirements:
  - matplotlib (Python library) on the controller, unless O(plots=false)
  - PyYAML on the controller for O(thesis_file) (Ansible's own dependency)
notes:
  - The run records must be those the collection's modules write (schema_version 1); anything else fails with a
    message naming the file and field.
seealso:
  - name: docs/campaigns.md
    description: The results layout, the columns of summary.csv and runs.csv, and how the report compares.
    link: https://example.invalid/xenlab/migration/docs/campaigns.md
"""

EXAMPLES = r"""
- name: Report on the campaign
  xenlab.migration.campaign_report:
    results_dir: "{{ playbook_dir }}/../../results/cap_sweep/20261201T120000Z"
    thesis_file: "{{ playbook_dir }}/../vars/thesis_tables.yml"
  delegate_to: localhost
  register: report

- name: Show where it is and what was reproduced
  ansible.builtin.debug:
    msg: "{{ [report.report] + report.trends | map(attribute='text') | list }}"

- name: A report without plots (no matplotlib), beta of 1.5 s for the model
  xenlab.migration.campaign_report:
    results_dir: results/guest_size_sweep/20261201T130000Z
    plots: false
    overhead_ms: 1500
  delegate_to: localhost
"""

RETURN = r"""
campaign:
  description: The campaign's name (its playbook), from C(plan.json), C(params.json) or the directory.
  returned: success
  type: str
  sample: cap_sweep
report:
  description: Path of C(report.md).
  returned: success
  type: str
summary_csv:
  description: Path of C(summary.csv) (one row per sweep point and figure).
  returned: success
  type: str
runs_csv:
  description: Path of C(runs.csv) (one row per run).
  returned: success
  type: str
plots:
  description: Paths of the PNG plots.
  returned: success
  type: list
  elements: str
written:
  description: The files written because their content changed (in check mode, that would be written).
  returned: success
  type: list
  elements: str
runs:
  description: Number of runs with a migration record.
  returned: success
  type: int
missing:
  description: Planned runs without a migration record (an interrupted campaign).
  returned: success
  type: list
  elements: str
points:
  description: The sweep points, each with C(label) (for example V(cap=35)) and C(runs).
  returned: success
  type: list
  elements: dict
trends:
  description:
    - Each comparison of a trend direction with the thesis's (or the model's), with C(section), C(metric),
      C(reproduced) (null when one side has no trend) and C(text), the sentence in the report.
  returned: success
  type: list
  elements: dict
facts:
  description:
    - Figures per report section, for example C(table4.optimal_cap) and C(thesis_optimal_cap),
      C(table5_6.migration_time_reduction_pct), C(guest_size.errors) (the model's error per measured quantity,
      C(median_abs), C(max_abs), C(worst_run), C(within_15)).
  returned: success
  type: dict
warnings_found:
  description: What the loader noticed (records without a migration record, undeclared sweep variables).
  returned: success
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.xenlab.migration.plugins.module_utils import campaign


def main():
    module = AnsibleModule(
        argument_spec=dict(
            results_dir=dict(type="path", required=True),
            dest=dict(type="path"),
            thesis_file=dict(type="path"),
            plots=dict(type="bool", default=True),
            overhead_ms=dict(type="float"),
            downtime_overhead_ms=dict(type="float"),
            flat_tolerance_pct=dict(type="float", default=campaign.DEFAULT_FLAT_TOLERANCE_PCT),
            response_metric=dict(type="str", default="auto", choices=["auto"] + list(campaign.RESPONSE_METRICS)),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p["plots"] and not campaign.have_matplotlib():
        module.fail_json(msg=missing_required_lib("matplotlib", reason="to draw the report's plots (or set plots=false)"))
    for key in ("overhead_ms", "downtime_overhead_ms"):
        if p[key] is not None and p[key] < 0:
            module.fail_json(msg="%s must be >= 0, got %s" % (key, p[key]))
    if p["flat_tolerance_pct"] < 0:
        module.fail_json(msg="flat_tolerance_pct must be >= 0, got %s" % p["flat_tolerance_pct"])
    try:
        thesis = campaign.load_thesis(p["thesis_file"]) if p["thesis_file"] else None
        data = campaign.build_report(p["results_dir"], thesis=thesis, thesis_source=p["thesis_file"],
                                     overhead_ms=p["overhead_ms"], downtime_overhead_ms=p["downtime_overhead_ms"],
                                     plots=p["plots"],
                                     tolerance_pct=p["flat_tolerance_pct"],
                                     response_metric=None if p["response_metric"] == "auto" else p["response_metric"])
        problems = campaign.check_provenance(p["results_dir"], overhead_ms=p["overhead_ms"],
                                             downtime_overhead_ms=p["downtime_overhead_ms"],
                                             summary_text=data["summary_csv"], runs_text=data["runs_csv"])
        if problems:
            module.fail_json(msg="the summary does not trace back to the run files: %s" % "; ".join(problems[:5]),
                             problems=problems)
        written = campaign.write_report(data, p["dest"], check_mode=module.check_mode)
    except ValueError as exc:  # CampaignError, ResultFileError and the analysis core's checks
        module.fail_json(msg="campaign_report: %s" % exc, results_dir=p["results_dir"])
    except OSError as exc:
        module.fail_json(msg="campaign_report: %s" % exc, results_dir=p["results_dir"])
    dest = os.path.abspath(p["dest"] or data["dir"])
    trends = [dict(section=sec["id"], metric=t["metric"], reproduced=t["reproduced"], text=t["text"])
              for sec in data["sections"] for t in sec["trends"]]
    module.exit_json(
        changed=bool(written), campaign=data["campaign"], results_dir=data["dir"],
        report=os.path.join(dest, campaign.REPORT_FILE), summary_csv=os.path.join(dest, campaign.SUMMARY_FILE),
        runs_csv=os.path.join(dest, campaign.RUNS_FILE),
        plots=[os.path.join(dest, campaign.PLOTS_DIR, name) for name in sorted(data["plots"])],
        written=written, runs=len(data["figures"]), missing=data["missing"],
        points=[dict(label=pt["label"], runs=pt["runs"]) for pt in data["points"]],
        trends=trends, facts=dict((sec["id"], sec["facts"]) for sec in data["sections"] if sec["facts"]),
        warnings_found=data["warnings"])


if __name__ == "__main__":
    main()
