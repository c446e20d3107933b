# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Measurement records and crash-safe JSON result files (stdlib only).

A record is one JSON object::

    {"schema_version": 1, "kind": "downtime_probe", "host": "client",
     "recorded_utc": "2024-05-01T12:00:03.120000Z",
     "started_utc": "...", "finished_utc": "...",
     "params": {"interval_ms": 10, ...},
     "results": {"downtime_ms": 950.0, ...}}

Units live in the key names (``downtime_ms``, ``interval_ms``, ``duration_s``) so a file read
years later needs no side channel. Written as ``/etc/ansible/facts.d/<name>.fact`` the record
reads back as ``ansible_local.<name>`` (JSON is a valid fact file; it must not be executable,
or Ansible would run it instead of reading it).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
import socket
import stat
import tempfile

SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS = (1,)
FACTS_DIR = "/etc/ansible/facts.d"
REQUIRED_KEYS = ("schema_version", "kind", "host", "recorded_utc", "params", "results")
TIME_KEYS = ("recorded_utc", "started_utc", "finished_utc")

# ansible_local.<name> must be a usable variable name.
_FACT_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_UTC_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|\+00:00)$")


class ResultFileError(ValueError):
    """A result or fact file is missing, unreadable or not a valid measurement record."""


def utc_iso(timestamp=None):
    """Unix time (default: now) as ISO-8601 UTC with microseconds and a ``Z`` suffix."""
    if timestamp is None:
        moment = datetime.datetime.now(datetime.timezone.utc)
    else:
        if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float)) or not math.isfinite(timestamp):
            raise ValueError("timestamp must be a finite number of seconds since the epoch, got %r" % (timestamp,))
        moment = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_utc_iso(text):
    """Inverse of :func:`utc_iso`: ISO-8601 UTC text to Unix time (float)."""
    match = _UTC_RE.match(text) if isinstance(text, str) else None
    if not match:
        raise ValueError("expected an ISO-8601 UTC time like 2024-05-01T12:00:00.000000Z, got %r" % (text,))
    try:
        moment = datetime.datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        raise ValueError("%r is not a valid date and time" % (text,)) from None
    fraction = match.group(1)
    micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
    return moment.replace(microsecond=micro, tzinfo=datetime.timezone.utc).timestamp()


def fact_path(name, facts_dir=FACTS_DIR):
    """Path of the fact file that reads back as ``ansible_local.<name>``."""
    if not isinstance(name, str) or not _FACT_NAME_RE.match(name):
        raise ValueError("fact name must match [A-Za-z_][A-Za-z0-9_]* to be usable as ansible_local.<name>, got %r" % (name,))
    return os.path.join(facts_dir, name + ".fact")


def _fsync_dir(directory):
    # The rename is only durable once the directory entry is on disk.
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    fd = os.open(directory, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path, data, mode=0o644, make_dirs=False):
    """Write ``data`` as JSON to ``path`` so readers see the old file or the new one, never a part.

    See :func:`write_text_atomic`; a value json cannot encode raises before any file is made.
    Returns the absolute path written.
    """
    # Serialise first: a value json cannot encode must not cost a temporary file.
    text = json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n"
    return write_text_atomic(path, text, mode=mode, make_dirs=make_dirs)


def write_text_atomic(path, text, mode=0o644, make_dirs=False):
    """Write ``text`` to ``path`` so readers see the old file or the new one, never a part.

    The text goes to a temporary file in the same directory (same file system, so the rename is
    atomic), which is flushed, fsync'ed, given ``mode`` and renamed over ``path`` with
    ``os.replace``; then the directory is fsync'ed. On any error the temporary file is removed and
    the exception propagates; an existing ``path`` is left untouched. Parent directories are
    created only when ``make_dirs`` is true. Returns the absolute path written.
    """
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise ValueError("path must be a non-empty file path, got %r" % (path,))
    if not isinstance(text, str):
        raise ValueError("text must be a string, got %s" % type(text).__name__)
    path = os.path.abspath(os.fspath(path))
    directory = os.path.dirname(path)
    if make_dirs:
        os.makedirs(directory, exist_ok=True)
    elif not os.path.isdir(directory):
        raise FileNotFoundError("directory %s does not exist (pass make_dirs=True to create it)" % directory)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)
    return path


