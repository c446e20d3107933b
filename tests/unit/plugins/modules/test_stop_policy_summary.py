# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""stop_policy_summary: files written atomically and idempotently, replay mismatches fail."""

from __future__ import annotations

import json
import os
import sys

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.xenlab.migration.plugins.module_utils import results
from ansible_collections.xenlab.migration.plugins.modules import stop_policy_summary

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "module_utils"))
from test_policy_experiment import record_from_log  # noqa: E402  pylint: disable=wrong-import-position


class _Exit(Exception):
    pass


@pytest.fixture
def run(monkeypatch):
    def exit_json(self, **kwargs):
        raise _Exit(kwargs)

    def fail_json(self, msg, **kwargs):
        raise _Exit(dict(kwargs, msg=msg, failed=True))

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)

    def call(check_mode=False, **args):
        args["_ansible_check_mode"] = check_mode
        with patch_module_args(args):
            try:
                stop_policy_summary.main()
            except _Exit as done:
                return done.args[0]
        raise AssertionError("no exit_json or fail_json")

    return call


def make_dir(tmp_path, tamper=False):
    runs = tmp_path / "runs"
    runs.mkdir()
    for i, (log, pol) in enumerate((("xl-migrate-01-xen-nonconverging.stderr", "xen"),
                                    ("xl-migrate-02-xen34-nonconverging.stderr", "xen34"))):
        rec = record_from_log(log, workload="nc")
        if tamper and pol == "xen34":
            rec["results"]["precopy_run"]["params"]["max_iterations"] = 3
        results.write_json_atomic(str(runs / ("%03d-nc-%s-1.migration.json" % (i + 1, pol))), rec)
    results.write_json_atomic(str(runs / "001-nc-xen-1.probe.json"),
                              results.measurement_record("downtime_probe", {"downtime_ms": 700.0, "longest_gap_ms": 720.0}))
    return tmp_path


def test_summary_written_then_unchanged(run, tmp_path):
    rdir = make_dir(tmp_path)
    check = run(check_mode=True, results_dir=str(rdir))
    assert check["changed"] is False and not (rdir / "summary.csv").exists()
    first = run(results_dir=str(rdir))
    assert first["changed"] is True and first["replay_mismatches"] == []
    assert [r["policy"] for r in first["runs"]] == ["xen", "xen34"] and first["runs"][0]["downtime_ms"] == 700.0
    data = json.loads((rdir / "summary.json").read_text())
    assert data["rows"] == first["rows"] and (rdir / "table.md").read_text() == first["table"]
    assert len((rdir / "summary.csv").read_text().splitlines()) == 3
    again = run(results_dir=str(rdir))
    assert again["changed"] is False


def test_replay_mismatch_fails(run, tmp_path):
    rdir = make_dir(tmp_path, tamper=True)
    out = run(results_dir=str(rdir))
    assert out["failed"] and "002-nc-xen34-1" in out["msg"] and out["replay_mismatches"] == ["002-nc-xen34-1"]
    out = run(results_dir=str(rdir), fail_on_replay_mismatch=False)
    assert not out.get("failed") and out["replay_mismatches"] == ["002-nc-xen34-1"]


def test_errors(run, tmp_path):
    assert "is not a directory" in run(results_dir=str(tmp_path / "nope"))["msg"]
    assert "no migration records" in run(results_dir=str(tmp_path))["msg"]
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "001-x-xen-1.migration.json").write_text("{not json")
    out = run(results_dir=str(tmp_path))
    assert out["failed"] and "cannot use" in out["msg"]


LAB = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures", "stop_policy")


@pytest.mark.parametrize("name, runs", [("20261207T105045Z", 10), ("20261207T111726Z", 12), ("20261207T115616Z", 8)])
def test_real_lab_experiments_replay_exactly(run, tmp_path, name, runs):
    """Every migration the patched libxenguest made on the lab on 2026-12-07 (tests/fixtures/stop_policy/README.md):
    the offline replay stops at the call the library stopped at."""
    import shutil  # pylint: disable=import-outside-toplevel
    rdir = tmp_path / name
    shutil.copytree(os.path.join(LAB, name), str(rdir))
    out = run(results_dir=str(rdir), _ansible_check_mode=True)
    assert not out.get("failed"), out.get("msg")
    assert len(out["runs"]) == runs and out["replay_mismatches"] == []
    for fig in out["runs"]:
        assert fig["replay_iteration"] == fig["stop_iteration"] and fig["replay_passes"] == fig["live_passes"]
        assert fig["suspend_wait_ms"] > 0 and fig["last_batch_ms"] > 0 and fig["pages_after_first"] > 0
        assert fig["pages_after_first"] == fig["pages_sent"] - 65536  # a 256 MiB guest's first pass
    # What each policy did on the lab, whatever the link's speed that day: xen stops at its 5
    # passes, adaptive on a converging set never before them (module doc of stop_policy.py) and on
    # the non-converging one after the early check (the second live pass sent, one more queued).
    for f in out["runs"]:
        key = (f["workload"], f["policy"], f["stop_reason"])
        if f["policy"] == "xen":
            assert (f["stop_reason"], f["live_passes"]) == ("iterations", 5), key
        elif key == ("converging", "adaptive", "no_shrink"):
            assert f["live_passes"] >= 5
        elif f["policy"] == "adaptive":
            assert key == ("non_converging", "adaptive", "no_progress") and f["live_passes"] == 3, (key, f["live_passes"])
