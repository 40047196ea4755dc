"""Validation and conversion of the values the API accepts: money, tokens, JSON, ids, time.

Every check raises InvalidInput naming the field, before anything is written.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, TypeVar

import orjson
from pydantic_core import from_json

from statekeeper.errors import InvalidInput

E = TypeVar("E", bound=StrEnum)

__all__ = [
    "MONEY_PLACES",
    "MONEY_PRECISION",
    "ZERO",
    "JsonText",
    "as_utc",
    "check_id",
    "check_json",
    "check_non_negative_int",
    "check_size",
    "check_text",
    "dump_json",
    "encode_json",
    "load_json",
    "money",
    "parse_choice",
    "serialize_json",
    "unstorable",
    "utcnow",
]

MONEY_PRECISION = 15
"""Significant digits of a stored amount: 15 survive a round trip through a double exactly."""
MONEY_PLACES = 8
"""Decimal places of a stored amount (1e-8 USD); finer digits are rounded half-even."""
_MONEY_QUANTUM = Decimal(1).scaleb(-MONEY_PLACES)
_MONEY_MAX = Decimal(10) ** (MONEY_PRECISION - MONEY_PLACES)
ZERO = Decimal(0).quantize(_MONEY_QUANTUM)
_ID_MAX = 255
# A NUL escape that is not itself escaped: PostgreSQL text and JSONB cannot hold U+0000.
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
# A lone UTF-16 surrogate (e.g. from "\ud800" in JSON) cannot be encoded as UTF-8 at all.
_SURROGATE = re.compile("[\ud800-\udfff]")
# orjson hands these to `default` (which refuses them) instead of writing them its own way.
_ORJSON_OPTIONS = (
    orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime, field: str = "timestamp") -> datetime:
    """An aware datetime converted to UTC; a naive one is rejected, never guessed."""
    if not isinstance(value, datetime):
        raise InvalidInput(field, f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(field, "naive datetime: give a timezone-aware value")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(field, f"{value.isoformat()} is out of range in UTC") from None


def unstorable(text: str) -> str | None:
    """Why a string cannot be stored on both engines, or None if it can."""
    if "\x00" in text:
        return "contains a NUL character, which PostgreSQL cannot store"
    if not text.isascii() and _SURROGATE.search(text):
        return "contains a lone UTF-16 surrogate, which is not valid Unicode text"
    return None


def money(value: object, field: str = "cost_usd") -> Decimal:
    """An exact, non-negative USD amount; a float is read through its shortest repr."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str | float):
        raise InvalidInput(
            field, f"expected Decimal, int, str or float, got {type(value).__name__}"
        )
    try:
        amount = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, ValueError):
        raise InvalidInput(field, f"not a number: {value!r}") from None
    if not amount.is_finite():
        raise InvalidInput(field, f"must be finite, got {value!r}")
    if amount < 0:
        raise InvalidInput(field, f"must not be negative, got {value!r}")
    # Compared before rounding: quantize itself fails on amounts with too many digits.
    if (
        amount >= _MONEY_MAX
        or (amount := amount.quantize(_MONEY_QUANTUM, rounding=ROUND_HALF_EVEN)) >= _MONEY_MAX
    ):
        raise InvalidInput(
            field, f"must be below {_MONEY_MAX} (a session's total too), got {value!r}"
        )
    return amount


