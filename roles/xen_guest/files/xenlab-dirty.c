/* xenlab-dirty: dirty guest memory at a set rate inside a set working set, so that migration
 * experiments control the dirty rate p of the thesis's pre-copy model (Eq. 1).
 *
 * usage: xenlab-dirty RATE_PAGES_PER_S WSS_MIB
 * Every 10 ms it writes one word into each of the next RATE/100 pages of a WSS_MIB buffer,
 * cycling through the buffer, so at most WSS pages are dirty per pre-copy round.
 * Rate 0 only holds the memory. It prints a status line every 10 s. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define TICK_NS 10000000L

static long parse(const char *s, const char *what, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < 0 || v > max) {
        fprintf(stderr, "xenlab-dirty: %s must be an integer from 0 to %ld, not '%s'\n", what, max, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: xenlab-dirty RATE_PAGES_PER_S WSS_MIB\n");
        return 2;
    }
    long rate = parse(argv[1], "RATE_PAGES_PER_S", 10000000L);
    long wss_mib = parse(argv[2], "WSS_MIB", 1L << 20);
    size_t pages = (size_t)wss_mib * (1024UL * 1024UL / PAGE);
    if (pages == 0) pages = 1;
    unsigned char *buf = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (buf == MAP_FAILED) {
        perror("xenlab-dirty: mmap");
        return 1;
    }
    /* The carry makes rates that are not multiples of 100 exact over a second. */
    long carry = 0, status_ticks = 0;
    size_t next = 0;
    unsigned long long total = 0, stamp = 0;
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("xenlab-dirty: rate=%ld pages/s wss=%ld MiB (%zu pages)\n", rate, wss_mib, pages);
    for (;;) {
        carry += rate;
        long n = carry / 100;
        carry %= 100;
        stamp++;
        for (long i = 0; i < n; i++) {
            *(volatile unsigned long long *)(buf + next * PAGE + (stamp % (PAGE / 8)) * 8) = stamp;
            if (++next == pages) next = 0;
        }
        total += (unsigned long long)n;
        if (++status_ticks == 1000) {
            status_ticks = 0;
            printf("xenlab-dirty: %llu page writes\n", total);
        }
        t.tv_nsec += TICK_NS;
        if (t.tv_nsec >= 1000000000L) { t.tv_nsec -= 1000000000L; t.tv_sec++; }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR)
            ;
    }
}
