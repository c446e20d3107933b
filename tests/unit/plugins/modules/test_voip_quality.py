# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The voip_quality module: in-process with patched module arguments, and for real through
ansible-doc and an ad-hoc ansible run."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.xenlab.migration.plugins.module_utils import results, rtp
from ansible_collections.xenlab.migration.plugins.modules import voip_quality

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
FIXTURES = os.path.join(REPO, "tests", "fixtures", "rtp")
IMPAIRED = os.path.join(FIXTURES, "impaired.pcap")
REQUIRED = ("ssrc", "src", "dst", "payload_type", "packets", "lost", "jitter_max_ms", "jitter_mean_ms",
            "delta_max_ms", "loss_runs", "pdv", "mos_f1", "mos_f2", "mos_adaptive")


def run(args, check_mode=False, capsys=None):
    """Run the module's main(); return (failed, result)."""
    if check_mode:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            voip_quality.main()
    out = json.loads(capsys.readouterr().out)
    assert (exit_info.value.code != 0) == bool(out.get("failed")), out
    return bool(out.get("failed")), out


def test_streams_of_the_fixture(capsys):
    failed, out = run({"pcap": IMPAIRED}, capsys=capsys)
    assert not failed and out["changed"] is False
    assert out["detection"] == "sdp" and out["pcap"] == IMPAIRED
    assert len(out["streams"]) == 4
    tshark = dict(((row["src"], row["dst"], row["ssrc"]), row)
                  for row in rtp.parse_tshark_streams(open(os.path.join(FIXTURES, "impaired.rtp_streams.txt")).read()))
    for stream in out["streams"]:
        assert set(REQUIRED) <= set(stream)
        assert re.match(r"^0x[0-9A-F]{8}$", stream["ssrc"])
        assert re.match(r"^\d+\.\d+\.\d+\.\d+:\d+$", stream["src"]) and re.match(r"^\d+\.\d+\.\d+\.\d+:\d+$", stream["dst"])
        assert sorted(stream["loss_runs"]) == sorted("a_sl%d" % i for i in range(1, 11))
        assert sorted(stream["pdv"]) == sorted(["a_d50", "a_d70", "a_d90", "a_d120", "a_d150", "a_d200", "a_d300"])
        row = tshark[(stream["src"], stream["dst"], stream["ssrc"])]
        assert (stream["packets"], stream["lost"]) == (row["packets"], row["lost"])
        assert abs(stream["jitter_max_ms"] - row["jitter_max_ms"]) < 0.01
        assert abs(stream["jitter_mean_ms"] - row["jitter_mean_ms"]) < 0.01
        assert abs(stream["delta_max_ms"] - row["delta_max_ms"]) < 0.01
        for key in ("mos_f1", "mos_f2", "mos_adaptive"):
            assert 1.0 <= stream[key] <= 4.5
    assert out["summary"]["streams"] == 4 and out["rtp_packets"] == sum(s["packets"] for s in out["streams"])


def test_filters_and_no_jitter_buffers(capsys):
    failed, out = run({"pcap": IMPAIRED, "hosts": ["10.78.1.2"], "ports": [6000], "ssrcs": ["0xca110001"],
                       "jitter_buffers": False}, capsys=capsys)
    assert not failed
    assert [(s["ssrc"], s["mos_f1"]) for s in out["streams"]] == [("0xCA110001", None)] * 2
    assert out["summary"]["mos_f1_min"] is None