def write_record(path, record, mode=0o644, make_dirs=False):
    """Validate a measurement record and write it with :func:`write_json_atomic`.

    A ``.fact`` file must be readable as ``ansible_local.<name>`` and must not be executable.
    """
    validate_record(record)
    base = os.path.basename(os.fspath(path))
    if base.endswith(".fact"):
        if not _FACT_NAME_RE.match(base[:-5]):
            raise ValueError("%s: a fact file is named <name>.fact with <name> matching [A-Za-z_][A-Za-z0-9_]*" % path)
        if mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH):
            raise ValueError("%s: mode %o is executable; Ansible would run the fact file instead of reading it" % (path, mode))
    return write_json_atomic(path, record, mode=mode, make_dirs=make_dirs)


def measurement_record(kind, results, params=None, host=None, started=None, finished=None, extra=None):
    """Build a schema-versioned measurement record (see the module docstring).

    ``started``/``finished`` are Unix times (or ISO-8601 UTC strings) of the measured interval;
    ``extra`` adds further top-level keys (it may not replace the standard ones).
    """
    if not isinstance(kind, str) or not kind:
        raise ValueError("kind must be a non-empty string, got %r" % (kind,))
    if not isinstance(results, dict):
        raise ValueError("results must be a dict, got %s" % type(results).__name__)
    if params is not None and not isinstance(params, dict):
        raise ValueError("params must be a dict or None, got %s" % type(params).__name__)
    record = {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "host": host if host is not None else socket.gethostname(),
        "recorded_utc": utc_iso(),
        "params": dict(params or {}),
        "results": dict(results),
    }
    for key, value in (("started_utc", started), ("finished_utc", finished)):
        if value is None:
            continue
        if isinstance(value, str):
            parse_utc_iso(value)
            record[key] = value
        else:
            record[key] = utc_iso(value)
    for key, value in (extra or {}).items():
        if key in record or key in TIME_KEYS:
            raise ValueError("extra key %r would replace a standard record key" % (key,))
        record[key] = value
    validate_record(record)
    return record


def validate_record(record, kind=None):
    """Check the structure of a measurement record; raise ResultFileError saying what is wrong."""
    if not isinstance(record, dict):
        raise ResultFileError("a measurement record must be a JSON object, got %s" % type(record).__name__)
    missing = [key for key in REQUIRED_KEYS if key not in record]
    if missing:
        raise ResultFileError("measurement record lacks %s" % ", ".join(missing))
    version = record["schema_version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise ResultFileError("schema_version must be an integer, got %r" % (version,))
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise ResultFileError("unsupported schema_version %d (this reader knows %s)"
                              % (version, ", ".join(str(v) for v in SUPPORTED_SCHEMA_VERSIONS)))
    if not isinstance(record["kind"], str) or not record["kind"]:
        raise ResultFileError("kind must be a non-empty string, got %r" % (record["kind"],))
    if kind is not None and record["kind"] != kind:
        raise ResultFileError("expected a %r record, got kind %r" % (kind, record["kind"]))
    if not isinstance(record["host"], str):
        raise ResultFileError("host must be a string, got %r" % (record["host"],))
    for key in ("params", "results"):
        if not isinstance(record[key], dict):
            raise ResultFileError("%s must be an object, got %s" % (key, type(record[key]).__name__))
    for key in TIME_KEYS:
        if key in record:
            try:
                parse_utc_iso(record[key])
            except ValueError as exc:
                raise ResultFileError("%s: %s" % (key, exc)) from None
    return record


def read_json(path):
    """Read a JSON file, turning every way it can fail into ResultFileError."""
    try:
        with open(path, "r", encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultFileError("cannot read %s: %s" % (path, exc)) from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ResultFileError("%s is not valid JSON: %s" % (path, exc)) from None


def read_record(path, kind=None):
    """Read and validate a measurement record (result file or fact file)."""
    record = read_json(path)
    try:
        return validate_record(record, kind=kind)
    except ResultFileError as exc:
        raise ResultFileError("%s: %s" % (path, exc)) from None


def read_fact(path, kind=None):
    """Read a ``facts.d`` file written by :func:`write_json_atomic` and validate it.

    Besides the record checks: the name must end in ``.fact`` and form a valid
    ``ansible_local`` key, and the file must not be executable (Ansible would run it).
    """
    base = os.path.basename(os.fspath(path))
    if not base.endswith(".fact") or not _FACT_NAME_RE.match(base[:-5]):
        raise ResultFileError("%s: a fact file is named <name>.fact with <name> matching [A-Za-z_][A-Za-z0-9_]*" % path)
    try:
        st_mode = os.stat(path).st_mode
    except OSError as exc:
        raise ResultFileError("cannot read %s: %s" % (path, exc)) from None
    if st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH):
        raise ResultFileError("%s is executable: Ansible would run it instead of reading it as JSON" % path)
    return read_record(path, kind=kind)
