#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: result_write
short_description: Write a measurement record to a JSON result or local fact file, atomically
version_added: 0.1.0
description:
  - Wraps O(results) and O(params) in xenlab's measurement record (C(schema_version), C(kind), C(host),
    C(recorded_utc), optional C(started_utc)/C(finished_utc), C(params), C(results)) and writes it to
    O(dest) so that readers see the old file or the new one, never a part of one (temporary file in
    the same directory, fsync, rename, fsync of the directory).
  - Written as C(/etc/ansible/facts.d/NAME.fact) the record reads back as C(ansible_local.NAME) on the
    next fact gathering.
  - Idempotent. An existing record at O(dest) that differs only in C(recorded_utc) is left alone.
author:
  - xenlab developers (@xenlab)
extends_documentation_fragment:
  - xenlab.migration.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
options:
  dest:
    description:
      - File to write. A name ending in C(.fact) must be C(NAME.fact) with NAME usable as a variable name.
    type: path
    required: true
  kind:
    description: What was measured, for example V(migration) or V(downtime_probe).
    type: str
    required: true
  results:
    description: The measured values; put units in the key names (C(downtime_ms), C(duration_s)).
    type: dict
    required: true
  params:
    description: The parameters of the measurement (scenario, cap, VM memory, ...).
    type: dict
    default: {}
  host:
    description: Host the measurement belongs to. Defaults to the host name of the machine the module runs on.
    type: str
  started_utc:
    description: Start of the measured interval, ISO-8601 UTC (V(2024-05-01T12:00:00.000000Z)).
    type: str
  finished_utc:
    description: End of the measured interval, ISO-8601 UTC.
    type: str
  create_dirs:
    description: Create the parent directories of O(dest) when they do not exist.
    type: bool
    default: false
  mode:
    description:
      - Permissions of O(dest) as an octal string. Fact files must not be executable, or Ansible
        would run them instead of reading them.
    type: str
    default: "0644"
seealso:
  - module: xenlab.migration.downtime_probe
  - name: Local facts (facts.d)
    description: How Ansible reads C(/etc/ansible/facts.d/*.fact).
    link: https://docs.ansible.com/ansible/latest/playbook_guide/playbooks_vars_facts.html#adding-custom-facts
"""

EXAMPLES = r"""
- name: Keep the migration time as a local fact
  xenlab.migration.result_write:
    dest: /etc/ansible/facts.d/xenlab_migration.fact
    create_dirs: true
    kind: migration
    params:
      cap: 35
      vm_memory_mb: 1024
    results:
      migration_time_ms: 12369
      iterations: 29

- name: Write a result file on the controller
  xenlab.migration.result_write:
    dest: "results/cap35_{{ run_utc }}/summary.json"
    create_dirs: true
    kind: cap_sweep_point
    results: "{{ summary }}"
  delegate_to: localhost
"""

RETURN = r"""
dest:
  description: Absolute path of the file.
  returned: success
  type: str
  sample: /etc/ansible/facts.d/xenlab_migration.fact
record:
  description: The record as written (or as found, when nothing changed).
  returned: success
  type: dict
  sample:
    schema_version: 1
    kind: migration
    host: client
    recorded_utc: "2024-05-01T12:00:03.120000Z"
    params: {cap: 35}
    results: {migration_time_ms: 12369}
"""

import json
import os
import stat

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.xenlab.migration.plugins.module_utils import results

# Keys that make two records "the same measurement"; recorded_utc only says when it was written.
_IDENTITY_KEYS = ("schema_version", "kind", "host", "params", "results", "started_utc", "finished_utc")


def parse_mode(text):
    try:
        mode = int(text, 8)
    except (TypeError, ValueError):
        raise ValueError("mode must be an octal string such as '0644', got %r" % (text,)) from None
    if not 0 <= mode <= 0o7777:
        raise ValueError("mode must be between 0000 and 7777, got %r" % (text,))
    return mode


def same_measurement(old, new):
    return all(old.get(key) == new.get(key) for key in _IDENTITY_KEYS)


def run_module(module):
    p = module.params
    mode = parse_mode(p["mode"])
    record = results.measurement_record(p["kind"], p["results"], params=p["params"], host=p["host"],
                                        started=p["started_utc"], finished=p["finished_utc"])
    # A round trip through JSON gives the record exactly as a reader will see it (tuples become
    # lists, and values JSON cannot hold fail here with a clear message).
    record = json.loads(json.dumps(record, allow_nan=False))
    dest = os.path.abspath(p["dest"])
    if not p["create_dirs"] and not os.path.isdir(os.path.dirname(dest)):
        raise ValueError("directory %s does not exist (set create_dirs: true to create it)" % os.path.dirname(dest))
    old = None
    old_text = ""
    if os.path.exists(dest):
        try:
            old = results.read_record(dest)
        except results.ResultFileError:
            old = None
        try:
            with open(dest, "r", encoding="utf-8", errors="replace") as handle:
                old_text = handle.read()
        except OSError:
            old_text = ""
    mode_ok = old is not None and stat.S_IMODE(os.stat(dest).st_mode) == mode
    if old is not None and same_measurement(old, record) and mode_ok:
        return {"changed": False, "dest": dest, "record": old}
    new_text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    result = {"changed": True, "dest": dest, "record": record}
    if module._diff:
        result["diff"] = {"before": old_text, "after": new_text, "before_header": dest, "after_header": dest}
    if not module.check_mode:
        results.write_record(dest, record, mode=mode, make_dirs=p["create_dirs"])
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type="path", required=True),
            kind=dict(type="str", required=True),
            results=dict(type="dict", required=True),
            params=dict(type="dict", default={}),
            host=dict(type="str"),
            started_utc=dict(type="str"),
            finished_utc=dict(type="str"),
            create_dirs=dict(type="bool", default=False),
            mode=dict(type="str", default="0644"),
        ),
        supports_check_mode=True,
    )
    try:
        result = run_module(module)
    except (OSError, ValueError, TypeError) as exc:
        module.fail_json(msg="cannot write %s: %s" % (module.params["dest"], exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
