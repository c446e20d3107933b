# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""result_write: records written atomically, idempotent, check and diff mode, clear errors."""

from __future__ import annotations

import json
import os

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.xenlab.migration.plugins.module_utils import results
from ansible_collections.xenlab.migration.plugins.modules import result_write


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

    def call(check_mode=False, diff=False, **args):
        args["_ansible_check_mode"] = check_mode
        args["_ansible_diff"] = diff
        with patch_module_args(args):
            try:
                result_write.main()
            except _Exit as done:
                return done.args[0]
        raise AssertionError("no exit_json or fail_json")

    return call


ARGS = dict(kind="migration", host="client", params={"cap": 35}, results={"migration_time_ms": 12369},
            started_utc="2024-05-01T12:00:00Z", finished_utc="2024-05-01T12:00:12.369Z")


def test_write_then_idempotent(run, tmp_path):
    dest = tmp_path / "facts.d" / "xenlab_migration.fact"
    check = run(check_mode=True, diff=True, dest=str(dest), create_dirs=True, **ARGS)
    assert check["changed"] is True and not dest.exists()
    assert check["diff"]["before"] == "" and '"migration_time_ms": 12369' in check["diff"]["after"]

    first = run(dest=str(dest), create_dirs=True, **ARGS)
    assert first["changed"] is True and first["dest"] == str(dest)
    record = results.read_fact(str(dest), kind="migration")
    assert record == first["record"] and record["results"] == {"migration_time_ms": 12369}
    assert record["finished_utc"] == "2024-05-01T12:00:12.369Z"
    assert oct(dest.stat().st_mode & 0o777) == oct(0o644)

    again = run(dest=str(dest), **ARGS)
    assert again["changed"] is False and again["record"]["recorded_utc"] == record["recorded_utc"]
    assert results.read_fact(str(dest)) == record

    changed = run(dest=str(dest), **dict(ARGS, results={"migration_time_ms": 13441}))
    assert changed["changed"] is True
    assert results.read_fact(str(dest))["results"] == {"migration_time_ms": 13441}


def test_mode_change_rewrites(run, tmp_path):
    dest = tmp_path / "r.json"
    run(dest=str(dest), **ARGS)
    result = run(dest=str(dest), mode="0600", **ARGS)
    assert result["changed"] is True and oct(dest.stat().st_mode & 0o777) == oct(0o600)


def test_overwrites_a_file_that_is_no_record(run, tmp_path):
    dest = tmp_path / "r.json"
    dest.write_text("garbage")
    result = run(dest=str(dest), diff=True, **ARGS)
    assert result["changed"] is True and result["diff"]["before"] == "garbage"
    assert json.loads(dest.read_text())["kind"] == "migration"


@pytest.mark.parametrize("args, message", [
    (dict(dest="{tmp}/missing/r.json"), "directory {tmp}/missing does not exist (set create_dirs: true"),
    (dict(dest="{tmp}/x.fact", mode="0755"), "executable"),
    (dict(dest="{tmp}/xen-lab.fact"), "named <name>.fact"),
    (dict(dest="{tmp}/r.json", mode="rw"), "mode must be an octal string"),
    (dict(dest="{tmp}/r.json", started_utc="yesterday"), "ISO-8601"),
    (dict(dest="{tmp}/r.json", kind=""), "kind must be a non-empty string"),
])
def test_errors(run, tmp_path, args, message):
    args = dict(ARGS, **args)
    args["dest"] = args["dest"].format(tmp=tmp_path)
    result = run(**args)
    assert result.get("failed") is True
    assert message.format(tmp=tmp_path) in result["msg"]
    assert os.listdir(str(tmp_path)) == []
