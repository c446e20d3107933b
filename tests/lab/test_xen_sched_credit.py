# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""xen_sched_credit on the lab's source dom0, for real: set, idempotence, check mode, errors, restore.

Only Domain-0's weight and cap change, and they are put back to Xen's defaults (256, no cap)
whatever happens. Uses the converged lab of the session (fixture `lab`).
"""

import pytest

from conftest import adhoc, shell

HOST = "source"
MODULE = "xenlab.migration.xen_sched_credit"
DOM0 = "domain=Domain-0"


def xl_weight_cap():
    """Domain-0's (weight, cap) as xl itself prints them, independent of the module."""
    out = shell(HOST, "xl sched-credit -d Domain-0")["stdout"].splitlines()
    fields = out[-1].split()
    assert fields[0] == "Domain-0", out
    return int(fields[2]), int(fields[3])


def sched(args, **kw):
    return adhoc(HOST, MODULE, args, **kw)


@pytest.mark.lab_minutes(3)
def test_cap_set_idempotent_check_mode_and_restored(lab):  # pylint: disable=unused-argument
    try:
        current = sched(DOM0)
        assert current["changed"] is False and current["scheduler"] == "credit" and current["domid"] == 0
        assert (current["weight"], current["cap"]) == xl_weight_cap()

        first = sched(DOM0 + " weight=256 cap=50")
        assert first["changed"] is (current["cap"] != 50 or current["weight"] != 256)
        assert first["after"] == {"weight": 256, "cap": 50} and xl_weight_cap() == (256, 50)

        second = sched(DOM0 + " weight=256 cap=50")
        assert second["changed"] is False and "cmd" not in second
        assert second["before"] == second["after"] == {"weight": 256, "cap": 50}

        check = sched(DOM0 + " cap=30", extra=("--check", "--diff"))
        assert check["changed"] is True and check["cap"] == 30 and check["before"]["cap"] == 50
        assert check["diff"]["before"] == "weight: 256\ncap: 50\n" and check["diff"]["after"] == "weight: 256\ncap: 30\n"
        assert xl_weight_cap() == (256, 50), "check mode changed the cap"
    finally:
        restored = sched(DOM0 + " weight=256 cap=0")
    assert restored["after"] == {"weight": 256, "cap": 0}
    assert xl_weight_cap() == (256, 0)


@pytest.mark.lab_minutes(2)
def test_clear_errors_and_nothing_changed(lab):  # pylint: disable=unused-argument
    before = xl_weight_cap()
    try:
        bad_cap = sched(DOM0 + " cap=150", check=False)
        assert bad_cap["failed"] and "Xen accepts 0 to %d" % (100 * bad_cap["vcpus"]) in bad_cap["msg"]

        missing = sched("domain=xenlab-nosuch cap=50", check=False)
        assert missing["failed"] and missing["error_kind"] == "domain_not_found"
        assert "xenlab-nosuch not found on this host" in missing["msg"]

        # The lab boots Xen with sched=credit: asking for credit2 says what to do.
        credit2 = sched(DOM0 + " scheduler=credit2 cap=50", check=False)
        assert credit2["failed"] and credit2["error_kind"] == "scheduler_mismatch"
        assert "boot Xen with sched=credit2" in credit2["msg"]
        assert xl_weight_cap() == before
    finally:
        sched(DOM0 + " weight=256 cap=0")
