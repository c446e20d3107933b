# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Measurement records and the atomic result writer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from ansible_collections.xenlab.migration.plugins.module_utils import results

OLD = {"schema_version": 1, "kind": "old", "host": "h", "recorded_utc": "2024-05-01T12:00:00.000000Z",
       "params": {}, "results": {"downtime_ms": 1.0}}


def _leftovers(directory, name):
    return sorted(entry for entry in os.listdir(directory) if entry != name)


# --- times and names ---------------------------------------------------------------------------

def test_utc_iso_round_trip():
    text = results.utc_iso(1714564800.25)
    assert text == "2024-05-01T12:00:00.250000Z"
    assert results.parse_utc_iso(text) == 1714564800.25
    assert results.parse_utc_iso("2024-05-01T12:00:00.1+00:00") == pytest.approx(1714564800.1)
    assert results.parse_utc_iso("2024-05-01T12:00:00Z") == 1714564800.0


@pytest.mark.parametrize("bad", ["2024-05-01 12:00:00Z", "2024-05-01T12:00:00", "2024-05-01T12:00:00+02:00",
                                 "2024-13-01T12:00:00Z", 1714564800, None])
def test_parse_utc_iso_rejects(bad):
    with pytest.raises(ValueError):
        results.parse_utc_iso(bad)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), True, "1"])
def test_utc_iso_rejects(bad):
    with pytest.raises(ValueError):
        results.utc_iso(bad)


def test_fact_path():
    assert results.fact_path("xenlab_downtime") == "/etc/ansible/facts.d/xenlab_downtime.fact"
    assert results.fact_path("x", "/tmp/f") == "/tmp/f/x.fact"
    for bad in ("xen-lab", "1x", "", "a.b", None):
        with pytest.raises(ValueError, match="ansible_local"):
            results.fact_path(bad)


# --- the atomic writer -------------------------------------------------------------------------

def test_write_json_atomic_writes_sorted_json_with_mode(tmp_path):
    path = tmp_path / "r.json"
    written = results.write_json_atomic(str(path), {"b": 1, "a": [1, 2]}, mode=0o600)
    assert written == str(path)
    assert path.read_text() == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}\n'
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)
    assert _leftovers(tmp_path, "r.json") == []


