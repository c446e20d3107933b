# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""xen_sched_credit against a dom0 replayed from real xl outputs (tests/fixtures/xl/).

The replayed dom0 keeps Domain-0's weight and cap and answers each command with what the real
xl printed for it in that state; only error paths use made-up outputs.
"""

from __future__ import annotations

import os

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.xenlab.migration.plugins.module_utils import results
from ansible_collections.xenlab.migration.plugins.modules import xen_sched_credit

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures", "xl")
XL = "/usr/sbin/xl"


def fixture(name):
    def read(ext):
        with open(os.path.join(FIXTURES, "%s.%s" % (name, ext)), encoding="utf-8") as handle:
            return handle.read()
    return int(read("rc")), read("stdout"), read("stderr")


# Domain-0's (weight, cap) -> the captured `xl sched-credit -d Domain-0` in that state.
READS = {(256, 0): "sched_credit_domain0", (256, 50): "sched_credit_domain0_cap50", (512, 25): "sched_credit_domain0_w512_cap25"}
# Setting commands that were captured, with their outcome.
SETS = {
    ("-c", "50"): "set_cap50", ("-w", "512", "-c", "25"): "set_weight512_cap25", ("-w", "256", "-c", "0"): "set_restore",
    ("-c", "0"): "set_restore", ("-c", "150"): "set_cap_out_of_range", ("-w", "0"): "set_weight_zero",
}


class Dom0(object):
    """A dom0 whose xl answers with the real outputs captured on the lab's source host."""

    def __init__(self, weight=256, cap=0, overrides=None, apply_sets=True):
        self.weight, self.cap = weight, cap
        self.overrides = overrides or {}
        self.apply_sets = apply_sets
        self.calls = []

    def set_cmds(self):
        return [argv for argv in self.calls if len(argv) > 4 and argv[1].startswith("sched-credit")]

    def __call__(self, args, environ_update=None, **kwargs):
        argv = list(args)
        assert environ_update == {"LC_ALL": "C"}
        self.calls.append(argv)
        key = tuple(argv[1:])
        if key in self.overrides:
            return self.overrides[key]
        cmd, rest = argv[1], argv[2:]
        if cmd == "info":
            return fixture("info")
        if cmd in ("list", "vcpu-list"):
            if rest in (["Domain-0"], ["0"]):
                return fixture("list_domain0" if cmd == "list" else "vcpu_list_domain0")
            return fixture("list_missing" if cmd == "list" else "vcpu_list_missing")
        if cmd == "sched-credit2":
            return fixture("sched_credit2_set_domain0" if len(rest) > 2 else "sched_credit2_domain0")
        if cmd == "sched-credit" and rest[:2] == ["-d", "Domain-0"]:
            if len(rest) == 2:
                return fixture(READS[(self.weight, self.cap)])
            outcome = fixture(SETS[tuple(rest[2:])])
            if outcome[0] == 0 and self.apply_sets:
                opts = dict(zip(rest[2::2], rest[3::2]))
                self.weight = int(opts.get("-w", self.weight))
                self.cap = int(opts.get("-c", self.cap))
            return outcome
        if cmd == "sched-credit":
            return fixture("sched_credit_missing")
        raise AssertionError("unexpected command %s" % argv)


class _Exit(Exception):
    pass


@pytest.fixture
def run(monkeypatch):
    def exit_json(self, **kwargs):
        raise _Exit(dict(kwargs, failed=False))

    def fail_json(self, msg, **kwargs):
        raise _Exit(dict(kwargs, msg=msg, failed=True))

    def call(dom0, check_mode=False, diff=False, bins=(XL,), **args):
        monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
        monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
        monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda self, args, **kw: dom0(args, **kw))
        monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                            lambda self, name, *a, **kw: next((b for b in bins if os.path.basename(b) == name), None))
        args["_ansible_check_mode"] = check_mode
        args["_ansible_diff"] = diff
        with patch_module_args(args):
            try:
                xen_sched_credit.main()
            except _Exit as done:
                return done.args[0]
        raise AssertionError("no exit_json or fail_json")

    return call


READ_CALLS = [[XL, "info"], [XL, "list", "Domain-0"], [XL, "vcpu-list", "Domain-0"], [XL, "sched-credit", "-d", "Domain-0"]]


def test_read_only(run):
    dom0 = Dom0()
    res = run(dom0, domain="Domain-0")
    assert not res["failed"] and res["changed"] is False
    assert (res["domain"], res["domid"], res["scheduler"], res["vcpus"]) == ("Domain-0", 0, "credit", 1)
    assert (res["weight"], res["cap"]) == (256, 0) and res["before"] == res["after"] == {"weight": 256, "cap": 0}
    assert dom0.calls == READ_CALLS and "cmd" not in res


