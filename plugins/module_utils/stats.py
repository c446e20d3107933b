# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small statistics helpers shared by the analysis code (stdlib only)."""

from __future__ import annotations

import math


def mean(values):
    values = list(values)
    if not values:
        raise ValueError("mean of an empty sequence")
    return math.fsum(values) / len(values)


def pstdev(values):
    """Population standard deviation, the thesis's Eq. (13)."""
    values = list(values)
    m = mean(values)
    return math.sqrt(math.fsum((x - m) ** 2 for x in values) / len(values))
