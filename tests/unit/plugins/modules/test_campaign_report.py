# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""campaign_report (module) and scripts/report: files, check mode, idempotence, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.xenlab.migration.plugins.module_utils import campaign as cp
from ansible_collections.xenlab.migration.plugins.module_utils import results
from ansible_collections.xenlab.migration.plugins.modules import campaign_report

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "module_utils"))
# pylint: disable-next=wrong-import-position
from test_campaign import (REPO, THESIS_FILE, guest_size_runs, make_campaign, probe_record,  # noqa: E402
                           run_entry, thesis_cap_sweep)

HAS_MPL = cp.have_matplotlib()


def run(capsys, check_mode=False, **args):
    """Run the module's main() as Ansible would; return its JSON result (failed or not)."""
    if check_mode:
        args["_ansible_check_mode"] = True
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            campaign_report.main()
    out = json.loads(capsys.readouterr().out)
    assert (exit_info.value.code != 0) == bool(out.get("failed")), out
    return out


@pytest.fixture
def cap_dir(tmp_path):
    return thesis_cap_sweep(tmp_path, cp.load_thesis(THESIS_FILE))


def listing(rdir):
    return sorted(os.path.relpath(os.path.join(d, f), rdir) for d, dummy, files in os.walk(rdir) for f in files)


@pytest.mark.skipif(not HAS_MPL, reason="matplotlib is not installed")
def test_report_plots_check_mode_and_idempotence(capsys, cap_dir):
    before = listing(cap_dir)
    check = run(capsys, check_mode=True, results_dir=cap_dir, thesis_file=THESIS_FILE)
    assert check["changed"] is True and listing(cap_dir) == before  # nothing written in check mode
    assert sorted(os.path.basename(p) for p in check["written"]) == ["report.md", "runs.csv", "summary.csv",
                                                                     "table3.png", "table4.png"]
    out = run(capsys, results_dir=cap_dir, thesis_file=THESIS_FILE)
    assert out["changed"] is True and out["campaign"] == "cap_sweep" and out["runs"] == 16 and out["missing"] == []
    assert out["report"] == os.path.join(cap_dir, "report.md") and os.path.isfile(out["report"])
    assert [os.path.basename(p) for p in out["plots"]] == ["table3.png", "table4.png"]
    for path in out["plots"]:
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert out["facts"]["table4"]["optimal_cap"] == 35 and out["facts"]["table4"]["thesis_optimal_cap"] == 35
    trends = dict((t["metric"], t) for t in out["trends"])
    assert trends["downtime ms"]["reproduced"] is True and trends["response ms"]["section"] == "table3"
    assert [p["label"] for p in out["points"]][:2] == ["cap=20", "cap=25"]
    with open(out["report"], encoding="utf-8") as f:
        report = f.read()
    assert "![Table 3: downtime, dirty rate and response time against the credit cap](plots/table3.png)" in report
    assert "| 20 | 550 | 550 |" in report and "its numbers from %s." % THESIS_FILE in report
    assert cp.check_provenance(cap_dir) == []
    again = run(capsys, results_dir=cap_dir, thesis_file=THESIS_FILE)
    assert again["changed"] is False and again["written"] == []
    assert run(capsys, check_mode=True, results_dir=cap_dir, thesis_file=THESIS_FILE)["changed"] is False


def test_without_plots_or_thesis_and_elsewhere(capsys, tmp_path):
    rdir = make_campaign(tmp_path, "guest_size_sweep", guest_size_runs())
    dest = str(tmp_path / "report")
    out = run(capsys, results_dir=rdir, dest=dest, plots=False, overhead_ms=630.0)
    assert out["changed"] is True and out["plots"] == [] and sorted(os.listdir(dest)) == ["report.md", "runs.csv",
                                                                                          "summary.csv"]
    assert not os.path.exists(os.path.join(rdir, "report.md"))
    errors = out["facts"]["guest_size"]["errors"]["model_migration_time_error_pct"]
    assert errors["n"] == 6 and errors["max_abs"] < 5.0 and errors["within_15"] is True
    with open(os.path.join(dest, "report.md"), encoding="utf-8") as f:
        text = f.read()
    assert "none given: no comparison" in text and "within 15 %: yes" in text
    assert cp.check_provenance(rdir, summary_dir=dest, overhead_ms=630.0) == []


