# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build and drive the policy code of roles/xen_build's libxenguest patch outside Xen.

The patch adds tools/libs/guest/xg_sr_xenlab_policy.h (everything the policies need, static
functions only) and calls it from xg_sr_save.c. ``HARNESS_C`` includes that header, exactly
as the patch writes it, and runs a copy of send_memory_live's loop (Xen 4.17
tools/libs/guest/xg_sr_save.c) on recorded dirty counts, with the progress reports
send_dirty_pages makes. Compiled with the flags Xen's tools use (-std=gnu99 -Wall -Werror
plus Debian's hardening flags).

Two builds: a stand-alone one whose "libxc logger" prints ``xc: <level>: <message>`` lines to
stderr as xl would, and, when a Xen build tree is available (the xen_build role's cache), one
linked to that tree's real libxentoollog whose stdio logger is set up like xl's (progress
hidden during migrate, see xl_migrate.c), so that the xlprogress shim can be tested on it.

Commands read from stdin, one per line (answers on stdout):
    setenv NAME VALUE | unsetenv NAME   change the environment the policy reads
    begin DOMID       read the settings (xlpc_begin): "begin ok" or "begin error <message>"
    call IT TW DC     one policy call: prints the decision (-1, 0, 1)
    loop P D1 D2 ...  send_memory_live on these counts: "stopped IT before|after PASSES FINAL",
                      "aborted IT" or "short IT" (the policy wanted more counts than given);
                      FINAL is the stop-and-copy's pages (D_PASSES) or -1 if not given
    end               xlpc_end (closes a log file)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
ROLE = os.path.join(ROOT, "roles", "xen_build")
PATCH = os.path.join(ROLE, "files", "xen-4.17", "xenlab-precopy-policy.patch")
SHIM = os.path.join(ROLE, "files", "xlprogress-shim.c")
HEADER = "tools/libs/guest/xg_sr_xenlab_policy.h"
# The role's cache (xen_build_cache_dir); override with XENLAB_XEN_BUILD_CACHE.
CACHE = os.environ.get("XENLAB_XEN_BUILD_CACHE", os.path.join(ROOT, ".cache", "xen-build"))

# Xen's tools flags (Config.mk, tools/Rules.mk) and Debian's hardening (dpkg-buildflags, bookworm).
CFLAGS = ["-std=gnu99", "-O2", "-Wall", "-Wstrict-prototypes", "-Wno-unused-but-set-variable",
          "-Wno-unused-local-typedefs", "-Werror", "-g", "-fstack-protector-strong", "-Wformat",
          "-Werror=format-security", "-D_FORTIFY_SOURCE=2", "-fcf-protection"]

# Xen 4.17 tools/libs/guest/xg_sr_save.c, verbatim (checked against the source when it is
# in the cache: test_stock_policy_copy_is_verbatim).
STOCK_POLICY = """\
#define SPP_MAX_ITERATIONS      5
#define SPP_TARGET_DIRTY_COUNT 50

static int simple_precopy_policy(struct precopy_stats stats, void *user)
{
    return ((stats.dirty_count >= 0 &&
             stats.dirty_count < SPP_TARGET_DIRTY_COUNT) ||
            stats.iteration >= SPP_MAX_ITERATIONS)
        ? XGS_POLICY_STOP_AND_COPY
        : XGS_POLICY_CONTINUE_PRECOPY;
}
"""

HARNESS_C = r"""
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

/* tools/include/xenguest.h */
struct precopy_stats
{
    unsigned int iteration;
    unsigned long total_written;
    long dirty_count; /* -1 if unknown */
};
#define XGS_POLICY_ABORT          (-1)
#define XGS_POLICY_CONTINUE_PRECOPY 0
#define XGS_POLICY_STOP_AND_COPY    1
typedef int (*precopy_policy_t)(struct precopy_stats, void *);

#ifdef XLH_REAL_XTL
/* The real libxentoollog: the logger stands where libxc's xch->error_handler would. */
#include <xentoollog.h>
typedef struct xentoollog_logger_stdiostream xc_interface;
#define XLPC_LOG_INFO(xch, fmt, a...) \
    xtl_log((xentoollog_logger *)(xch), XTL_INFO, -1, "xc", fmt, ## a)
#define XLPC_LOG_ERROR(xch, fmt, a...) \
    xtl_log((xentoollog_logger *)(xch), XTL_ERROR, -1, "xc", fmt, ## a)
static xentoollog_logger_stdiostream *lg;
static void progress(const char *doing, unsigned long done, unsigned long total)
{
    xtl_progress((xentoollog_logger *)lg, "xc", doing, done, total);
}
#else
typedef struct xlh_interface xc_interface;
#define XLPC_LOG_INFO(xch, fmt, a...) \
    ((void)(xch), fprintf(stderr, "xc: info: " fmt "\n", ## a))
#define XLPC_LOG_ERROR(xch, fmt, a...) \
    ((void)(xch), fprintf(stderr, "xc: error: " fmt "\n", ## a))
static xc_interface *lg;
static void progress(const char *doing, unsigned long done, unsigned long total)
{
    (void)doing; (void)done; (void)total;
}
#endif

@STOCK_POLICY@

#include "xg_sr_xenlab_policy.h"

static struct xlpc_run run;

/* send_dirty_pages' progress reports: every 1024 pages, then entries/entries. */
static void send_pages(unsigned int label, unsigned long entries)
{
    char doing[64];
    unsigned long written;

    snprintf(doing, sizeof(doing), "Frames iteration %u", label);
    for ( written = 0; written < entries; written++ )
        if ( (written & ((1U << (22 - 12)) - 1)) == 0 )
            progress(doing, written, entries);
    progress(doing, entries, entries);
}

/* send_memory_live (Xen 4.17), on recorded counts d[0] = P, d[k] = D_k. */
static void loop(const long *d, unsigned int n)
{
    struct precopy_stats stats = { .dirty_count = d[0] };
    unsigned long send = d[0];
    unsigned int x = 0;
    int decision;

    for ( ; ; )
    {
        decision = xlpc_callback(stats, &run);
        x++;
        if ( send > 0 && decision != XGS_POLICY_ABORT )
            send_pages(stats.iteration, send);
        if ( decision != XGS_POLICY_CONTINUE_PRECOPY )
            break;
        stats.iteration = x;
        stats.total_written += stats.dirty_count;
        stats.dirty_count = -1;
        decision = xlpc_callback(stats, &run);
        if ( decision != XGS_POLICY_CONTINUE_PRECOPY )
            break;
        if ( x >= n )
        {
            printf("short %u\n", stats.iteration);
            return;
        }
        stats.dirty_count = d[x];
        send = d[x];
    }
    if ( decision == XGS_POLICY_ABORT )
    {
        printf("aborted %u\n", stats.iteration);
        return;
    }
    /* suspend_and_send_dirty */
    xlpc_final(&run, 0, 0, 0);
    progress("Domain now suspended", 0, 0);
    xlpc_final(&run, 1, 0, 0);
    if ( x < n )
    {
        send_pages(stats.iteration, d[x]);
        xlpc_final(&run, 2, stats.iteration, d[x]);
    }
    printf("stopped %u %s %u %ld\n", stats.iteration,
           stats.dirty_count < 0 ? "after" : "before", x, x < n ? d[x] : -1L);
}

int main(void)
{
    static char buf[1 << 20];
    static long d[100000];

#ifdef XLH_REAL_XTL
    /* As xl.c and xl_migrate.c do. */
    lg = xtl_createlogger_stdiostream(stderr, XTL_PROGRESS, 0);
    if ( !lg )
        return 3;
    xtl_stdiostream_adjust_flags(lg, XTL_STDIOSTREAM_HIDE_PROGRESS, 0);
#endif
    setvbuf(stdout, NULL, _IOLBF, 0);
    while ( fgets(buf, sizeof(buf), stdin) )
    {
        char *cmd = strtok(buf, " \n");

        if ( !cmd )
            continue;
        if ( !strcmp(cmd, "setenv") )
        {
            char *name = strtok(NULL, " \n"), *value = strtok(NULL, "\n");

            setenv(name, value ? value : "", 1);
        }
        else if ( !strcmp(cmd, "unsetenv") )
            unsetenv(strtok(NULL, " \n"));
        else if ( !strcmp(cmd, "begin") )
        {
            if ( xlpc_begin(&run, (xc_interface *)lg, (uint32_t)atoi(strtok(NULL, " \n")),
                            simple_precopy_policy) )
                printf("begin error %s\n", run.error);
            else
                printf("begin ok\n");
        }
        else if ( !strcmp(cmd, "call") )
        {
            struct precopy_stats s;

            s.iteration = (unsigned int)strtoul(strtok(NULL, " \n"), NULL, 10);
            s.total_written = strtoul(strtok(NULL, " \n"), NULL, 10);
            s.dirty_count = strtol(strtok(NULL, " \n"), NULL, 10);
            printf("%d\n", xlpc_callback(s, &run));
        }
        else if ( !strcmp(cmd, "loop") )
        {
            unsigned int n = 0;
            char *tok;

            while ( (tok = strtok(NULL, " \n")) != NULL && n < 100000 )
                d[n++] = strtol(tok, NULL, 10);
            loop(d, n);
        }
        else if ( !strcmp(cmd, "end") )
            xlpc_end(&run);
        else
            return 2;
    }
    xlpc_end(&run);
    return 0;
}
"""


def extract_new_file(patch_text, path):
    """The content of a file the patch creates (a /dev/null or empty 'a' side, one hunk)."""
    lines = patch_text.split("\n")
    for i, line in enumerate(lines):
        if line == "+++ b/" + path:
            hunk = lines[i + 1]
            match = re.match(r"@@ -0,0 \+1,(\d+) @@", hunk)
            if not match:
                raise ValueError("%s is not created by the patch (hunk %r)" % (path, hunk))
            body = [ln[1:] for ln in lines[i + 2:i + 2 + int(match.group(1))]]
            if not all(ln.startswith("+") for ln in lines[i + 2:i + 2 + int(match.group(1))]):
                raise ValueError("unexpected lines in the new file hunk of %s" % path)
            return "\n".join(body) + "\n"
    raise ValueError("the patch does not create %s" % path)


def build_tree():
    """A Xen build tree from the xen_build role's cache (libxentoollog built), or None."""
    work = os.path.join(CACHE, "chroot", "build", "work")
    if os.path.exists(os.path.join(work, "tools", "libs", "toollog", "libxentoollog.so.1")) and \
            os.path.exists(os.path.join(work, "tools", "include", "xentoollog.h")):
        return work
    return None


def source_tree():
    """The pristine `apt-get source xen` tree in the role's cache, or None."""
    src = os.path.join(CACHE, "chroot", "build", "src")
    if not os.path.isdir(src):
        return None
    for name in sorted(os.listdir(src)):
        if name.startswith("xen-") and os.path.isfile(os.path.join(src, name, "tools", "libs", "guest", "xg_sr_save.c")):
            return os.path.join(src, name)
    return None


def compile_harness(directory, real_xtl_tree=None):
    """Write the header (from the patch) and the driver to directory, compile, return the binary."""
    gcc = shutil.which("gcc")
    if gcc is None:
        raise FileNotFoundError("gcc")
    with open(PATCH, encoding="utf-8") as f:
        header = extract_new_file(f.read(), HEADER)
    with open(os.path.join(directory, "xg_sr_xenlab_policy.h"), "w", encoding="utf-8") as f:
        f.write(header)
    source = os.path.join(directory, "harness.c")
    with open(source, "w", encoding="utf-8") as f:
        f.write(HARNESS_C.replace("@STOCK_POLICY@", STOCK_POLICY))
    binary = os.path.join(directory, "harness-xtl" if real_xtl_tree else "harness")
    cmd = [gcc] + CFLAGS + ["-I", directory, "-o", binary, source]
    if real_xtl_tree:
        lib = os.path.join(real_xtl_tree, "tools", "libs", "toollog")
        cmd[1:1] = ["-DXLH_REAL_XTL", "-I", os.path.join(real_xtl_tree, "tools", "include")]
        cmd += ["-L", lib, "-l:libxentoollog.so.1", "-Wl,-rpath," + lib]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return binary


def compile_shim(directory, tree):
    """The xlprogress shim, built as the role builds it (against the tree's xentoollog.h)."""
    out = os.path.join(directory, "libxenlab-xlprogress.so")
    subprocess.run([shutil.which("gcc") or "gcc", "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror",
                    "-I", os.path.join(tree, "tools", "include"), "-o", out, SHIM, "-ldl"],
                   check=True, capture_output=True, text=True)
    return out


def clean_env(extra=None):
    """The test process's environment without XENLAB_* and LD_PRELOAD, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("XENLAB_") and k != "LD_PRELOAD"}
    env["XENLAB_PRECOPY_CONF"] = "/nonexistent/xenlab-test/precopy.conf"
    env.update(extra or {})
    return env


def run(binary, script, env=None, timeout=60):
    """Run the harness on a list of commands: (stdout lines, stderr text)."""
    proc = subprocess.run([binary], input="\n".join(script) + "\n", capture_output=True, text=True,
                          env=clean_env(env), timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError("harness failed (rc %d): %s" % (proc.returncode, proc.stderr[-2000:]))
    return proc.stdout.split("\n")[:-1], proc.stderr


def loop_script(policy, counts, params=None, domid=1, log=None):
    """Commands for one migration: settings in the environment, begin, loop, end."""
    script = ["setenv XENLAB_PRECOPY_POLICY %s" % policy]
    for key, value in sorted((params or {}).items()):
        script.append("setenv XENLAB_PRECOPY_%s %s" % (key.upper(), value))
    if log:
        script.append("setenv XENLAB_PRECOPY_LOG %s" % log)
    script += ["begin %d" % domid, "loop " + " ".join(str(c) for c in counts), "end"]
    for key in sorted(params or {}):
        script.append("unsetenv XENLAB_PRECOPY_%s" % key.upper())
    script += ["unsetenv XENLAB_PRECOPY_POLICY", "unsetenv XENLAB_PRECOPY_LOG"]
    return script
