"""values.encode_json: orjson's speed, json.dumps's contract, for every value."""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from statekeeper.errors import InvalidInput
from statekeeper.values import dump_json, encode_json


class Colour(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Name(str):
    """A str subclass: json.dumps writes its text."""


@dataclasses.dataclass
class Point:
    x: int


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def _stdlib(value: Any) -> str | type[BaseException]:
    try:
        return json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:
        return type(exc)


def _ours(value: Any) -> str | type[BaseException]:
    try:
        return encode_json(value)
    except (TypeError, ValueError, RecursionError) as exc:
        return type(exc)


def _same(value: Any) -> None:
    """Same refusal as json.dumps, or text that reads back as json.dumps's does."""
    ours, theirs = _ours(value), _stdlib(value)
    if isinstance(theirs, str):
        assert isinstance(ours, str)
        assert json.loads(ours) == json.loads(theirs)
    else:
        assert ours is theirs


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats()  # NaN and infinities included
    | st.text()  # lone surrogates and NUL included
)
_KEYS = st.text() | st.integers() | st.booleans() | st.none() | st.floats(allow_nan=False)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(_KEYS, inner, max_size=4)
    ),
    max_leaves=20,
)


@given(_VALUES)
def test_any_json_like_value_is_treated_as_json_dumps_treats_it(value: Any) -> None:
    _same(value)


@pytest.mark.parametrize(
    "value",
    [
        math.nan,
        {"cost": math.inf},
        [-math.inf],
        uuid.UUID(int=7),
        Colour.RED,
        {"level": Level.HIGH},
        Name("alice"),
        Point(1),
        datetime(2026, 1, 1, tzinfo=UTC),
        date(2026, 1, 1),
        Decimal("0.1"),
        b"bytes",
        {1: "int key", None: "none key"},
        2**70,
        (1, [2, (3,)]),
        {"nul": "a\x00b", "surrogate": "\ud800"},
        {"deep": _nested(300)},  # deeper than orjson goes (255)
    ],
    ids=repr,
)
def test_what_orjson_would_write_its_own_way_follows_json_dumps(value: Any) -> None:
    _same(value)


def test_values_json_dumps_refuses_are_invalid_input_naming_the_field() -> None:
    for bad in (math.nan, uuid.UUID(int=7), Colour.RED, Point(1), datetime.now(UTC)):
        with pytest.raises(InvalidInput, match="context"):
            dump_json({"value": bad}, "context")


def test_deep_and_self_referencing_values_are_invalid_input() -> None:
    deep = _nested(100_000)
    with pytest.raises(InvalidInput, match="nested too deeply"):
        dump_json(deep, "output")
    loop: dict[str, Any] = {}
    loop["self"] = loop
    with pytest.raises(InvalidInput, match="output"):
        dump_json(loop, "output")


def test_plain_values_keep_their_compact_form() -> None:
    assert encode_json({"a": [1, 2.5, None, True], "é": "\u2028"}) == (
        '{"a":[1,2.5,null,true],"é":"\u2028"}'
    )
