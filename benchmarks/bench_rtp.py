# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""voip_quality's RTP analysis against ``tshark -q -z rtp,streams`` on the same large capture.

``make bench-rtp`` runs this. The capture (more than 100 000 real RTP packets: 40 concurrent
SIPp calls of 30 s through the impaired router of ``scripts/make-rtp-fixture``) is made once,
as root, and cached in ``.cache/bench/``. Then, side by side and alternating, each tool runs
``--repeat`` times as a fresh process on that file:

* ``tshark -n -q -r CAPTURE -z rtp,streams``;
* ``python`` computing the same statistics with ``plugins/module_utils/rtp.py`` (what
  ``voip_quality`` runs with ``jitter_buffers: false``): stream detection, packets, lost,
  deltas, RFC 3550 jitter, plus the loss-run and PDV counts;
* and, for information, the module's full analysis (``jitter_buffers: true``: three simulated
  jitter buffers and the MOS per stream), which tshark does not do.

It prints, for each, the best CPU time (user + system of the process, from getrusage) and the
best wall-clock time, the speed ratio (tshark time / ours), and the largest difference of any
stream's jitter (mean and max) and delta against tshark's. The ratio that is checked is the CPU
one: on a shared machine the wall clock also measures the neighbours (both are printed). It
fails (exit 1) unless both tools see the same streams with the same packet and loss counts,
every jitter is within 0.01 ms and the ratio is at least 1.0.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".collections"))

from ansible_collections.xenlab.migration.plugins.module_utils import rtp  # noqa: E402  pylint: disable=wrong-import-position

