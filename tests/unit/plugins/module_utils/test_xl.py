# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""xl parsers on real outputs of Xen 4.17's xl (tests/fixtures/xl/), the error classifier, the runner."""

from __future__ import annotations

import os

import pytest

from ansible_collections.xenlab.migration.plugins.module_utils import xl

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures", "xl")


def fixture(name):
    """(rc, stdout, stderr) of one captured command."""
    def read(ext):
        with open(os.path.join(FIXTURES, "%s.%s" % (name, ext)), encoding="utf-8") as handle:
            return handle.read()
    return int(read("rc")), read("stdout"), read("stderr")


def out(name):
    return fixture(name)[1]


# --- xl info ------------------------------------------------------------------------------------

def test_info_real():
    info = xl.parse_info(out("info"))
    assert info["xen_scheduler"] == "credit"
    assert info["xen_version"] == "4.17.5" and info["xen_version_tuple"] == (4, 17)
    assert info["host"] == "source" and info["nr_cpus"] == "1"
    assert "sched=credit" in info["xen_commandline"].split()
    # An empty value stays an empty string, a value with colons is kept whole.
    assert info["xen_changeset"] == ""
    assert info["hw_caps"].count(":") == 7


@pytest.mark.parametrize("text, why", [
    ("", "no xen_scheduler"),
    ("host : source\nxen_major : 4\n", "no xen_scheduler"),
    (None, "expected text"),
])
def test_info_errors(text, why):
    with pytest.raises(xl.XlParseError, match=why):
        xl.parse_info(text)


def test_info_rejects_other_output():
    # The header of `xl list` is not a key : value line.
    with pytest.raises(xl.XlParseError, match="expected 'key : value'"):
        xl.parse_info(out("list"))


# --- xl list ------------------------------------------------------------------------------------

def test_list_real():
    rows = xl.parse_list(out("list"))
    assert rows == [{"name": "Domain-0", "domid": 0, "mem_mib": 768, "vcpus": 1, "state": "r-----", "time_s": 1797.1}]
    one = xl.parse_list(out("list_domain0"))
    assert len(one) == 1 and one[0]["time_s"] == 1797.6


def test_list_missing_domain_prints_nothing():
    rc, stdout, stderr = fixture("list_missing")
    assert rc == 1 and stdout == ""
    assert xl.classify_error(stderr, stdout) == ("domain_not_found", {})
    with pytest.raises(xl.XlParseError, match="header"):
        xl.parse_list(stdout)


def test_list_errors():
    with pytest.raises(xl.XlParseError, match="header"):
        xl.parse_list(out("sched_credit_domain0"))
    header = out("list").splitlines()[0]
    with pytest.raises(xl.XlParseError, match="6 columns"):
        xl.parse_list(header + "\nDomain-0 0 768\n")
    with pytest.raises(xl.XlParseError, match="not an integer"):
        xl.parse_list(header + "\nDomain-0 zero 768 1 r----- 12.0\n")


def test_find_domain_by_name_or_id():
    rows = xl.parse_list(out("list"))
    assert xl.find_domain(rows, "Domain-0")["domid"] == 0
    assert xl.find_domain(rows, "0")["name"] == "Domain-0"
    assert xl.find_domain(rows, 0)["name"] == "Domain-0"
    assert xl.find_domain(rows, "1") is None and xl.find_domain(rows, "voip") is None


# --- xl vcpu-list -------------------------------------------------------------------------------

def test_vcpu_list_real():
    rows = xl.parse_vcpu_list(out("vcpu_list_domain0"))
    assert rows == [{"name": "Domain-0", "domid": 0, "vcpu": 0, "cpu": 0, "state": "r--", "time_s": 1798.4,
                     "affinity": "all / all"}]


def test_vcpu_list_missing_domain_prints_header_only():
    rc, stdout, stderr = fixture("vcpu_list_missing")
    assert rc == 1 and xl.parse_vcpu_list(stdout) == []
    assert xl.classify_error(stderr)[0] == "domain_not_found"


def test_vcpu_list_offline_vcpu_and_errors():
    header = out("vcpu_list_domain0").splitlines()[0]
    # An offline vCPU runs on no CPU: xl prints '-'.
    rows = xl.parse_vcpu_list(header + "\nvoip 3 1 - --p 0.0 all / all\n")
    assert rows[0]["cpu"] is None and rows[0]["vcpu"] == 1
    with pytest.raises(xl.XlParseError, match="cannot read line"):
        xl.parse_vcpu_list(header + "\nvoip three\n")
    with pytest.raises(xl.XlParseError, match="header"):
        xl.parse_vcpu_list(out("list"))