def test_record_written_once_and_check_mode(tmp_path, capsys):
    dest = str(tmp_path / "facts.d" / "xenlab_voip.fact")
    args = {"pcap": IMPAIRED, "dest": dest, "create_dirs": True, "record_params": {"scenario": "cap35", "cap": 35}}
    failed, out = run(args, check_mode=True, capsys=capsys)
    assert not failed and out["changed"] is True and not os.path.exists(dest)     # check: predicted, not written
    failed, out = run(args, capsys=capsys)
    assert not failed and out["changed"] is True and out["dest"] == dest
    record = results.read_fact(dest, kind="voip_quality")
    assert record["params"]["scenario"] == "cap35" and record["params"]["mos_model"] == "voipmonitor"
    assert len(record["params"]["pcap_sha256"]) == 64
    assert record["results"]["streams"] == out["streams"]
    assert record["started_utc"] < record["finished_utc"]
    failed, out = run(args, capsys=capsys)
    assert not failed and out["changed"] is False                                 # same record: left alone
    failed, out = run(args, check_mode=True, capsys=capsys)
    assert not failed and out["changed"] is False
    failed, out = run(dict(args, record_params={"scenario": "cap100"}), capsys=capsys)
    assert not failed and out["changed"] is True
    assert results.read_record(dest)["params"]["scenario"] == "cap100"


@pytest.mark.parametrize("args, message", [
    ({"pcap": "/nonexistent/x.pcap"}, "cannot read /nonexistent/x.pcap: No such file or directory"),
    ({"pcap": os.path.join(FIXTURES, "README.md")}, "is not a pcap or pcapng capture"),
    ({"pcap": IMPAIRED, "hosts": ["voip-guest"]}, "hosts must hold IPv4 or IPv6 addresses"),
    ({"pcap": IMPAIRED, "ssrcs": ["caller"]}, "ssrc must be a number like 0xCA110000"),
    ({"pcap": IMPAIRED, "ports": [99999]}, "ports must be a whole number from 0 to 65535"),
    ({"pcap": IMPAIRED, "one_way_delay_ms": -1}, "one_way_delay_ms must be a number"),
    ({"pcap": IMPAIRED, "min_packets": -2}, "min_packets must be a whole number"),
    ({"pcap": IMPAIRED, "detect": "magic"}, "value of detect must be one of"),
    ({"pcap": IMPAIRED, "dest": "/nonexistent/dir/r.json"}, "directory of dest \\(/nonexistent/dir\\) does not exist"),
    ({"pcap": IMPAIRED, "dest": "/tmp/r.json", "record_params": {"pcap": "x"}}, "record_params: 'pcap' is one of"),
])
def test_failures_are_clear(args, message, capsys):
    failed, out = run(args, capsys=capsys)
    assert failed and re.search(message, out["msg"]), out["msg"]
    assert "Traceback" not in out["msg"] and "exception" not in out


def test_truncated_capture_fails_cleanly(tmp_path, capsys):
    cut = tmp_path / "cut.pcap"
    with open(IMPAIRED, "rb") as handle:
        cut.write_bytes(handle.read()[:5000])
    failed, out = run({"pcap": str(cut)}, capsys=capsys)
    assert failed and "is truncated" in out["msg"]


# --- for real: ansible-doc and ansible, as a user runs them -------------------------------------

def _ansible(tool, *argv):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="json",
               ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    venv_bin = os.path.join(REPO, ".venv", "bin")
    env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
    exe = shutil.which(tool, path=env["PATH"])
    if exe is None:
        pytest.skip("%s is not installed" % tool)
    return subprocess.run([exe] + list(argv), cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=120, check=False)


def test_ansible_doc():
    done = _ansible("ansible-doc", "xenlab.migration.voip_quality")
    assert done.returncode == 0, done.stderr
    assert "xenlab.migration.voip_quality" in done.stdout and "Reads a pcap or pcapng capture" in done.stdout
    for word in ("pcap", "mos_model", "mos_adaptive", "jitter_max_ms", "a_sl10"):
        assert word in done.stdout


def test_ansible_ad_hoc():
    done = _ansible("ansible", "localhost", "-m", "xenlab.migration.voip_quality",
                    "-a", "pcap=tests/fixtures/rtp/impaired.pcap")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(done.stdout)
    result = report["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert result["changed"] is False and len(result["streams"]) == 4
    assert sorted(s["ssrc"] for s in result["streams"]) == ["0xCA110000", "0xCA110000", "0xCA110001", "0xCA110001"]
    assert result["summary"]["mos_f1_min"] < 4.0
