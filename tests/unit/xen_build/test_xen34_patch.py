# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The thesis-era patch for Xen 3.4's xc_domain_save.c (roles/xen_build/files/xen-3.4/).

No Xen 3.4 tree is at hand, so this checks what can be checked here: the patch is a
well-formed unified diff that applies to the lines it quotes, and its SD code, compiled with
stand-ins for xc_shadow_control and DPRINTF, stops where stop_policy.py's `sd` policy stops
on the same dirty counts (its sd_band rule: samples from iteration 2, tested from 10,
200 < sigma < 350).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import statistics
import subprocess

import pytest

from ansible_collections.xenlab.migration.plugins.module_utils import stop_policy as sp

PATCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "roles", "xen_build", "files",
                     "xen-3.4", "xc_domain_save-sd-tracking.patch")

DRIVER = r"""
#include <stdio.h>
#include <stdint.h>
typedef struct { uint32_t fault_count; uint32_t dirty_count; } xc_shadow_op_stats_t;
#define XEN_DOMCTL_SHADOW_OP_PEEK 12
#define DPRINTF(_f, _a...) fprintf(stderr, _f, ## _a)
static long long next_dirty;
static int xc_shadow_control(int xc_handle, uint32_t domid, unsigned int sop, unsigned long *bitmap,
                             unsigned long pages, unsigned long *mb, uint32_t mode,
                             xc_shadow_op_stats_t *stats)
{
    (void)xc_handle; (void)domid; (void)bitmap; (void)pages; (void)mb; (void)mode;
    if ( sop != XEN_DOMCTL_SHADOW_OP_PEEK || next_dirty < 0 )
        return -1;
    stats->dirty_count = (uint32_t)next_dirty;
    return 0;
}
#include "added.c"
int main(void)
{
    int iter;
    long long d;
    /* lines: "ITER DIRTY" -> 0/1 */
    while ( scanf("%d %lld", &iter, &d) == 2 )
    {
        next_dirty = d;
        printf("%d\n", sd_stop(1, 7, iter));
    }
    return 0;
}
"""


def read_patch():
    with open(PATCH, encoding="utf-8") as f:
        return f.read()


def hunks(text):
    """[(old_start, old_len, new_start, new_len, lines)] of the unified diff."""
    out, lines = [], text.split("\n")
    for i, line in enumerate(lines):
        match = re.match(r"@@ -(\d+),(\d+) \+(\d+),(\d+) @@", line)
        if match:
            body = []
            for nxt in lines[i + 1:]:
                if nxt.startswith("@@") or not nxt or nxt[0] not in " +-":
                    break
                body.append(nxt)
            out.append(tuple(int(g) for g in match.groups()) + (body,))
    return out


def test_patch_is_a_well_formed_diff_for_xc_domain_save():
    text = read_patch()
    assert "UNTESTED" in text.split("---\n", 1)[0]
    assert re.search(r"^--- a/tools/libxc/xc_domain_save\.c$", text, re.M)
    assert re.search(r"^\+\+\+ b/tools/libxc/xc_domain_save\.c$", text, re.M)
    found = hunks(text)
    assert len(found) == 2
    shift = 0
    for old_start, old_len, new_start, new_len, body in found:
        assert old_len == sum(1 for ln in body if ln[0] in " -")
        assert new_len == sum(1 for ln in body if ln[0] in " +")
        assert new_start == old_start + shift
        shift += new_len - old_len
        # Three lines of context on each side, as diff -u writes them.
        assert all(ln[0] == " " for ln in body[:3] + body[-3:])
    # The stop block keeps Xen 3.4's four rules and adds the SD rule after them.
    stop = "\n".join(found[1][4])
    for rule in ("RATE_IS_MAX()", "(iter >= max_iters)", "(sent_this_iter+skip_this_iter < 50)",
                 "(total_sent > p2m_size*max_factor)", "sd_stop(xc_handle, dom, iter)"):
        assert rule in stop


