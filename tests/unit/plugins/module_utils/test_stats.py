import math

import pytest

from ansible_collections.xenlab.migration.plugins.module_utils import stats


def test_pstdev_population_form():
    # Eq. (13) divides by n, not n-1.
    assert stats.pstdev([2, 4, 4, 4, 5, 5, 7, 9]) == 2.0
    assert math.isclose(stats.pstdev([1, 2]), 0.5)


def test_empty_input_is_an_error():
    with pytest.raises(ValueError):
        stats.mean([])
