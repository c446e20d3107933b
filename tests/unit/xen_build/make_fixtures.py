# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Regenerate tests/fixtures/precopy_log/ from the patched policy code (see its README.md).

Needs gcc and a Xen build tree in the xen_build role's cache (run the role, or
XENLAB_XEN_BUILD_CACHE=DIR): the logs are what the patch's C code and Xen's own
libxentoollog print, with the xlprogress shim preloaded. Run from the repository root:

    .venv/bin/python tests/unit/xen_build/make_fixtures.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", ".collections"))

import xen_build_harness as harness  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.xenlab.migration.plugins.module_utils import stop_policy as sp  # noqa: E402  pylint: disable=wrong-import-position

OUT = os.path.join(harness.ROOT, "tests", "fixtures", "precopy_log")
P = 65536  # a 256 MiB guest
LINK_PPS = 10000  # pages per second, about 41 MB/s


def traces():
    """Dirty counts [P, D_1, ..., D_29, final] of four workloads, recorded by simulating xen34."""
    models = {
        # 2000-page hot set rewritten faster than the link, plus 500 pages/s elsewhere.
        "nonconverging": sp.HotSetModel(P, 2000, 1e6, 500),
        # 500-page hot set plus 6000 pages/s: D_(k+1) = 500 + 0.6 D_k.
        "converging": sp.HotSetModel(P, 500, 1e6, 6000),
    }
    out = {}
    for name, model in models.items():
        out[name] = sp.simulate("xen34", model, LINK_PPS * 4096)["trace"]
    # A steady dirty set of about 2000 pages with a swing of +-250 (the thesis's SD band).
    swing = [0, 250, -250, 180, -300, 220, -150, 260, -240, 100, -280, 310, -200, 150, -260, 240, -120, 290,
             -310, 200, -170, 230, -250, 140, -220, 260, -190, 210, -230]
    out["plateau"] = [P, 9000] + [2000 + s for s in swing]
    out["idle"] = [P, 180, 40, 12]
    return out


RUNS = [
    ("xen", "nonconverging", {}),
    ("xen34", "nonconverging", {}),
    ("sd", "plateau", {}),
    ("sd", "plateau", {"track_from": 4, "sd_low": 150, "sd_high": 300}),
    ("adaptive", "nonconverging", {}),
    ("adaptive", "converging", {}),
    ("xen", "idle", {}),
]


def main():
    tree = harness.build_tree()
    if tree is None:
        sys.exit("no Xen build tree in %s: run the xen_build role first" % harness.CACHE)
    recorded = traces()
    expected = {"traces": recorded, "runs": []}
    with tempfile.TemporaryDirectory(prefix="xlxb-fix-") as tmp:
        binary = harness.compile_harness(tmp, real_xtl_tree=tree)
        shim = harness.compile_shim(tmp, tree)
        log = os.path.join(tmp, "precopy.log")
        file_script = []
        for index, (policy, trace, params) in enumerate(RUNS, 1):
            script = harness.loop_script(policy, recorded[trace], params, domid=index)
            out, err = harness.run(binary, script, env={"LD_PRELOAD": shim})
            name = "xl-migrate-%02d-%s-%s.stderr" % (index, policy, trace)
            with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
                f.write(err)
            expected["runs"].append({"file": name, "policy": policy, "trace": trace, "params": params,
                                     "harness": out[-1]})
            file_script += harness.loop_script(policy, recorded[trace], params, domid=index, log=log)
        # The same migrations without the shim: xl hides the progress lines.
        out, err = harness.run(binary, harness.loop_script("xen", recorded["nonconverging"], {}, domid=1))
        with open(os.path.join(OUT, "xl-migrate-noshim.stderr"), "w", encoding="utf-8") as f:
            f.write(err)
        # All runs appended to one log file (XENLAB_PRECOPY_LOG=/path), then a refused setting.
        file_script += ["setenv XENLAB_PRECOPY_LOG " + log, "setenv XENLAB_PRECOPY_POLICY sd",
                        "setenv XENLAB_PRECOPY_SD_LOW 400", "begin 99"]
        out, err = harness.run(binary, file_script)
        with open(log, encoding="utf-8") as f:
            text = f.read()
        with open(os.path.join(OUT, "precopy-file.log"), "w", encoding="utf-8") as f:
            f.write(text)
        expected["file_harness"] = out
    with open(os.path.join(OUT, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    print("wrote %s" % OUT)


if __name__ == "__main__":
    main()
