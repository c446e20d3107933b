# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The optimal_cap and precopy_predict filters, with the thesis's tables from playbooks/vars."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.xenlab.migration.plugins.filter.precopy import FilterModule

ROOT = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
TABLES_FILE = os.path.join(ROOT, "playbooks", "vars", "thesis_tables.yml")
FILTERS = FilterModule().filters()
optimal_cap = FILTERS["optimal_cap"]
precopy_predict = FILTERS["precopy_predict"]


@pytest.fixture(scope="module", name="tables")
def tables_fixture():
    with open(TABLES_FILE, encoding="utf-8") as f:
        return yaml.safe_load(f)


def test_tables_file_has_table3(tables):
    rows = tables["thesis_table3"]
    assert [r["cap"] for r in rows] == [20, 25, 30, 35, 40, 50, 60, 100]
    assert rows[3] == {"cap": 35, "downtime_ms": 800, "dirty_rate_mbps": 860.57, "response_ms": 38.55}


def test_optimal_cap_is_35_on_table3(tables):
    assert optimal_cap(tables["thesis_table3"]) == tables["thesis_table4"]["optimal_cap"] == 35


def test_optimal_cap_details_match_table4(tables):
    t4 = tables["thesis_table4"]
    out = optimal_cap(tables["thesis_table3"], downtime_weight=t4["downtime_weight"], details=True)
    assert out["cap"] == 35
    assert [r["cap"] for r in out["rows"]] == t4["caps"]
    for row, r, d, m in zip(out["rows"], t4["response_trend_ms"], t4["weighted_downtime_trend_ms"], t4["max_comparison_ms"]):
        assert row["response_trend_ms"] == pytest.approx(r, abs=0.01)
        assert row["weighted_downtime_trend_ms"] == pytest.approx(d, abs=0.01)
        assert row["score_ms"] == pytest.approx(m, abs=0.01)
    assert out["score_ms"] == pytest.approx(min(t4["max_comparison_ms"]), abs=0.01)


def test_optimal_cap_trend_over_cap_gives_40(tables):
    # Over the cap values the lines cross later: cap 40 scores 40.67 against 40.70 for cap 35
    # (hand computation in test_precopy.py).
    assert optimal_cap(tables["thesis_table3"], trend_over="cap") == 40


def test_optimal_cap_accepts_numeric_strings(tables):
    rows = [{k: str(v) for k, v in r.items()} for r in tables["thesis_table3"]]
    assert optimal_cap(rows, downtime_weight="0.05") == 35


def test_precopy_predict_worked_example(tables):
    params = dict(tables["thesis_worked_example"], dirty_rate_mbps=500)
    out = precopy_predict(params)
    assert round(out["max_dirty_rate_mbps"], 1) == tables["thesis_worked_example_max_dirty_rate_mbps"] == 744.9
    # p = 500: n = 14, T = 16.383 s, last round 0.001 s (hand computation in test_precopy.py).
    assert out["iterations"] == 14
    assert out["migration_time_s"] == pytest.approx(16.383)
    assert out["downtime_s"] == pytest.approx(0.001)


def test_precopy_predict_per_iteration_rates_as_strings():
    # p_1 = 500, then 0: t_1 = 8.192 s, round 2 copies 500 * 8.192 = 4096 Mb in 4.096 s and
    # dirties nothing, so round 3 is empty: n = 3 (p_2 t_2 = 0 <= h), T = 12.288 s.
    out = precopy_predict({"memory_mb": 1024, "bandwidth_mbps": 1000, "dirty_rate_mbps": ["500"] + ["0"] * 28,
                           "threshold_kb": 200, "max_iterations": 30})
    assert (out["iterations"], out["downtime_s"]) == (3, 0)
    assert out["migration_time_s"] == pytest.approx(12.288)