# --- xl sched-credit / sched-credit2 ------------------------------------------------------------

def test_sched_credit_all_pools_real():
    parsed = xl.parse_sched(out("sched_credit"))
    assert parsed["pools"] == [{"name": "Pool-0", "params": {"tslice_ms": 30, "ratelimit_us": 1000, "migration_delay_us": 0}}]
    assert parsed["domains"] == [{"name": "Domain-0", "domid": 0, "weight": 256, "cap": 0, "pool": "Pool-0"}]


def test_sched_credit_pool_params_only_real():
    parsed = xl.parse_sched(out("sched_credit_params"))
    assert parsed["domains"] == [] and parsed["pools"][0]["params"]["tslice_ms"] == 30


@pytest.mark.parametrize("name, weight, cap", [
    ("sched_credit_domain0", 256, 0),
    ("sched_credit_domid0", 256, 0),
    ("sched_credit_domain0_cap50", 256, 50),
    ("sched_credit_domain0_w512_cap25", 512, 25),
    ("sched_credit_domain0_restored", 256, 0),
])
def test_sched_credit_domain_real(name, weight, cap):
    row = xl.sched_of_domain(out(name), "Domain-0")
    assert (row["weight"], row["cap"], row["domid"], row["pool"]) == (weight, cap, 0, None)
    assert xl.sched_of_domain(out(name), "0")["name"] == "Domain-0"


def test_sched_credit2_on_credit_host_real():
    # No pool runs credit2: xl prints nothing and succeeds.
    rc, stdout, stderr = fixture("sched_credit2")
    assert (rc, stdout, stderr) == (0, "", "")
    assert xl.parse_sched(stdout) == {"pools": [], "domains": []}
    # Asking for a domain prints the header, then fails on the scheduler.
    rc, stdout, stderr = fixture("sched_credit2_domain0")
    assert rc == 1 and xl.parse_sched(stdout)["domains"] == []
    assert xl.classify_error(stderr) == ("scheduler_mismatch", {"actual": "credit", "wanted": "credit2"})
    with pytest.raises(xl.XlParseError, match="'Domain-0' is not in the output"):
        xl.sched_of_domain(stdout, "Domain-0")


def test_sched_unavailable_params_and_errors():
    assert xl.parse_sched("Cpupool Pool-1: [sched params unavailable]\n")["pools"] == [{"name": "Pool-1", "params": None}]
    with pytest.raises(xl.XlParseError, match="cannot read pool parameter"):
        xl.parse_sched("Cpupool Pool-0: tslice=fast\n")
    with pytest.raises(xl.XlParseError, match="header before"):
        xl.parse_sched(out("sched_credit_domain0").splitlines()[1])
    with pytest.raises(xl.XlParseError, match="columns"):
        xl.parse_sched(out("sched_credit_domain0") + "voip 3 heavy 0\n")


# --- errors -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, kind, detail", [
    ("list_missing", "domain_not_found", {}),
    ("sched_credit_missing", "domain_not_found", {}),
    ("vcpu_list_missing", "domain_not_found", {}),
    ("sched_credit2_domain0", "scheduler_mismatch", {"actual": "credit", "wanted": "credit2"}),
    ("sched_credit2_set_domain0", "scheduler_mismatch", {"wanted": "credit2"}),
    ("set_cap_out_of_range", "cap_range", {"max": 100}),
    ("set_weight_zero", "weight_range", {}),
    ("set_weight_too_big", "weight_range", {}),
    ("list_unprivileged", "permission", {}),
    ("sched_credit_unprivileged", "permission", {}),
])
def test_classify_real_errors(name, kind, detail):
    rc, stdout, stderr = fixture(name)
    assert rc == 1
    assert xl.classify_error(stderr, stdout) == (kind, detail)


def test_classify_successes_and_unknown():
    for name in ("set_cap50", "set_weight512_cap25", "set_restore"):
        rc, stdout, stderr = fixture(name)
        assert (rc, stdout, stderr) == (0, "", "")
    assert xl.classify_error("xl: command not implemented\n") == ("failed", {})
    # xm's wording (xm/main.py of Xen 3.4), not captured: no xend here.
    assert xl.classify_error("Error: Domain 'voip' does not exist.\n")[0] == "domain_not_found"