CACHE = os.path.join(ROOT, ".cache", "bench")
CAPTURE = os.path.join(CACHE, "rtp_bench.pcap")
CAPTURE_ARGS = ["--calls", "40", "--duration", "30", "--rate", "20", "--outage", "12:0.8"]
MIN_RTP_PACKETS = 100000
# Python caches compiled modules, as it does for any user; tshark does not recompile itself either.
CHILD_ENV = dict((key, value) for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE")
CHILD_ENV["PYTHONPYCACHEPREFIX"] = os.path.join(CACHE, "pycache")   # not next to the sources
JITTER_TOLERANCE_MS = 0.01

# The analysis as a fresh process, like tshark: interpreter start, imports, reading, analysing.
OURS = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from ansible_collections.xenlab.migration.plugins.module_utils import rtp
result = rtp.analyze_pcap(sys.argv[2], jitter_buffers=sys.argv[3] == "full")
keys = ("src", "dst", "ssrc", "packets", "lost", "delta_max_ms", "jitter_mean_ms", "jitter_max_ms", "mos_f1")
json.dump({"rtp_packets": result["rtp_packets"], "frames": result["frames"],
           "streams": [dict((key, stream[key]) for key in keys) for stream in result["streams"]]}, sys.stdout)
"""


def make_capture(args):
    """The cached capture, made by scripts/make-rtp-fixture when missing or made differently."""
    stamp = CAPTURE + ".args.json"
    wanted = CAPTURE_ARGS
    try:
        with open(stamp, encoding="utf-8") as handle:
            fresh = json.load(handle) == wanted and os.path.getsize(CAPTURE) > 0
    except (OSError, ValueError):
        fresh = False
    if fresh and not args.recapture:
        return
    if os.geteuid() != 0:
        sys.exit("bench_rtp: %s is missing; making it needs root (network namespaces)" % CAPTURE)
    os.makedirs(CACHE, exist_ok=True)
    print("bench_rtp: capturing %s (about a minute) ..." % CAPTURE, flush=True)
    done = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "make-rtp-fixture"), "capture",
                           "--out", CAPTURE] + wanted, stdout=subprocess.DEVNULL, check=False)
    if done.returncode != 0:
        sys.exit("bench_rtp: scripts/make-rtp-fixture failed (rc %d)" % done.returncode)
    with open(stamp, "w", encoding="utf-8") as handle:
        json.dump(wanted, handle)


def timed(argv):
    """(wall seconds, CPU seconds = user + system of the process, its stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False,
                          env=CHILD_ENV)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit("bench_rtp: %s failed (rc %d): %s" % (argv[0], done.returncode, done.stderr.strip()[-1000:]))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu, done.stdout


def compare(ours, theirs):
    """(problems, largest jitter difference, largest delta difference) of our streams vs tshark's."""
    mine = dict(((s["src"], s["dst"], s["ssrc"]), s) for s in ours)
    tshark = dict(((s["src"], s["dst"], s["ssrc"]), s) for s in theirs)
    problems = []
    if sorted(mine) != sorted(tshark):
        problems.append("different streams: %s" % sorted(set(mine) ^ set(tshark)))
    jitter_diff = delta_diff = 0.0
    for key in sorted(set(mine) & set(tshark)):
        a, b = mine[key], tshark[key]
        if (a["packets"], a["lost"]) != (b["packets"], b["lost"]):
            problems.append("%s: packets/lost %s/%s, tshark %s/%s" % (key, a["packets"], a["lost"], b["packets"], b["lost"]))
        jitter_diff = max(jitter_diff, abs(a["jitter_max_ms"] - b["jitter_max_ms"]),
                          abs(a["jitter_mean_ms"] - b["jitter_mean_ms"]))
        delta_diff = max(delta_diff, abs(a["delta_max_ms"] - b["delta_max_ms"]))
    return problems, jitter_diff, delta_diff


def main():
    parser = argparse.ArgumentParser(description="voip_quality's RTP analysis vs tshark -z rtp,streams")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each tool; the best time counts")
    parser.add_argument("--recapture", action="store_true", help="make the capture again")
    parser.add_argument("--pcap", help="benchmark this capture instead of the cached one")
    args = parser.parse_args()
    if shutil.which("tshark") is None:
        sys.exit("bench_rtp: tshark is missing (Debian package tshark)")
    capture = os.path.abspath(args.pcap) if args.pcap else CAPTURE
    if not args.pcap:
        make_capture(args)
    tshark_argv = ["tshark", "-n", "-q", "-r", capture, "-z", "rtp,streams"]
    ours_argv = [sys.executable, "-c", OURS, os.path.join(ROOT, ".collections"), capture]
    wall = {"tshark": [], "ours": [], "full": []}
    cpu = {"tshark": [], "ours": [], "full": []}
    timed(tshark_argv)                              # warm up: page cache, compiled modules
    timed(ours_argv + ["stats"])
    for _round in range(max(1, args.repeat)):     # alternate, so that both see the same machine
        for name, argv in (("tshark", tshark_argv), ("ours", ours_argv + ["stats"])):
            elapsed, used, out = timed(argv)
            wall[name].append(elapsed)
            cpu[name].append(used)
            if name == "tshark":
                tshark_out = out
            else:
                ours_out = out
    elapsed, used, full_out = timed(ours_argv + ["full"])
    wall["full"].append(elapsed)
    cpu["full"].append(used)

    theirs = rtp.parse_tshark_streams(tshark_out)
    ours = json.loads(ours_out)
    full = json.loads(full_out)
    problems, jitter_diff, delta_diff = compare(ours["streams"], theirs)
    problems += compare(full["streams"], theirs)[0]
    best_cpu = dict((name, min(values)) for name, values in cpu.items())
    best_wall = dict((name, min(values)) for name, values in wall.items())
    ratio = best_cpu["tshark"] / best_cpu["ours"]
    print("capture        %s (%.1f MB, %d frames, %d RTP packets in %d streams)"
          % (os.path.relpath(capture, ROOT), os.path.getsize(capture) / 1e6, ours["frames"], ours["rtp_packets"],
             len(ours["streams"])))
    print("               CPU s (best of %d)   wall s (best)   load average %.2f" % (args.repeat, os.getloadavg()[0]))
    print("tshark         %-20.3f %.3f" % (best_cpu["tshark"], best_wall["tshark"]))
    print("voip_quality   %-20.3f %.3f   same statistics (jitter_buffers: false)" % (best_cpu["ours"], best_wall["ours"]))
    print("speed ratio    %-20.2f %.2f   tshark time / ours" % (ratio, best_wall["tshark"] / best_wall["ours"]))
    print("largest jitter difference %.6f ms (mean and max jitter of every stream); largest max-delta difference %.6f ms"
          % (jitter_diff, delta_diff))
    print("full analysis  %-20.3f %.3f   + three jitter buffers and MOS per stream (ratio %.2f, not gated)"
          % (best_cpu["full"], best_wall["full"], best_cpu["tshark"] / best_cpu["full"]))
    if ours["rtp_packets"] < MIN_RTP_PACKETS:
        problems.append("only %d RTP packets, the benchmark wants at least %d" % (ours["rtp_packets"], MIN_RTP_PACKETS))
    if jitter_diff > JITTER_TOLERANCE_MS:
        problems.append("jitter differs from tshark's by %.6f ms (> %.2f)" % (jitter_diff, JITTER_TOLERANCE_MS))
    if ratio < 1.0:
        problems.append("voip_quality is slower than tshark (ratio %.2f < 1.0)" % ratio)
    for problem in problems:
        print("FAIL: %s" % problem)
    print("bench_rtp: %s" % ("FAILED" if problems else "ok"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