def test_precopy_predict_from_extra_vars_strings():
    out = precopy_predict({"memory_mb": "1024", "bandwidth_mbps": "1000", "dirty_rate_mbps": "800",
                           "threshold_kb": "200", "max_iterations": "30", "overhead_s": "0.5"})
    # p = 800 > 744.9: 30 rounds, 8.192 * 0.8^29 = 0.0126765 s + 0.5 s.
    assert out["iterations"] == 30
    assert out["downtime_s"] == pytest.approx(0.5126765, rel=1e-6)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: precopy_predict([1024]), "precopy_predict: expected a mapping"),
        (lambda: precopy_predict({"memory_mb": 1024}), "precopy_predict: missing key(s): bandwidth_mbps"),
        (lambda: precopy_predict({"memory_mb": "lots", "bandwidth_mbps": 1, "dirty_rate_mbps": 1, "threshold_kb": 1,
                                  "max_iterations": 30}), "memory_mb must be a number, got 'lots'"),
        (lambda: precopy_predict({"memory_mb": 1, "bandwidth_mbps": 0, "dirty_rate_mbps": 1, "threshold_kb": 1,
                                  "max_iterations": 30}), "bandwidth_mbps must be greater than 0"),
        (lambda: optimal_cap(None), "optimal_cap: expected a list of mappings"),
        (lambda: optimal_cap([{"cap": 20}]), "optimal_cap: at least 2 rows"),
        (lambda: optimal_cap([{"cap": 20, "downtime_ms": 1, "response_ms": 1}] * 2, trend_over="cap"), "two different caps"),
        (lambda: optimal_cap([{"cap": 20, "downtime_ms": 1, "response_ms": 1}] * 2, trend_over="row"), "trend_over must be one of"),
        (lambda: optimal_cap([{"cap": 20, "downtime_ms": 1, "response_ms": 1}] * 2, details="yes"), "details must be true or false"),
    ],
)
def test_bad_input_is_an_ansible_filter_error(call, message):
    with pytest.raises(AnsibleFilterError) as err:
        call()
    assert message in str(err.value)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.none(), st.integers(), st.text(max_size=4), st.lists(st.integers(), max_size=3),
                 st.dictionaries(st.sampled_from(["memory_mb", "bandwidth_mbps", "dirty_rate_mbps", "threshold_kb", "max_iterations", "x"]),
                                 st.one_of(st.none(), st.text(max_size=3), st.floats(), st.integers(-5, 0)), max_size=6)))
def test_property_filters_raise_only_filter_errors(value):
    for func in (precopy_predict, optimal_cap):
        with pytest.raises(AnsibleFilterError) as err:
            func(value)
        assert str(err.value)