# --- runner -------------------------------------------------------------------------------------

class Replay(object):
    """run_command stand-in answering each argv with the captured output of that command."""

    def __init__(self, table):
        self.table = table
        self.calls = []

    def __call__(self, argv, environ_update=None):
        self.calls.append((list(argv), environ_update))
        return fixture(self.table[tuple(argv[1:])])


TABLE = {
    ("info",): "info",
    ("list", "Domain-0"): "list_domain0",
    ("list", "xenlab-nosuch"): "list_missing",
    ("vcpu-list", "Domain-0"): "vcpu_list_domain0",
    ("sched-credit", "-d", "Domain-0"): "sched_credit_domain0",
    ("sched-credit2", "-d", "Domain-0"): "sched_credit2_domain0",
    ("sched-credit", "-d", "Domain-0", "-c", "150"): "set_cap_out_of_range",
    ("sched-credit", "-d", "Domain-0", "-w", "512", "-c", "25"): "set_weight512_cap25",
}


def test_runner_reads_with_lc_all_c():
    replay = Replay(TABLE)
    runner = xl.XlRunner(replay, binary="/usr/sbin/xl")
    assert runner.info()["xen_scheduler"] == "credit"
    assert runner.list_domain("Domain-0")["vcpus"] == 1
    assert runner.vcpu_count("Domain-0") == 1
    assert runner.sched_get("credit", "Domain-0") == {"name": "Domain-0", "domid": 0, "weight": 256, "cap": 0, "pool": None}
    assert [c[0] for c in replay.calls] == [
        ["/usr/sbin/xl", "info"], ["/usr/sbin/xl", "list", "Domain-0"], ["/usr/sbin/xl", "vcpu-list", "Domain-0"],
        ["/usr/sbin/xl", "sched-credit", "-d", "Domain-0"]]
    assert all(env == {"LC_ALL": "C"} for dummy, env in replay.calls)


def test_runner_set_and_check_mode():
    replay = Replay(TABLE)
    argv = xl.XlRunner(replay).sched_set("credit", "Domain-0", weight=512, cap=25)
    assert argv == ["xl", "sched-credit", "-d", "Domain-0", "-w", "512", "-c", "25"]
    assert replay.calls[0][0] == argv
    dry = Replay(TABLE)
    checked = xl.XlRunner(dry, check_mode=True)
    assert checked.sched_set("credit2", "voip", cap=35) == ["xl", "sched-credit2", "-d", "voip", "-c", "35"]
    assert dry.calls == [] and checked.calls == []
    # Reads still run in check mode.
    assert checked.sched_get("credit", "Domain-0")["weight"] == 256 and len(dry.calls) == 1


def test_runner_errors():
    runner = xl.XlRunner(Replay(TABLE))
    with pytest.raises(xl.XlCommandError) as info:
        runner.list_domain("xenlab-nosuch")
    exc = info.value
    assert exc.kind == "domain_not_found" and exc.rc == 1 and exc.cmd == ["xl", "list", "xenlab-nosuch"]
    assert "xenlab-nosuch is an invalid domain identifier" in str(exc)
    with pytest.raises(xl.XlCommandError) as info:
        runner.sched_set("credit", "Domain-0", cap=150)
    assert info.value.kind == "cap_range" and info.value.detail == {"max": 100}
    with pytest.raises(xl.XlCommandError) as info:
        runner.sched_get("credit2", "Domain-0")
    assert info.value.kind == "scheduler_mismatch" and info.value.detail["actual"] == "credit"
    with pytest.raises(ValueError, match="weight or a cap"):
        runner.sched_set("credit", "Domain-0")
    with pytest.raises(ValueError, match="scheduler must be one of"):
        runner.sched_get("rtds", "Domain-0")
    with pytest.raises(ValueError, match="no formatter"):
        runner.argv("sched-credit", pool="Pool-0")
    with pytest.raises(TypeError):
        xl.XlRunner("xl")


def test_cap_supported():
    assert xl.cap_supported("credit", (3, 4), "xm") == (True, "")
    assert xl.cap_supported("credit2", (4, 17)) == (True, "")
    ok, why = xl.cap_supported("credit2", (4, 9))
    assert not ok and "Xen 4.10 or later, this is Xen 4.9" in why
    assert xl.cap_supported("credit2", (4, 17), "xm")[0] is False
    assert xl.cap_supported("rtds", (4, 17)) == (False, "the rtds scheduler has no weight or cap")
