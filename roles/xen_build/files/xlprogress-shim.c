/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * libxenlab-xlprogress.so - make stock `xl migrate` print libxc's progress lines.
 * Part of xenlab.migration (roles/xen_build).
 *
 * xl's migrate code (tools/xl/xl_migrate.c, migrate_domain) hides progress output while
 * the memory is sent:
 *     xtl_stdiostream_adjust_flags(logger, XTL_STDIOSTREAM_HIDE_PROGRESS, 0);
 * and libxl forwards libxc's progress reports from libxl-save-helper to that logger.
 * Preloaded into xl, this shim interposes xtl_stdiostream_adjust_flags (libxentoollog)
 * and drops the HIDE_PROGRESS bit from the flags to set, so xl prints per pass
 *     xc: progress: Frames iteration N: done/total  pct%
 * (total = pages of that pass; lines at least 5 % apart, `xl -v` adds the rest).
 *
 *     LD_PRELOAD=/usr/lib/xenlab/libxenlab-xlprogress.so xl migrate DOM HOST
 *
 * XENLAB_XLPROGRESS=0 in the environment turns it off without unsetting LD_PRELOAD.
 * Processes that never call the function (libxl-save-helper inherits LD_PRELOAD) are
 * not affected.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xentoollog.h>

typedef void adjust_flags_fn(xentoollog_logger_stdiostream *, unsigned, unsigned);

void xtl_stdiostream_adjust_flags(xentoollog_logger_stdiostream *lg,
                                  unsigned set_flags, unsigned clear_flags)
{
    static adjust_flags_fn *real;
    const char *off = getenv("XENLAB_XLPROGRESS");

    if ( !real )
    {
        real = (adjust_flags_fn *)dlsym(RTLD_NEXT, "xtl_stdiostream_adjust_flags");
        if ( !real )
        {
            fprintf(stderr, "libxenlab-xlprogress: xtl_stdiostream_adjust_flags not "
                    "found: %s\n", dlerror());
            abort();
        }
    }
    if ( !off || strcmp(off, "0") )
        set_flags &= ~XTL_STDIOSTREAM_HIDE_PROGRESS;
    real(lg, set_flags, clear_flags);
}