def test_write_json_atomic_replaces_and_needs_the_directory(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("old")
    results.write_json_atomic(path, {"new": True})
    assert json.loads(path.read_text()) == {"new": True}
    with pytest.raises(FileNotFoundError, match="make_dirs"):
        results.write_json_atomic(tmp_path / "sub" / "r.json", {})
    results.write_json_atomic(tmp_path / "sub" / "deeper" / "r.json", {}, make_dirs=True)
    assert (tmp_path / "sub" / "deeper" / "r.json").read_text() == "{}\n"


@pytest.mark.parametrize("data, exc", [({"x": float("nan")}, ValueError), ({"x": object()}, TypeError)])
def test_unserialisable_data_leaves_old_file_and_no_temp(tmp_path, data, exc):
    path = tmp_path / "r.json"
    results.write_json_atomic(path, OLD)
    with pytest.raises(exc):
        results.write_json_atomic(path, data)
    assert json.loads(path.read_text()) == OLD
    assert _leftovers(tmp_path, "r.json") == []


def _fail(*args, **kwargs):
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("target", ["fsync", "replace", "fchmod"])
def test_failure_inside_the_write_keeps_old_content(tmp_path, monkeypatch, target):
    path = tmp_path / "r.json"
    results.write_json_atomic(path, OLD)
    before = path.read_bytes()
    monkeypatch.setattr(results.os, target, _fail)
    with pytest.raises(OSError, match="No space"):
        results.write_json_atomic(path, {"kind": "new", "pad": "x" * 100000})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert _leftovers(tmp_path, "r.json") == []


def test_failure_during_json_dump_keeps_old_content(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    results.write_json_atomic(path, OLD)

    def broken_dumps(*args, **kwargs):
        raise KeyboardInterrupt  # not even an Exception: the writer must still clean up

    monkeypatch.setattr(results.json, "dumps", broken_dumps)
    with pytest.raises(KeyboardInterrupt):
        results.write_json_atomic(path, {"kind": "new"})
    monkeypatch.undo()
    assert json.loads(path.read_text()) == OLD
    assert _leftovers(tmp_path, "r.json") == []


def test_interrupted_half_written_temp_file_never_reaches_the_target(tmp_path, monkeypatch):
    # The temp file holds half the text when the write dies: the target must still be the old file.
    path = tmp_path / "r.json"
    results.write_json_atomic(path, OLD)
    real_fdopen = os.fdopen
    seen = {}

    class HalfWriter(object):
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()
            return False

        def write(self, text):
            self.handle.write(text[:len(text) // 2])
            self.handle.flush()
            seen["temp"] = self.handle.name
            raise OSError(5, "Input/output error")

        def __getattr__(self, name):
            return getattr(self.handle, name)

    monkeypatch.setattr(results.os, "fdopen", lambda fd, *a, **k: HalfWriter(real_fdopen(fd, *a, **k)))
    with pytest.raises(OSError, match="Input/output"):
        results.write_json_atomic(path, {"kind": "new", "pad": "y" * 10000})
    monkeypatch.undo()
    assert "temp" in seen
    assert json.loads(path.read_text()) == OLD
    assert _leftovers(tmp_path, "r.json") == []


def test_process_killed_before_rename_leaves_old_file(tmp_path):
    # A real crash: the writer is SIGKILLed after the temp file is complete but before os.replace.
    path = tmp_path / "r.json"
    results.write_json_atomic(path, OLD)
    ready = tmp_path / "ready"
    script = textwrap.dedent("""
        import os, sys, time
        sys.path.insert(0, %r)
        from ansible_collections.xenlab.migration.plugins.module_utils import results
        def stall(src, dst):
            open(%r, "w").close()
            time.sleep(30)
        results.os.replace = stall
        results.write_json_atomic(%r, {"kind": "new", "pad": "z" * 200000})
    """) % (_collections_path(), str(ready), str(path))
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 10
        while not ready.exists():
            assert proc.poll() is None, "the writer died early"
            assert time.monotonic() < deadline, "the writer never reached os.replace"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert json.loads(path.read_text()) == OLD
    temps = [name for name in _leftovers(tmp_path, "r.json") if name != "ready"]
    # The complete temp file stays behind (nobody could remove it), but it is a hidden .tmp file.
    assert len(temps) == 1 and temps[0].startswith(".r.json.") and temps[0].endswith(".tmp")


def _collections_path():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(here))))
    return os.path.join(root, ".collections")


# --- records -----------------------------------------------------------------------------------

def test_measurement_record_round_trip(tmp_path):
    record = results.measurement_record("downtime_probe", {"downtime_ms": 300.0}, params={"interval_ms": 10},
                                        host="client", started=1714564800.0, finished="2024-05-01T12:00:05.000000Z")
    assert record["schema_version"] == 1 and record["host"] == "client"
    assert record["started_utc"] == "2024-05-01T12:00:00.000000Z"
    assert results.parse_utc_iso(record["recorded_utc"]) > 1714564800
    path = tmp_path / "x.json"
    results.write_record(path, record)
    assert results.read_record(path, kind="downtime_probe") == record
    with pytest.raises(results.ResultFileError, match="expected a 'migration' record"):
        results.read_record(path, kind="migration")


@pytest.mark.parametrize("kwargs, message", [
    (dict(kind="", results={}), "kind"),
    (dict(kind="k", results=[]), "results must be a dict"),
    (dict(kind="k", results={}, params=[1]), "params must be a dict"),
    (dict(kind="k", results={}, started="yesterday"), "ISO-8601"),
    (dict(kind="k", results={}, extra={"host": "x"}), "standard record key"),
])
def test_measurement_record_rejects(kwargs, message):
    with pytest.raises(ValueError, match=message):
        results.measurement_record(**kwargs)


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r.pop("results"), "lacks results"),
    (lambda r: r.update(schema_version=2), "unsupported schema_version 2"),
    (lambda r: r.update(schema_version="1"), "must be an integer"),
    (lambda r: r.update(params=[]), "params must be an object"),
    (lambda r: r.update(recorded_utc="now"), "recorded_utc"),
])
def test_validate_record_says_what_is_wrong(mutate, message):
    record = json.loads(json.dumps(OLD))
    mutate(record)
    with pytest.raises(results.ResultFileError, match=message):
        results.validate_record(record)


def test_read_json_errors(tmp_path):
    with pytest.raises(results.ResultFileError, match="cannot read"):
        results.read_json(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"a": ')
    with pytest.raises(results.ResultFileError, match="not valid JSON"):
        results.read_json(bad)
    binary = tmp_path / "bin.json"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(results.ResultFileError):
        results.read_json(binary)


def test_fact_files(tmp_path):
    path = tmp_path / "xenlab_downtime.fact"
    results.write_record(path, OLD)
    assert results.read_fact(path) == OLD
    os.chmod(path, 0o755)
    with pytest.raises(results.ResultFileError, match="executable"):
        results.read_fact(path)
    with pytest.raises(ValueError, match="executable"):
        results.write_record(path, OLD, mode=0o755)
    with pytest.raises(ValueError, match="named <name>.fact"):
        results.write_record(tmp_path / "xen-lab.fact", OLD)
    other = tmp_path / "x.json"
    results.write_record(other, OLD)
    with pytest.raises(results.ResultFileError, match="named <name>.fact"):
        results.read_fact(other)


def test_fact_file_reads_back_as_ansible_local(tmp_path):
    # Ansible's own local fact collector must read what write_record wrote.
    local = pytest.importorskip("ansible.module_utils.facts.system.local")
    results.write_record(tmp_path / "xenlab_downtime.fact", OLD)

    class FakeModule(object):
        params = {"fact_path": str(tmp_path)}

        def warn(self, msg):
            raise AssertionError(msg)

        def run_command(self, *args, **kwargs):
            raise AssertionError("a non-executable fact file must not be run")

    facts = local.LocalFactCollector().collect(module=FakeModule())
    assert facts["local"]["xenlab_downtime"] == OLD  # ansible_local.xenlab_downtime once gathered