def test_set_cap_then_idempotent(run):
    dom0 = Dom0()
    res = run(dom0, domain="Domain-0", cap=50)
    assert not res["failed"] and res["changed"] is True
    assert res["cmd"] == [XL, "sched-credit", "-d", "Domain-0", "-c", "50"]
    assert res["before"] == {"weight": 256, "cap": 0} and res["after"] == {"weight": 256, "cap": 50}
    # The value is read back after setting it.
    assert dom0.calls[-1] == [XL, "sched-credit", "-d", "Domain-0"] and dom0.cap == 50

    again = run(dom0, domain="Domain-0", cap=50, weight=256)
    assert again["changed"] is False and again["cap"] == 50 and "cmd" not in again
    assert len(dom0.set_cmds()) == 1


def test_weight_and_cap_in_one_command(run):
    dom0 = Dom0()
    res = run(dom0, domain="Domain-0", weight=512, cap=25)
    assert res["changed"] and res["cmd"][-4:] == ["-w", "512", "-c", "25"]
    assert (dom0.weight, dom0.cap, res["weight"], res["cap"]) == (512, 25, 512, 25)
    back = run(dom0, domain="Domain-0", weight=256, cap=0)
    assert back["changed"] and back["cmd"][-4:] == ["-w", "256", "-c", "0"] and (dom0.weight, dom0.cap) == (256, 0)


def test_only_what_differs_is_set(run):
    dom0 = Dom0()
    res = run(dom0, domain="Domain-0", weight=256, cap=50)
    assert res["changed"] and res["cmd"] == [XL, "sched-credit", "-d", "Domain-0", "-c", "50"]
    assert (dom0.weight, dom0.cap) == (256, 50)


def test_check_mode_and_diff(run):
    dom0 = Dom0()
    res = run(dom0, check_mode=True, diff=True, domain="Domain-0", cap=50)
    assert not res["failed"] and res["changed"] is True and res["cap"] == 50
    assert res["cmd"] == [XL, "sched-credit", "-d", "Domain-0", "-c", "50"]
    assert dom0.set_cmds() == [] and dom0.cap == 0 and dom0.calls == READ_CALLS
    assert res["diff"]["before"] == "weight: 256\ncap: 0\n" and res["diff"]["after"] == "weight: 256\ncap: 50\n"
    assert res["diff"]["before_header"] == "credit Domain-0"
    # No diff unless asked for; an unchanged run diffs equal.
    assert "diff" not in run(dom0, domain="Domain-0")
    same = run(dom0, diff=True, domain="Domain-0", cap=0)
    assert same["changed"] is False and same["diff"]["before"] == same["diff"]["after"]


def test_domain_by_id(run):
    res = run(Dom0(cap=50), domain="0")
    assert (res["domain"], res["domid"], res["cap"]) == ("Domain-0", 0, 50)


def test_result_file(run, tmp_path):
    dest = tmp_path / "facts.d" / "xenlab_sched.fact"
    checked = run(Dom0(), check_mode=True, domain="Domain-0", cap=50, result_file=str(dest))
    assert checked["changed"] and "result_file" not in checked and not dest.exists()

    res = run(Dom0(), domain="Domain-0", cap=50, result_file=str(dest))
    assert res["result_file"] == str(dest)
    record = results.read_fact(str(dest), kind="xen_sched_credit")
    assert record["results"] == {"weight": 256, "cap_pct": 50, "weight_before": 256, "cap_before_pct": 0,
                                 "vcpus": 1, "changed": True}
    assert record["params"] == {"domain": "Domain-0", "domid": 0, "scheduler": "credit", "toolstack": "xl",
                                "weight": None, "cap_pct": 50}

    blocker = tmp_path / "file"
    blocker.write_text("x")
    bad = run(Dom0(), domain="Domain-0", cap=50, result_file=str(blocker / "r.json"))
    assert bad["failed"] and "could not be written" in bad["msg"] and "the new setting is in place" in bad["msg"]


def test_xm_toolstack_command_lines(run):
    # xm of Xen 3.2+ prints list, vcpu-list and sched-credit like xl (xm/main.py); the replay reuses xl's outputs.
    dom0 = Dom0()
    res = run(dom0, bins=("/usr/sbin/xm",), toolstack="xm", domain="Domain-0", cap=50)
    assert res["changed"] and res["cmd"] == ["/usr/sbin/xm", "sched-credit", "-d", "Domain-0", "-c", "50"]
    assert all(argv[0] == "/usr/sbin/xm" for argv in dom0.calls)


# --- errors -------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, text", [
    (dict(weight=0), "weight must be between 1 and 65535, not 0"),
    (dict(weight=65536), "weight must be between 1 and 65535, not 65536"),
    (dict(cap=-1), "cap must be 0 (no cap) or a positive percentage"),
    (dict(domain="-d"), "domain must be a domain name or ID"),
    (dict(domain="  "), "domain must be a domain name or ID"),
    (dict(toolstack="xm", scheduler="credit2", cap=10), "xm toolstack has no sched-credit2"),
])
def test_bad_input_fails_before_xl(run, args, text):
    dom0 = Dom0()
    res = run(dom0, **dict(dict(domain="Domain-0"), **args))
    assert res["failed"] and text in res["msg"]
    assert dom0.calls == []


def test_xl_missing(run):
    res = run(Dom0(), bins=(), domain="Domain-0", cap=50)
    assert res["failed"] and "xl is not installed on this host" in res["msg"] and "dom0" in res["msg"]


def test_domain_not_found(run):
    res = run(Dom0(), domain="xenlab-nosuch", cap=50)
    assert res["failed"] and res["error_kind"] == "domain_not_found"
    assert res["msg"] == "domain xenlab-nosuch not found on this host: it is not running here (see 'xl list')"
    assert res["rc"] == 1 and "invalid domain identifier" in res["stderr"]


def test_cap_out_of_range_for_vcpus(run):
    dom0 = Dom0()
    res = run(dom0, domain="Domain-0", cap=150)
    assert res["failed"] and res["vcpus"] == 1
    assert "cap 150 is out of range for domain Domain-0 with 1 vCPU: Xen accepts 0 to 100" in res["msg"]
    assert dom0.set_cmds() == []


def test_cap_range_error_from_xen(run):
    # If xl refuses anyway (say the vCPU count changed in between), its error is translated.
    dom0 = Dom0(overrides={("vcpu-list", "Domain-0"): fixture("vcpu_list_domain0")[:1] + (
        fixture("vcpu_list_domain0")[1] + "Domain-0 0 1 - --p 0.0 all / all\n", "")})
    res = run(dom0, domain="Domain-0", cap=150)
    assert res["failed"] and res["error_kind"] == "cap_range"
    assert res["msg"] == "cap out of range for domain Domain-0: Xen accepts 0 to 100"


def test_credit2_requested_on_credit_host(run):
    res = run(Dom0(), domain="Domain-0", scheduler="credit2", cap=50)
    assert res["failed"] and res["error_kind"] == "scheduler_mismatch"
    assert res["msg"] == ("domain Domain-0 is not scheduled by credit2 but by credit: boot Xen with sched=credit2 on its "
                          "command line (role xen_dom0: xen_dom0_scheduler: credit2), or leave scheduler=auto to use "
                          "the one Xen runs")


def test_unprivileged(run):
    dom0 = Dom0(overrides={("info",): fixture("list_unprivileged")})
    res = run(dom0, domain="Domain-0")
    assert res["failed"] and res["error_kind"] == "permission" and "run the module as root" in res["msg"]


def _info_with(**fields):
    rc, text, err = fixture("info")
    lines = []
    for line in text.splitlines():
        key = line.split(":")[0].strip()
        lines.append("%-23s: %s" % (key, fields[key]) if key in fields else line)
    return rc, "\n".join(lines) + "\n", err


def test_scheduler_without_cap(run):
    # Made up: the lab boots Xen with sched=credit; this is the info line of sched=rtds.
    dom0 = Dom0(overrides={("info",): _info_with(xen_scheduler="rtds")})
    res = run(dom0, domain="Domain-0", cap=50)
    assert res["failed"] and res["scheduler"] == "rtds"
    assert "runs the rtds scheduler" in res["msg"] and "boot Xen with sched=credit" in res["msg"]
    assert dom0.calls == [[XL, "info"]]


def test_credit2_cap_needs_xen_410(run):
    dom0 = Dom0(overrides={("info",): _info_with(xen_scheduler="credit2", xen_minor="9")})
    res = run(dom0, domain="Domain-0", cap=50)
    assert res["failed"] and "credit2 caps need Xen 4.10 or later, this is Xen 4.9" in res["msg"]
    assert "boot Xen with sched=credit" in res["msg"]


def test_xm_minus_one_means_no_credit(run):
    # xm prints weight/cap -1 when xend cannot read them (xm/main.py); made up.
    rc, text, err = fixture("sched_credit_domain0")
    dom0 = Dom0(overrides={("sched-credit", "-d", "Domain-0"): (rc, text.replace("256    0", " -1   -1"), err)})
    res = run(dom0, bins=("/usr/sbin/xm",), toolstack="xm", domain="Domain-0", cap=50)
    assert res["failed"] and "reports no credit weight/cap" in res["msg"]


def test_read_back_mismatch(run):
    dom0 = Dom0(apply_sets=False)
    res = run(dom0, domain="Domain-0", cap=50)
    assert res["failed"] and "reads back weight 256 cap 0 instead of 256/50" in res["msg"]
    assert res["after"] == {"weight": 256, "cap": 0}


def test_unreadable_output(run):
    dom0 = Dom0(overrides={("sched-credit", "-d", "Domain-0"): (0, "Segmentation fault\n", "")})
    res = run(dom0, domain="Domain-0", cap=50)
    assert res["failed"] and res["msg"].startswith("cannot read the output of xl: xl sched-credit:")
    assert res["cmd"] == [XL, "sched-credit", "-d", "Domain-0"]


def test_weight_range_error_from_xen(run):
    # Module checks first; a toolstack with other limits would answer like this (real stderr).
    dom0 = Dom0(overrides={("sched-credit", "-d", "Domain-0", "-w", "300"): fixture("set_weight_too_big")})
    res = run(dom0, domain="Domain-0", weight=300)
    assert res["failed"] and res["error_kind"] == "weight_range"
    assert res["msg"] == "weight out of range: Xen accepts 1 to 65535"