def run_tool(tool, *args):
    """A tool of the project's .venv, run from the repository root with its ansible.cfg."""
    path = os.path.join(ROOT, ".venv", "bin", tool)
    if not os.path.exists(path):
        pytest.skip("no %s in %s/.venv" % (tool, ROOT))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run([path] + list(args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


def ansible_debug(msg):
    return run_tool("ansible", "localhost", "-m", "debug", "-a", "msg=" + msg, "-e", "@playbooks/vars/thesis_tables.yml")


def test_ansible_cli_prints_35():
    proc = ansible_debug("{{ thesis_table3 | xenlab.migration.optimal_cap }}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"""["']?msg["']?:\s*35\b""", proc.stdout), proc.stdout


def test_ansible_cli_precopy_predict_and_its_errors():
    proc = ansible_debug("{{ (thesis_worked_example | combine({'dirty_rate_mbps': 500}) | xenlab.migration.precopy_predict)"
                         ".max_dirty_rate_mbps | round(1) }}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"""["']?msg["']?:\s*744\.9\b""", proc.stdout), proc.stdout
    # Bad input: the task fails with the filter's message, no Python traceback.
    proc = ansible_debug("{{ thesis_worked_example | xenlab.migration.precopy_predict }}")
    assert proc.returncode != 0
    assert "precopy_predict: missing key(s): dirty_rate_mbps" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "name, options",
    [
        ("optimal_cap", {"_input": None, "downtime_weight": 0.05, "trend_over": "index", "details": False}),
        ("precopy_predict", {"_input": None}),
    ],
)
def test_ansible_doc(name, options):
    proc = run_tool("ansible-doc", "-t", "filter", "--json", "xenlab.migration." + name)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)["xenlab.migration." + name]
    assert doc["doc"]["name"] == name
    assert {k: v.get("default") for k, v in doc["doc"]["options"].items()} == options
    if name == "precopy_predict":
        assert sorted(doc["doc"]["options"]["_input"]["suboptions"]) == [
            "bandwidth_mbps", "dirty_rate_mbps", "downtime_overhead_s", "max_iterations", "memory_mb", "overhead_s",
            "threshold_kb", "wws_mb"]
        # RETURN documents exactly what the filter returns.
        out = precopy_predict({"memory_mb": 1024, "bandwidth_mbps": 1000, "dirty_rate_mbps": 500, "threshold_kb": 200,
                               "max_iterations": 30})
        assert sorted(doc["return"]["_value"]["contains"]) == sorted(out)
    # The plain-text form works too.
    text = run_tool("ansible-doc", "-t", "filter", "xenlab.migration." + name)
    assert text.returncode == 0 and "xenlab.migration." + name in text.stdout


def test_eq7_limit_separates_table3_as_the_thesis_observed(tables):
    # Section 5.3: caps 20-30 stopped early (< 50 pages), caps 35-100 ran all 29 iterations.
    # With the worked example's M, B, h, N the Eq. (7) limit 744.9 Mbps falls between cap 30
    # (642.37 Mbps: converges, n = 21 < 30) and cap 35 (860.57 Mbps: n = N = 30, i.e. 29 live + 1).
    observed = {r["cap"]: r["iterations"] for r in tables["thesis_iterations_by_cap"]}
    for row in tables["thesis_table3"]:
        out = precopy_predict(dict(tables["thesis_worked_example"], dirty_rate_mbps=row["dirty_rate_mbps"]))
        ran_all = out["iterations"] == tables["thesis_worked_example"]["max_iterations"]
        assert ran_all == (observed[row["cap"]] == tables["thesis_xen34_limits"]["max_iterations"]), row
        assert ran_all == (row["dirty_rate_mbps"] > out["max_dirty_rate_mbps"])
    # The model's iteration counts for caps 20, 25, 30 (observed 4, 9, 12): same order, n from Eq. (2).
    predicted = [precopy_predict(dict(tables["thesis_worked_example"], dirty_rate_mbps=r["dirty_rate_mbps"]))["iterations"]
                 for r in tables["thesis_table3"][:3]]
    assert predicted == [10, 12, 21]


def test_thesis_tables_are_consistent(tables):
    t5, t6 = tables["thesis_table5"], tables["thesis_table6"]
    # Table 6's "after the first iteration" = Table 5's migration time - first iteration.
    for key in ("default", "sd_tracking"):
        assert t6["time_after_first_iteration_ms"][key] == t5["migration_time_ms"][key] - t5["first_iteration_ms"][key]
    # (13441 - 12369) / 13441 = 7.98 %; (1867 - 784) / 1867 = 58.01 %.
    mt, af = t5["migration_time_ms"], t6["time_after_first_iteration_ms"]
    assert round(100 * (mt["default"] - mt["sd_tracking"]) / mt["default"], 2) == t5["reduction_percent"]
    assert round(100 * (af["default"] - af["sd_tracking"]) / af["default"], 2) == t6["reduction_percent"]
    # Section 5.3: "86.1 % and 86.2 %" of the migration time. Both are shares of the default's
    # 13441 ms: 11574 / 13441 = 86.1 %, 11585 / 13441 = 86.2 % (of 12369 ms it would be 93.7 %).
    assert round(100 * t5["first_iteration_ms"]["default"] / mt["default"], 1) == 86.1
    assert round(100 * t5["first_iteration_ms"]["sd_tracking"] / mt["default"], 1) == 86.2
    assert round(100 * t5["first_iteration_ms"]["sd_tracking"] / mt["sd_tracking"], 1) == 93.7
    assert [r["cap"] for r in tables["thesis_iterations_by_cap"]] == tables["thesis_table4"]["caps"]
    assert len(tables["thesis_table2"]) == 5 and tables["thesis_table2"][-1]["failed_calls"] == 1000
    assert [r["cap"] for r in tables["thesis_table7_9"]] == [100, 35]
    assert [sum(r["loss_runs"].values()) for r in tables["thesis_table7_9"]] == [1, 82]
    # Section 5.3: cap 35 against the default: downtime (800 - 1050) / 1050 = -23.8 %; the response
    # time change is printed as 252.3 % where 38.55 / 10.93 - 1 = 252.7 %.
    t3 = {r["cap"]: r for r in tables["thesis_table3"]}
    change = tables["thesis_table4"]["cap35_vs_default"]
    assert round(100 * (t3[35]["downtime_ms"] / t3[100]["downtime_ms"] - 1), 1) == change["downtime_change_percent"]
    assert abs(100 * (t3[35]["response_ms"] / t3[100]["response_ms"] - 1) - change["response_change_percent"]) < 0.5
