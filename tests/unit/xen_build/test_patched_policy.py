# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The C code of roles/xen_build's libxenguest patch against stop_policy.py.

The policy header is taken from the patch file itself and compiled with Xen's tools flags into
a harness that runs send_memory_live's loop (xen_build_harness.py). The proofs:

* every decision of the C port equals the Python class's on the same calls (random settings,
  given through the environment the way xl hands them to libxl-save-helper);
* replaying the log the C code wrote with ``stop_policy.replay`` predicts where it stopped,
  exactly (iteration, before/after the send, passes);
* without settings, Xen's own simple_precopy_policy decides;
* wrong settings stop the migration before its first call, with a message that names them.

Tests that need a Xen build tree (the role's cache) skip without one: the xlprogress shim on
Xen's real libxentoollog, and the patched library the role built.
"""

from __future__ import annotations

import glob
import os
import random
import re
import shutil
import statistics
import subprocess

import pytest

import xen_build_harness as harness
from ansible_collections.xenlab.migration.plugins.module_utils import precopy_log as pl
from ansible_collections.xenlab.migration.plugins.module_utils import stop_policy as sp

P = 65536
NAMES = {"xen": "xen417", "xen417": "xen417", "xen34": "xen34", "sd": "sd", "adaptive": "adaptive"}


@pytest.fixture(scope="module", name="hbin")
def hbin_fixture(tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    return harness.compile_harness(str(tmp_path_factory.mktemp("xlxb_harness")))


def loop_calls(pages, dirty):
    """The calls send_memory_live makes when pass k dirties dirty[k-1] pages (no stop)."""
    calls, tw, dc = [(0, 0, pages)], 0, pages
    for k, d in enumerate(dirty, 1):
        tw += dc
        calls += [(k, tw, -1), (k, tw, d)]
        dc = d
    return calls


def random_dirty(rng, pages, params):
    """Dirty counts of one shape; sd band and adaptive threshold edges are hit often."""
    n = rng.randint(1, 32)
    shape = rng.choice(["walk", "decay", "alternate", "edge", "small"])
    if shape == "walk":
        level = rng.randint(0, min(pages, 20000))
        return [max(0, min(pages, level + rng.randint(-600, 600))) for _i in range(n)]
    if shape == "decay":
        d, out = rng.randint(100, pages), []
        for _i in range(n):
            d = max(0, int(d * rng.uniform(0.3, 1.05)))
            out.append(min(d, pages))
        return out
    if shape == "alternate":
        # sigma = half the swing exactly: on the band's edges or one page off.
        half = rng.choice([149, 150, 151, 199, 200, 201, 299, 300, 301, 349, 350, 351])
        level = rng.randint(half, max(half, min(pages - half, 5000)))
        return [rng.randint(0, pages)] + [level + half if i % 2 else level - half for i in range(n)]
    if shape == "edge":
        window, sdiv, ndiv = params.get("window", 3), params.get("shrink_div", 16), params.get("noise_div", 1024)
        out = [sdiv * rng.randint(1, max(1, pages // sdiv)) for _i in range(window)]
        while len(out) < n + window:
            old = out[-window]
            gain = -(-(ndiv * old + sdiv * pages) // (sdiv * ndiv))
            cur = max(0, min(pages, old - gain + rng.choice([-1, 0, 0, 1])))
            if (len(out) // window) % 2 == 0:
                cur -= cur % sdiv
            out.append(cur)
        return out
    return [rng.randint(0, 80) for _i in range(n)]


def random_params(rng, name):
    params = {"max_iterations": rng.choice([rng.randint(1, 40), 5, 29]),
              "target_dirty_count": rng.choice([0, 1, 50, 100])}
    if name != "xen":
        params["max_factor"] = rng.randint(1, 4)
    if name == "sd":
        low = rng.choice([0, 150, 200, rng.randint(0, 500)])
        params.update(track_from=rng.randint(2, 12), sd_low=low,
                      sd_high=low + rng.choice([1, 100, 150, rng.randint(1, 2000)]))
    if name == "adaptive":
        params.update(window=rng.randint(1, 6), shrink_div=rng.choice([1, 16, rng.randint(1, 64)]),
                      noise_div=rng.choice([1, 256, 1024, rng.randint(1, 4096)]), early=rng.randint(0, 1))
    # Leave some out: the C defaults must be Python's.
    for key in list(params):
        if key not in ("sd_low", "sd_high") and rng.random() < 0.25:
            del params[key]
    if "sd_low" in params and rng.random() < 0.25:
        del params["sd_low"], params["sd_high"]
    return params


def env_commands(name, params):
    cmds = ["setenv XENLAB_PRECOPY_POLICY %s" % name]
    cmds += ["setenv XENLAB_PRECOPY_%s %d" % (k.upper(), v) for k, v in sorted(params.items())]
    return cmds


def unset_commands(params):
    return ["unsetenv XENLAB_PRECOPY_%s" % k.upper() for k in sorted(params)] + ["unsetenv XENLAB_PRECOPY_POLICY"]


def migrations(stderr):
    return pl.parse_precopy_log(stderr)


# --- decisions ------------------------------------------------------------------------------

def test_decisions_equal_stop_policy_on_random_calls(hbin):
    rng = random.Random(20121)
    script, expected, stops = [], [], {}
    for name in ("xen", "xen34", "sd", "adaptive"):
        for _config in range(120):
            pages = rng.choice([1024, P, 262144, rng.randint(1, 300000)])
            params = random_params(rng, name)
            pol = sp.make_policy(NAMES[name], **params)
            script += env_commands(name, params) + ["begin 7"]
            expected.append("begin ok")
            for _migration in range(2):  # the iteration-0 call must reset the state
                for call in loop_calls(pages, [min(d, pages) for d in random_dirty(rng, pages, params)]):
                    script.append("call %d %d %d" % call)
                    decision = pol(*call)
                    expected.append(str(decision))
                    if decision == sp.XGS_POLICY_STOP_AND_COPY:
                        stops[pol.reason] = stops.get(pol.reason, 0) + 1
            script += unset_commands(params)
    out, err = harness.run(hbin, script)
    assert len(out) == len(expected) > 30000
    mismatches = [i for i, (a, b) in enumerate(zip(out, expected)) if a != b]
    assert not mismatches, "first mismatch at answer %d: C %s, Python %s" % (
        mismatches[0], out[mismatches[0]], expected[mismatches[0]])
    # Every rule's STOP path was exercised, and every call was logged.
    rules = ("dirty_count", "iterations", "total_written", "sd_band", "no_shrink", "no_progress")
    assert all(stops.get(r, 0) > 20 for r in rules), stops
    assert err.count("event=call") == len(expected) - 480


@pytest.mark.parametrize("name", ["xen", "xen34", "sd", "adaptive"])
def test_replay_of_the_c_log_predicts_the_stop_exactly(hbin, name):
    rng = random.Random({"xen": 11, "xen34": 12, "sd": 13, "adaptive": 14}[name])
    script, runs = [], []
    for index in range(60):
        params = random_params(rng, name)
        params.pop("max_iterations", None)  # keep the default limits so that traces end in a stop
        dirty = [min(d, P) for d in random_dirty(rng, P, params)]
        runs.append((params, [P] + dirty))
        script += harness.loop_script(name, [P] + dirty, params, domid=index + 1)
    out, err = harness.run(hbin, script)
    answers = [line for line in out if not line.startswith("begin")]
    logged = migrations(err)
    assert len(answers) == len(logged) == len(runs)
    outcomes = {"stopped": 0, "short": 0}
    for (params, counts), answer, mig in zip(runs, answers, logged):
        assert mig["policy"] == NAMES[name] and mig["source"] == "env"
        assert {k: mig["params"][k] for k in params} == params
        word = answer.split()
        outcomes[word[0]] += 1
        if word[0] == "short":
            # The C policy wanted another pass; so does the replay of what it logged.
            assert mig["stop"] is None
            with pytest.raises(sp.TraceTooShort):
                sp.replay(NAMES[name], mig["records"], **params)
            continue
        it, when, passes, final = int(word[1]), word[2], int(word[3]), int(word[4])
        got = sp.replay(NAMES[name], mig["records"], details=True, **params)
        assert (got["iteration"], got["stopped"], got["passes"]) == (it, when + "_send", passes)
        assert mig["stop"]["iteration"] == it and mig["stop"]["passes"] == passes
        assert mig["stop"]["reason"] == got["reason"]
        # Every logged decision is the one Python makes on that call.
        assert [pl.DECISIONS[r["decision"]] for r in mig["records"]] == [c[3] for c in got["calls"]]
        # The pre-copy sent counts[0..passes-1]; the stop-and-copy the next count, if recorded.
        if final >= 0:
            assert mig["final"]["dirty_count"] == final == counts[passes]
        else:
            assert mig["final"] is None and passes == len(counts)
        # The offline simulator agrees on the same recorded trace.
        if passes < len(counts):
            sim = sp.simulate(NAMES[name], sp.TraceModel(counts[:passes + 1]), 4096 * 10000, **params)
            assert sim["iterations"] == passes and sim["final_pages"] == final
    assert outcomes["stopped"] > 30, outcomes


def test_default_is_xen_simple_precopy_policy(hbin):
    """No variable, no file: the start line says Xen's own function decides, and it does."""
    rng = random.Random(3)
    script, expected = [], []
    for _m in range(40):
        script.append("begin 4")
        expected.append("begin ok")
        for call in loop_calls(P, random_dirty(rng, P, {})):
            it, _tw, dc = call
            script.append("call %d %d %d" % call)
            expected.append(str(int((0 <= dc < 50) or it >= 5)))
    out, err = harness.run(hbin, script)
    assert out == expected and "decision=stop" in err
    # The script calls on past the stops: relabel them so that the parser accepts the sequence.
    relabelled = err.replace("decision=stop", "decision=continue").replace("reason=dirty_count", "reason=-")
    for mig in migrations(relabelled.replace("reason=iterations", "reason=-")):
        assert (mig["policy"], mig["source"], mig["decider"]) == ("xen417", "default", "simple_precopy_policy")
        assert mig["conf"] is None
        assert mig["params"] == {"max_iterations": 5, "target_dirty_count": 50}
    # Any other xen setting leaves the decision to the port (same rule, other numbers).
    out, err = harness.run(hbin, ["setenv XENLAB_PRECOPY_POLICY xen", "setenv XENLAB_PRECOPY_MAX_ITERATIONS 7",
                                  "begin 5", "loop 65536 5000 4000 3000 2000 1000 900 800 700"])
    assert out == ["begin ok", "stopped 7 after 7 800"]
    assert migrations(err)[0]["decider"] == "xenlab"


def test_stock_policy_copy_is_verbatim():
    src = harness.source_tree()
    if src is None:
        pytest.skip("no Xen source in the xen_build cache (%s)" % harness.CACHE)
    with open(os.path.join(src, "tools", "libs", "guest", "xg_sr_save.c"), encoding="utf-8") as f:
        assert harness.STOCK_POLICY in f.read()


# --- settings -------------------------------------------------------------------------------

def test_config_file_is_read_and_the_environment_wins(hbin, tmp_path):
    conf = tmp_path / "precopy.conf"
    conf.write_text("# lab settings\npolicy = sd\n  track_from=4   # from pass 5\nsd_low = 150\nsd_high = 300\n\n"
                    "window = 9\n", encoding="utf-8")
    log = tmp_path / "calls.log"
    plateau = "65536 9000 2000 2250 1750 2180 1700 2220 1850 2260"
    out, err = harness.run(hbin, ["begin 1", "loop " + plateau, "end",
                                  "setenv XENLAB_PRECOPY_LOG " + str(log), "begin 2", "loop " + plateau, "end",
                                  "setenv XENLAB_PRECOPY_POLICY adaptive", "begin 3", "loop " + plateau, "end"],
                           env={"XENLAB_PRECOPY_CONF": str(conf)})
    # sd, tracking from iteration 4: D_2..D_4 = 2000, 2250, 1750 have sigma 204.1, inside (150, 300).
    assert out == ["begin ok", "stopped 4 before 5 2180", "begin ok", "stopped 4 before 5 2180",
                   "begin ok", "stopped 5 before 6 1700"]
    first = migrations(err)
    assert len(first) == 1 and first[0]["source"] == "file" and first[0]["conf"] == str(conf)
    assert first[0]["params"] == {"max_iterations": 29, "target_dirty_count": 50, "max_factor": 3, "track_from": 4,
                                  "sd_low": 150, "sd_high": 300}
    assert first[0]["stop"]["reason"] == "sd_band"
    assert abs(first[0]["records"][-1]["sd"] - statistics.pstdev([2000, 2250, 1750])) < 5e-4
    # XENLAB_PRECOPY_LOG sends the second and third migrations to the file; the third takes
    # its settings from the environment only (adaptive with window 3, not the file's 9).
    in_file = pl.parse_precopy_log(log.read_text(encoding="utf-8"))
    assert [(m["domid"], m["policy"], m["source"]) for m in in_file] == [(2, "sd", "file"), (3, "adaptive", "env")]
    assert in_file[1]["params"]["window"] == 3 and in_file[1]["stop"]["reason"] == "no_shrink"
    assert len(log.read_text(encoding="utf-8").splitlines()) == sum(len(m["records"]) + 2 for m in in_file) == 24


@pytest.mark.parametrize("env, conf, message", [
    ({"XENLAB_PRECOPY_POLICY": "thesis"}, None, "policy (env) must be one of xen, xen417, xen34, sd, adaptive, got 'thesis'"),
    ({"XENLAB_PRECOPY_POLICY": "sd", "XENLAB_PRECOPY_SD_LOW": "2e2"}, None,
     "sd_low (env) must be an integer from 0 to 3037000499, got '2e2'"),
    ({"XENLAB_PRECOPY_POLICY": "sd", "XENLAB_PRECOPY_SD_LOW": "300", "XENLAB_PRECOPY_SD_HIGH": "300"}, None,
     "sd_high must be greater than sd_low, got [300, 300]"),
    ({"XENLAB_PRECOPY_POLICY": "sd", "XENLAB_PRECOPY_TRACK_FROM": "1"}, None,
     "track_from (env) must be an integer from 2 to 4294967295, got '1'"),
    ({"XENLAB_PRECOPY_POLICY": "adaptive", "XENLAB_PRECOPY_WINDOW": "1001"}, None,
     "window (env) must be an integer from 1 to 1000, got '1001'"),
    ({"XENLAB_PRECOPY_POLICY": "adaptive", "XENLAB_PRECOPY_EARLY": "2"}, None,
     "early (env) must be an integer from 0 to 1, got '2'"),
    ({"XENLAB_PRECOPY_POLICY": "xen", "XENLAB_PRECOPY_MAX_ITERATIONS": "-5"}, None,
     "max_iterations (env) must be an integer from 1 to 4294967295, got '-5'"),
    ({"XENLAB_PRECOPY_POLICY": "xen34", "XENLAB_PRECOPY_MAX_FACTOR": "99999999999999999999999"}, None,
     "max_factor (env) must be an integer from 1 to 1048576"),
    ({"XENLAB_PRECOPY_POLICY": "sd", "XENLAB_PRECOPY_SDLOW": "100"}, None, "unknown variable XENLAB_PRECOPY_SDLOW"),
    ({"XENLAB_PRECOPY_POLICY": "sd", "XENLAB_PRECOPY_LOG": "calls.log"}, None,
     "log (env) must be xc, none or an absolute path, got 'calls.log'"),
    ({"XENLAB_PRECOPY_POLICY": "adaptive", "XENLAB_PRECOPY_NOISE_DIV": ""}, None,
     "environment: noise_div must have a value of 1 to 240 characters"),
    ({}, "policy = sd\nsd-low = 100\n", "line 2: unknown key 'sd-low'"),
    ({}, "policy sd\n", "line 1: expected key = value, got 'policy sd'"),
    ({}, "policy = adaptive\nshrink_div = 0\n", "shrink_div (file) must be an integer from 1 to 1048576, got '0'"),
])
def test_bad_settings_refuse_the_migration(hbin, tmp_path, env, conf, message):
    extra = dict(env)
    if conf is not None:
        (tmp_path / "precopy.conf").write_text(conf, encoding="utf-8")
        extra["XENLAB_PRECOPY_CONF"] = str(tmp_path / "precopy.conf")
    out, err = harness.run(hbin, ["begin 9"], env=extra)
    assert len(out) == 1 and out[0].startswith("begin error ") and message in out[0]
    # Logged as an error line (xl shows it), no start line: the parser reports a refused migration.
    assert "xc: error: xenlab-precopy: event=error domid=9 message=" in err
    mig = pl.parse_precopy_log(err)
    assert len(mig) == 1 and message in mig[0]["error"] and mig[0]["records"] == []
    with pytest.raises(pl.PrecopyLogError, match="refused the migration"):
        pl.precopy_records(err)


def test_unreadable_config_file_is_an_error_and_a_missing_one_is_not(hbin, tmp_path):
    out, _err = harness.run(hbin, ["begin 1"], env={"XENLAB_PRECOPY_CONF": str(tmp_path)})  # a directory
    assert out[0].startswith("begin error ")
    out, err = harness.run(hbin, ["begin 1"], env={"XENLAB_PRECOPY_CONF": str(tmp_path / "none.conf")})
    assert out == ["begin ok"] and migrations(err)[0]["source"] == "default"


@pytest.mark.parametrize("name, params, pages, ok", [
    ("sd", {}, 112000000, True),          # (29 - 2) * 112e6 <= 3037000499
    ("sd", {}, 112481500, "sd: (max_iterations - 2) * max(guest pages 112481500, sd_high) exceeds 3037000499, "
     "the int64 sums could overflow"),
    ("sd", {"max_iterations": 3}, 3037000499, True),
    ("adaptive", {"shrink_div": 2 ** 20, "noise_div": 2 ** 20}, (2 ** 63 - 1) // 2 ** 40, True),
    ("adaptive", {"shrink_div": 2 ** 20, "noise_div": 2 ** 20}, (2 ** 63 - 1) // 2 ** 40 + 1,
     "adaptive: shrink_div * noise_div * guest pages 8388608 exceeds 2**63 - 1"),
    ("xen34", {}, 2 ** 40 + 1, "the iteration-0 call carries 1099511627777 guest pages, expected 1 to 1099511627776"),
])
def test_guest_size_bounds_match_python(hbin, name, params, pages, ok):
    pol = sp.make_policy(name, **params)
    try:
        pol(0, 0, pages)
        python_ok = True
    except ValueError:
        python_ok = False
    assert python_ok == (ok is True)
    out, err = harness.run(hbin, env_commands(name, params) + ["begin 1", "call 0 0 %d" % pages])
    assert out[1] == ("0" if ok is True else "-1")
    if ok is not True:
        assert "xc: error: xenlab-precopy: event=error domid=1 message=%s\n" % ok in err
        assert migrations(err)[0]["stop"] == {"iteration": 0, "stopped": "before_send", "passes": 1, "decision": -1,
                                              "reason": "bad_guest_size", "line": 3}


def test_log_none_and_unwritable_file(hbin, tmp_path):
    out, err = harness.run(hbin, ["setenv XENLAB_PRECOPY_POLICY xen34", "setenv XENLAB_PRECOPY_LOG none",
                                  "begin 1", "loop 65536 100 40 30"])
    assert out == ["begin ok", "stopped 2 before 3 30"] and "xenlab-precopy" not in err
    # A log file that cannot be opened falls back to libxc's logger; the migration goes on.
    out, err = harness.run(hbin, ["setenv XENLAB_PRECOPY_POLICY xen34",
                                  "setenv XENLAB_PRECOPY_LOG %s/missing/dir/x.log" % tmp_path,
                                  "begin 1", "loop 65536 100 40 30"])
    assert out == ["begin ok", "stopped 2 before 3 30"]
    mig = migrations(err)
    assert len(mig) == 1 and len(mig[0]["records"]) == 5 and mig[0]["error"] is None
    assert mig[0]["warnings"] == ["cannot open log file %s/missing/dir/x.log (No such file or directory), logging to "
                                  "xc instead" % tmp_path]


def test_elapsed_ms_and_running_sd(hbin):
    counts = [P, 9000, 2000, 2250, 1750, 2180, 1700, 2220, 1850, 2260, 2000, 2100]
    out, err = harness.run(hbin, harness.loop_script("xen34", counts, {"max_iterations": 9}))
    assert out[-1] == "stopped 9 after 9 2260"
    records = migrations(err)[0]["records"]
    times = [r["elapsed_ms"] for r in records]
    assert times == sorted(times) and 0 <= times[0] < 1000
    for r in records:
        samples = [x["dirty_count"] for x in records[:records.index(r) + 1]
                   if x["phase"] == "before" and x["iteration"] >= 2]
        if samples:
            assert abs(r["sd"] - statistics.pstdev(samples)) < 5e-4, r
        else:
            assert r["sd"] is None


# --- with a Xen build tree: the shim on the real libxentoollog, the built library -------------

@pytest.fixture(scope="module", name="xtl")
def xtl_fixture(tmp_path_factory):
    tree = harness.build_tree()
    if tree is None or shutil.which("gcc") is None:
        pytest.skip("no Xen build tree in the xen_build cache (%s): run the role first" % harness.CACHE)
    d = str(tmp_path_factory.mktemp("xlxb_xtl"))
    return harness.compile_harness(d, real_xtl_tree=tree), harness.compile_shim(d, tree)


def test_shim_makes_xl_show_progress(xtl):
    binary, shim = xtl
    counts = [P, 5277, 2264, 2113, 2106, 2105, 2105]
    script = harness.loop_script("xen", counts)
    _out, hidden = harness.run(binary, script)
    out, shown = harness.run(binary, script, env={"LD_PRELOAD": shim})
    _out, off = harness.run(binary, script, env={"LD_PRELOAD": shim, "XENLAB_XLPROGRESS": "0"})
    assert out[-1] == "stopped 5 after 5 2105"
    # xl_migrate.c hides progress: without the shim (or with it turned off) no pass shows.
    assert pl.parse_xc_progress(hidden) == [] == pl.parse_xc_progress(off)
    assert "xc: progress: Frames iteration" not in hidden
    passes = pl.parse_xc_progress(shown)
    assert pl.progress_counts(passes) == counts[:6]  # 5 live passes, then the stop-and-copy of D_5
    assert [p["iteration"] for p in passes] == [0, 1, 2, 3, 4, 5]
    assert [p["phase"] for p in passes] == ["live"] * 5 + ["stop_and_copy"]
    # xl's logger shows a line only 5 % above the previous one: the 100 % line of a pass is
    # often not printed (xl -v shows all), so "sent" may stay below "total".
    assert [p["complete"] for p in passes] == [True, False, True, False, False, False]
    assert [p["sent"] for p in passes] == [65536, 5120, 2264, 2048, 2048, 2048]

    # The policy lines come through the same logger, unchanged by the shim.
    def calls(text):
        return [(r["iteration"], r["dirty_count"], r["decision"]) for r in migrations(text)[0]["records"]]

    assert calls(shown) == calls(hidden) and len(calls(shown)) == 10


def test_built_library_keeps_abi_and_carries_the_patch():
    libs = sorted(glob.glob(os.path.join(harness.CACHE, "artifacts", "*", "libxenguest.so.4.17.*")))
    if not libs or shutil.which("objdump") is None:
        pytest.skip("no libxenguest built by the xen_build role in %s" % harness.CACHE)
    for lib in libs:
        dyn = subprocess.run(["objdump", "-p", lib], check=True, capture_output=True, text=True).stdout
        assert re.search(r"SONAME\s+libxenguest\.so\.4\.17\n", dyn)
        assert "VERS_4.17.0" in dyn
        with open(lib, "rb") as f:
            data = f.read()
        assert b"xenlab-precopy: " in data and b"XENLAB_PRECOPY_" in data and b"/etc/xenlab/precopy.conf" in data
        info = os.path.join(os.path.dirname(lib), "build-info.txt")
        with open(info, encoding="utf-8") as f:
            assert "patches=xenlab-precopy-policy.patch" in f.read()
