"""Query parameters that look like numbers to str.isdigit() but are not ASCII digits are a 400,
not a 500 (int("³2") raises)."""

from __future__ import annotations

import pytest
from chalicelib.core import api
from chalicelib.core.errors import InvalidRequest


@pytest.mark.parametrize("raw", ["³2", "²", "١٢", "12 ", "-1", "0", "51"])
def test_a_limit_outside_ascii_digits_and_the_range_is_a_400(raw: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        api.parse_limit(raw, default=20, maximum=50)
    assert refused.value.details == {"field": "limit"}


def test_a_limit_in_range_is_taken() -> None:
    assert api.parse_limit("7", default=20, maximum=50) == 7
    assert api.parse_limit(None, default=20, maximum=50) == 20