def test_missing_matplotlib_fails_clearly(capsys, cap_dir, monkeypatch):
    monkeypatch.setattr(cp, "have_matplotlib", lambda: False)
    out = run(capsys, results_dir=cap_dir)
    assert out["failed"] and "matplotlib" in out["msg"] and "plots=false" in out["msg"]
    assert not os.path.exists(os.path.join(cap_dir, "report.md"))
    assert not run(capsys, results_dir=cap_dir, plots=False).get("failed")


@pytest.mark.parametrize("setup,args,message", [
    (None, {"results_dir": "/nonexistent/campaign"}, "does not exist or is not a directory"),
    ("empty", {}, "has no runs/ directory"),
    ("garbled", {}, "001-cap35-1.migration.json is not valid JSON"),
    ("wrong_kind", {}, "expected a 'downtime_probe' record"),
    ("bad_number", {}, "results.total_time_ms must be a number"),
    ("ok", {"thesis_file": "/nonexistent/thesis.yml"}, "cannot read the thesis tables"),
    ("bad_yaml", {}, "not valid YAML"),
    ("ok", {"overhead_ms": -5}, "overhead_ms must be >= 0"),
    ("ok", {"flat_tolerance_pct": -1}, "flat_tolerance_pct must be >= 0"),
    ("ok", {"response_metric": "rtt"}, "value of response_metric must be one of"),
])
def test_bad_input_gives_a_clear_failure(capsys, tmp_path, setup, args, message):
    rdir = str(tmp_path)
    if setup and setup != "empty":
        rdir = make_campaign(tmp_path, "cap_sweep", [run_entry("001-cap35-1", {"cap": 35}, probe=probe_record())])
        mig = os.path.join(rdir, "runs", "001-cap35-1.migration.json")
        if setup == "garbled":
            with open(mig, "w", encoding="utf-8") as f:
                f.write('{"schema_version": 1, "kind": "migr')
        elif setup == "wrong_kind":
            results.write_json_atomic(os.path.join(rdir, "runs", "001-cap35-1.probe.json"), results.read_json(mig))
        elif setup == "bad_number":
            rec = results.read_json(mig)
            rec["results"]["total_time_ms"] = "12 s"
            results.write_json_atomic(mig, rec)
        elif setup == "bad_yaml":
            bad = tmp_path / "thesis.yml"
            bad.write_text("thesis_table2: [\n")
            args = dict(args, thesis_file=str(bad))
    args = dict({"results_dir": rdir, "plots": False}, **args)
    out = run(capsys, **args)
    assert out["failed"] and message in out["msg"], out["msg"]
    assert "Traceback" not in out["msg"] and "exception" not in out


def test_documentation_parses():
    import yaml

    for block in (campaign_report.DOCUMENTATION, campaign_report.EXAMPLES, campaign_report.RETURN):
        assert yaml.safe_load(block)
    doc = yaml.safe_load(campaign_report.DOCUMENTATION)
    assert set(doc["options"]) == {"results_dir", "dest", "thesis_file", "plots", "overhead_ms", "downtime_overhead_ms",
                                   "flat_tolerance_pct",
                                   "response_metric"}


def test_script(tmp_path):
    rdir = make_campaign(tmp_path, "guest_size_sweep", guest_size_runs())
    script = os.path.join(REPO, "scripts", "report")
    env = dict(os.environ, XENLAB_REPORT_NO_REEXEC="1")
    proc = subprocess.run([sys.executable, script, rdir, "--no-plots"], capture_output=True, text=True, env=env,
                          check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "guest_size_sweep: 6 run(s), 3 point(s)" in proc.stdout and "report.md (3 file(s) written)" in proc.stdout
    assert os.path.isfile(os.path.join(rdir, "report.md")) and cp.check_provenance(rdir) == []
    check = subprocess.run([sys.executable, script, rdir, "--no-plots", "--check"], capture_output=True, text=True,
                           env=env, check=False, timeout=120)
    assert check.returncode == 0 and "would write: nothing" in check.stdout
    bad = subprocess.run([sys.executable, script, str(tmp_path / "nope"), "--no-plots"], capture_output=True, text=True,
                         env=env, check=False, timeout=120)
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr
