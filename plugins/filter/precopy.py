# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for the thesis's pre-copy model and cap choice; the math is in module_utils/precopy.py."""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible_collections.xenlab.migration.plugins.module_utils.precopy import optimal_cap as _optimal_cap
from ansible_collections.xenlab.migration.plugins.module_utils.precopy import predict as _predict


def _number_or_value(value):
    # `-e key=1024` gives strings: accept numeric strings, leave everything else to the validators.
    if isinstance(value, str):
        for convert in (int, float):
            try:
                return convert(value.strip())
            except ValueError:
                pass
    return value


def _numbers(mapping):
    return {k: [_number_or_value(x) for x in v] if isinstance(v, list) else _number_or_value(v) for k, v in mapping.items()}


def optimal_cap(rows, downtime_weight=0.05, trend_over="index", details=False):
    """Table 4 of Nkubito (2012): the cap whose max(response trend, weighted downtime trend) is least."""
    if not isinstance(details, bool):
        raise AnsibleFilterError("optimal_cap: details must be true or false, got %r" % (details,))
    if isinstance(rows, list):
        rows = [_numbers(r) if isinstance(r, Mapping) else r for r in rows]
    try:
        result = _optimal_cap(rows, _number_or_value(downtime_weight), trend_over)
    except (ValueError, TypeError) as exc:
        raise AnsibleFilterError("optimal_cap: %s" % exc) from None
    return result if details else result["cap"]


def precopy_predict(params):
    """Iterations (Eq. 2), migration time (Eq. 3), downtime (Eqs. 4, 9, 12) and the Eq. (7) dirty-rate limit."""
    if isinstance(params, Mapping):
        params = _numbers(params)
    try:
        return _predict(params)
    except (ValueError, TypeError) as exc:
        raise AnsibleFilterError("precopy_predict: %s" % exc) from None


class FilterModule(object):
    """xenlab.migration pre-copy filters."""

    def filters(self):
        return {
            "optimal_cap": optimal_cap,
            "precopy_predict": precopy_predict,
        }
