# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The services under live migration, for real: the experiment playbooks on the converged lab.

One short run each (a few calls or mails across one migration, about two minutes): SIPp calls to
Asterisk's playback extension on the guest voip with the client capturing them, then mails from
jane to john through Postfix on the guest mail. Both write their records into a directory of the
test's own (results_root), which is read back here.
"""

import json
import os

import pytest

from conftest import playbook, shell


def flat(text):
    """The playbook's output with Ansible's YAML line wrapping undone."""
    return " ".join(text.split())


def run_experiment(name, tmp_path, extra):
    root = str(tmp_path / "results")
    argv = ["-e", "results_root=%s" % root, "-e", json.dumps(extra)]
    proc = playbook("playbooks/experiments/%s.yml" % name, *argv, timeout=1500)
    runs = os.listdir(os.path.join(root, name))
    assert len(runs) == 1, runs
    run_dir = os.path.join(root, name, runs[0])
    records = {}
    for entry in sorted(os.listdir(run_dir)):
        if entry.endswith(".json"):
            with open(os.path.join(run_dir, entry)) as f:
                records[entry] = json.load(f)  # every record is valid JSON
    print("\nxenlab: %s in %.0f s:\n%s" % (name, proc.seconds, "\n".join(
        line for line in proc.stdout.splitlines() if line.startswith("    - "))))
    return proc, run_dir, records


@pytest.mark.lab_minutes(7)
def test_voip_calls_across_a_live_migration(lab, tmp_path):
    proc, run_dir, records = run_experiment("voip_during_migration", tmp_path, {
        "call_length_ms": 8000, "call_rate": 1, "call_rate_period_ms": 2000, "call_limit": 3,
        "settle_s": 3, "cooldown_s": 3})
    assert set(records) >= {"summary.json", "calls.json", "quality.json", "capture.json",
                            "migration.json", "probe.json"}, sorted(records)
    assert os.path.getsize(os.path.join(run_dir, "capture.pcap")) > 0
    for record in records.values():
        assert record["schema_version"] and record["results"], record
    summary = records["summary.json"]
    res = summary["results"]
    assert summary["kind"] == "voip_during_migration"
    assert summary["params"]["source"] != summary["params"]["destination"]
    # Real calls completed across the migration, and real audio came back from the guest.
    assert res["calls_successful"] > 0, res
    assert res["calls_total"] == res["calls_successful"] + res["calls_failed"] + res["calls_in_flight"], res
    assert res["streams_heard"] > 0 and res["rtp_packets_heard"] > 100, res
    # Plausible figures: jitter in ms, MOS on the E-model's scale.
    assert 0 <= res["jitter_max_ms"] < 10000, res
    assert res["delta_max_ms"] >= 15, res
    for key in ("mos_f1_min", "mos_f2_min", "mos_adaptive_min"):
        assert 1.0 <= res[key] <= 4.5, (key, res[key])
    assert sorted(res["loss_runs"]) == sorted("a_sl%d" % n for n in range(1, 11))
    assert set(res["pdv"]) == {"a_d50", "a_d70", "a_d90", "a_d120", "a_d150", "a_d200", "a_d300"}
    # The migration and what the probe saw of it.
    assert res["migration_total_ms"] > 0 and res["migration_passes"] >= 1, res
    assert 0 < res["downtime_toolstack_ms"] < res["migration_total_ms"], res
    assert 0 < res["downtime_probe_ms"] < res["migration_total_ms"], res
    streams = records["quality.json"]["results"]["streams"]
    assert any(s["src"].startswith("192.168.77.41:") for s in streams), streams
    assert records["migration.json"]["results"]["total_time_ms"] == res["migration_total_ms"]
    for text in ("failed calls", "max jitter", "MOS F1/F2/adaptive", "loss runs", "PDV", "downtime"):
        assert text in flat(proc.stdout), text


@pytest.mark.lab_minutes(6)
def test_mail_across_a_live_migration_loses_no_accepted_mail(lab, tmp_path):
    proc, run_dir, records = run_experiment("mail_during_migration", tmp_path, {
        "mail_rate": 1, "settle_s": 3, "cooldown_s": 3, "delivery_timeout": 240})
    assert set(records) >= {"summary.json", "mails.json", "delivery.json", "migration.json", "probe.json"}, sorted(records)
    res = records["summary.json"]["results"]
    assert res["accepted"] > 0, res
    assert res["accepted_lost"] == 0 and res["missing_seqs"] == [], res
    assert res["delivered"] == res["accepted"], res
    assert records["delivery.json"]["results"]["expected"] == res["accepted"]
    response = res["response_ms"]
    assert response["count"] == res["accepted"] and 0 < response["min"] <= response["median"] <= response["max"], response
    assert len(records["mails.json"]["results"]["timeline"]) == res["sent"]
    assert 0 < res["downtime_probe_ms"] < res["migration_total_ms"], res
    assert "accepted mails lost 0" in flat(proc.stdout)
    # Postfix still answers on the guest, wherever it runs now.
    assert shell("mail", "postfix status")["rc"] == 0
