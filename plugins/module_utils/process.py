# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Starting processes the way AnsibleModule.run_command cannot (stdlib only).

* :func:`spawn_detached`: a long-running process (QEMU, the lab gateway, a probe) in its own
  session with no descriptor inherited from Ansible, so it outlives the module; callers record
  its PID and later stop it by that PID.
* :func:`run_timestamped`: a command whose output lines are time-stamped as they arrive
  (migration phases and per-iteration progress), with a timeout that stops the command's whole
  process group.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time


def spawn_detached(argv, stdout_path, stderr_path=None, cwd=None, env=None):
    """Start argv detached, output appended to stdout_path (and stderr_path, default the same).

    Returns the subprocess.Popen object (its pid, poll()). Raises OSError when the log cannot be
    opened or the program cannot be started.
    """
    out = open(stdout_path, "ab")
    try:
        err = open(stderr_path, "ab") if stderr_path else out
        try:
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=cwd, env=env,
                                    close_fds=True, start_new_session=True)
        finally:
            if err is not out:
                err.close()
    finally:
        out.close()


def _split_lines(buf):
    """Complete lines (split on LF or CR) and the unfinished rest."""
    lines = []
    while True:
        cuts = [i for i in (buf.find(b"\n"), buf.find(b"\r")) if i >= 0]
        if not cuts:
            return lines, buf
        i = min(cuts)
        lines.append(buf[:i])
        buf = buf[i + 1:]


def run_timestamped(argv, env=None, timeout=None, term_grace=10.0):
    """Run argv; return (rc, [(t_ms, line)], timed_out, total_ms).

    stdout and stderr are merged; each non-blank line carries the milliseconds since the start
    at which it was read. On timeout the command's process group gets SIGTERM, then SIGKILL
    after term_grace seconds.
    """
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=env, start_new_session=True)
    lines, buf, timed_out = [], b"", False
    fd = proc.stdout.fileno()

    def elapsed_ms():
        return round((time.monotonic() - t0) * 1000.0, 1)

    while True:
        wait = 1.0
        if timeout is not None:
            remaining = timeout - (time.monotonic() - t0)
            if remaining <= 0:
                timed_out = True
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(term_grace)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                break
            wait = min(wait, remaining)
        ready = select.select([fd], [], [], wait)[0]
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        now = elapsed_ms()
        done, buf = _split_lines(buf + chunk)
        lines.extend((now, raw.decode("utf-8", "replace")) for raw in done if raw.strip())
    if buf.strip():
        lines.append((elapsed_ms(), buf.decode("utf-8", "replace")))
    proc.stdout.close()
    rc = proc.wait()
    return rc, lines, timed_out, (time.monotonic() - t0) * 1000.0


def read_proc_stat(pid):
    """(state letter, start time in clock ticks) of a process, or None if there is none."""
    try:
        with open("/proc/%d/stat" % pid, "r") as handle:
            text = handle.read()
    except (IOError, OSError):
        return None
    # The command name is in parentheses and may itself contain spaces or parentheses.
    fields = text[text.rfind(")") + 2:].split()
    try:
        return fields[0], int(fields[19])
    except (IndexError, ValueError):
        return None


def read_cmdline(pid):
    """A process's argument vector, or None if there is no such process."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            raw = handle.read()
    except (IOError, OSError):
        return None
    parts = raw.split(b"\0")
    if parts and parts[-1] == b"":
        parts.pop()
    return [part.decode("utf-8", "surrogateescape") for part in parts]


def check_alive(pid, start_ticks):
    """(True, '') if PID runs and, when start_ticks is given, is still the process that started
    then (a recycled PID has another start time); else (False, why not)."""
    stat = read_proc_stat(pid)
    if stat is None:
        return False, "process %d no longer exists" % pid
    if stat[0] in ("Z", "X"):
        return False, "process %d has exited" % pid
    if start_ticks is not None and stat[1] != start_ticks:
        return False, "PID %d now belongs to another process (its start time differs)" % pid
    return True, ""