def check_non_negative_int(value: object, field: str) -> int:
    """A whole number >= 0 (durations, token counts, line counts)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field, f"expected an int, got {type(value).__name__}")
    if value < 0:
        raise InvalidInput(field, f"must not be negative, got {value}")
    if value >= 2**63:
        raise InvalidInput(field, f"too large: {value}")
    return value


MAX_DAYS = 36_500
"""The longest span a day count may name: a century, far inside what dates can hold."""


def check_days(value: object, field: str, *, minimum: int = 0) -> int:
    """A whole number of days from `minimum` to MAX_DAYS (retention ages, report spans)."""
    days = check_non_negative_int(value, field)
    if days < minimum:
        raise InvalidInput(field, f"must be at least {minimum}, got {days}")
    if days > MAX_DAYS:
        raise InvalidInput(field, f"at most {MAX_DAYS} days (a century), got {days}")
    return days


def check_id(value: object, field: str) -> str:
    """A non-empty identifier of at most 255 characters, without NUL or surrounding space."""
    if not isinstance(value, str):
        raise InvalidInput(field, f"expected a string, got {type(value).__name__}")
    if not value or value.strip() != value:
        raise InvalidInput(field, "must be non-empty with no leading or trailing whitespace")
    if len(value) > _ID_MAX:
        raise InvalidInput(field, f"longer than {_ID_MAX} characters")
    problem = unstorable(value)
    if problem is not None:
        raise InvalidInput(field, problem)
    return value


def check_text(value: object, field: str, *, max_length: int | None = None) -> str:
    """Free text that both engines can store alike (no NUL, valid Unicode, within length)."""
    if not isinstance(value, str):
        raise InvalidInput(field, f"expected a string, got {type(value).__name__}")
    problem = unstorable(value)
    if problem is not None:
        raise InvalidInput(field, problem)
    if max_length is not None and len(value) > max_length:
        raise InvalidInput(field, f"longer than {max_length} characters")
    return value


def check_size(text: str, field: str, limit: int | None) -> str:
    """The text, if its UTF-8 form takes at most `limit` bytes (None: any size).

    Decided from the length alone where it can be (UTF-8 takes 1 to 4 bytes a character),
    so a huge value is refused without encoding a copy of it.
    """
    if limit is None or len(text) <= limit // 4:
        return text
    if len(text) > limit:
        raise InvalidInput(field, f"longer than the limit of {limit} bytes (max_value_bytes)")
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise InvalidInput(
            field, f"{size} bytes is over the limit of {limit} bytes (max_value_bytes)"
        )
    return text


class JsonText(str):
    """JSON text that `dump_json` produced and checked; the engine stores it as it is."""

    __slots__ = ()


def serialize_json(value: Any) -> str:
    """The engines' JSON serializer: checked JsonText goes through, anything else is dumped."""
    if isinstance(value, JsonText):
        return value
    return encode_json(value)


def _refuse(value: Any) -> Any:
    raise TypeError


def encode_json(value: Any) -> str:
    """Compact JSON of what `json.dumps(allow_nan=False, ensure_ascii=False)` accepts, or its
    TypeError, ValueError or RecursionError.

    orjson writes it 5 to 13 times faster (a 4 KB context: 49 to 4 µs here). Its text is kept
    only when it reads back equal to the value; anything it would write differently from
    json.dumps (NaN as null, a UUID or an enum as a string, a tuple) goes to json.dumps,
    which decides, so the contract stays json.dumps's.
    """
    try:
        data = orjson.dumps(value, default=_refuse, option=_ORJSON_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError too: unknown types, big ints, deep nesting
        pass
    else:
        if orjson.loads(data) == value:
            return data.decode()
    return json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))


def load_json(text: str | bytes) -> Any:
    """The engines' JSON deserializer: pydantic-core's parser, 1.6x to 4x json.loads here.

    json.loads reads what it refuses (nesting beyond its depth limit), so anything stored
    reads back.
    """
    try:
        return from_json(text, cache_strings=False)
    except ValueError:
        return json.loads(text)


def dump_json(value: Any, field: str, *, limit: int | None = None) -> JsonText:
    """Serialize a JSON value or raise InvalidInput: never a silent str() of the unknown.

    `limit`: the most bytes the serialized form may take (None: any size).
    """
    try:
        text = encode_json(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(field, f"not representable as JSON: {exc}") from None
    except RecursionError:
        raise InvalidInput(field, "nested too deeply or self-referencing") from None
    # Substring and ASCII tests first: the scans below cost tens of microseconds on long text.
    if "\\u0000" in text and _JSON_NUL.search(text):
        raise InvalidInput(field, "contains a NUL character, which PostgreSQL cannot store")
    if not text.isascii() and _SURROGATE.search(text):
        raise InvalidInput(field, "contains a lone UTF-16 surrogate, which is not valid Unicode")
    return JsonText(check_size(text, field, limit))


def check_json(value: Any, field: str) -> Any:
    """The value as it will be stored and read back (tuples become lists, keys strings)."""
    result: Any = json.loads(dump_json(value, field))
    return result


def parse_choice(choices: type[E], value: object, field: str = "status") -> E:
    """A member of a StrEnum from itself or its string value; else InvalidInput listing them."""
    try:
        return choices(value)  # type: ignore[arg-type]  # a wrong type is reported below
    except ValueError:
        allowed = ", ".join(member.value for member in choices)
        raise InvalidInput(field, f"unknown {field} {value!r} (allowed: {allowed})") from None