def test_patch_applies_to_the_lines_it_quotes(tmp_path):
    if shutil.which("patch") is None:
        pytest.skip("patch is not installed")
    # A stand-in file: each hunk's old side at its line, filler lines between.
    old = []
    for old_start, _ol, _ns, _nl, body in hunks(read_patch()):
        while len(old) < old_start - 1:
            old.append("/* filler %d */" % len(old))
        old += [ln[1:] for ln in body if ln[0] in " -"]
    target = tmp_path / "tools" / "libxc" / "xc_domain_save.c"
    target.parent.mkdir(parents=True)
    target.write_text("\n".join(old + ["/* end */"]) + "\n", encoding="utf-8")
    with open(PATCH, "rb") as f:
        proc = subprocess.run(["patch", "-p1", "--fuzz=0", "--no-backup-if-mismatch"], stdin=f, cwd=str(tmp_path),
                              capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    patched = target.read_text(encoding="utf-8")
    assert "static int sd_stop(int xc_handle, uint32_t dom, int iter)" in patched


@pytest.fixture(scope="module", name="sd_stop")
def sd_stop_fixture(tmp_path_factory):
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed")
    added = [ln[1:] for ln in hunks(read_patch())[0][4] if ln.startswith("+")]
    d = tmp_path_factory.mktemp("xen34")
    (d / "added.c").write_text("\n".join(added) + "\n", encoding="utf-8")
    (d / "driver.c").write_text(DRIVER, encoding="utf-8")
    # Xen 3.4 built with gcc's gnu89 default and -Wall -Werror.
    subprocess.run([gcc, "-std=gnu89", "-O2", "-Wall", "-Werror", "-Wno-unused-function", "-o", str(d / "drv"),
                    str(d / "driver.c")], check=True, capture_output=True, text=True)

    def run(pairs):
        proc = subprocess.run([str(d / "drv")], input="".join("%d %d\n" % p for p in pairs), capture_output=True,
                              text=True, check=True, timeout=60)
        return [int(v) for v in proc.stdout.split()], proc.stderr
    return run


def test_sd_stop_agrees_with_the_sd_policy(sd_stop):
    rng = random.Random(34)
    pages = 262144
    script, expected_stops = [], []
    for _m in range(300):
        level = rng.randint(700, 20000)
        swing = rng.choice([150, 199, 200, 201, 260, 349, 350, 351, 600])
        steady = [level + (swing if k % 2 else -swing) + rng.choice([0, 0, 1, -1]) for k in range(27)]
        dirty = [rng.randint(level, 3 * level)] + steady
        # Xen 3.4 calls sd_stop after iteration k with D_k while its own rules go on.
        pol = sp.SDPolicy(max_iterations=40, target_dirty_count=0, max_factor=1 << 20)
        stop_at = None
        pol(0, 0, pages)
        for k, d in enumerate(dirty, 1):
            decision = pol(k, 0, d)
            script.append((k, d))
            if decision == sp.XGS_POLICY_STOP_AND_COPY:
                stop_at = k
                break
        expected_stops.append((stop_at, stop_at or len(dirty)))
    got, log = sd_stop(script)
    # Split the answers per migration (each starts at iteration 1).
    per_run, pos = [], 0
    for _stop_at, n in expected_stops:
        answers = got[pos:pos + n]
        pos += n
        per_run.append(answers.index(1) + 1 if 1 in answers else None)
    assert per_run == [s for s, _n in expected_stops]
    assert sum(1 for s in per_run if s is not None) > 100
    assert sum(1 for s in per_run if s is None) > 20
    assert log.count("xenlab-sd: iter ") == len(script)


def test_sd_stop_band_edges_by_hand(sd_stop):
    # Samples D_2..D_10 = 1000 -+ half alternating (five below, four above): sigma is
    # half * sqrt(80) / 9, 198.8 pages for half = 200 (below the band), 201.8 for 203.
    def run(half):
        pairs = [(1, 5000)] + [(k, 1000 + (half if k % 2 else -half)) for k in range(2, 11)]
        return sd_stop(pairs)[0]
    assert statistics.pstdev([1000 + (200 if k % 2 else -200) for k in range(2, 11)]) < 200
    assert run(200)[-1] == 0 and run(203)[-1] == 1
    # Nothing is tested before iteration 10, whatever the deviation.
    assert run(300)[:-1] == [0] * 9 and run(300)[-1] == 1
    # A failing PEEK leaves the decision to Xen's own rules.
    assert sd_stop([(1, 5000), (2, -1)])[0] == [0, 0]
