"""The DTO base class and the value types shared by every schema module."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    PlainSerializer,
    SkipValidation,
    ValidationError,
)

__all__ = ["DTO", "METADATA", "STORABLE", "Money", "StoredObject", "describe"]

METADATA = AliasChoices("metadata", "metadata_")
"""Rows name the column `metadata`; ORM objects call it `metadata_` (a reserved name)."""

STORABLE: Mapping[str, bool] = MappingProxyType({"storable": True})
"""Validation context for values known to be storable: read back from the store, or from a
legacy file whose text holds no NUL escape and whose times the importer checks. The input
scans for NUL, lone surrogates and out-of-range times are skipped."""

StoredObject = SkipValidation[dict[str, Any]]
"""A JSON object as read back from the store: passed through, not walked again (it was
checked on the way in, and walking a context of a few KB costs more than reading it)."""

Money = Annotated[
    Decimal, PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="json")
]
"""USD as an exact Decimal; in JSON a plain decimal string ("0.06000000", never "6E-2")."""


class DTO(BaseModel):
    """Base of returned values: built from ORM rows by attribute, extra fields forbidden."""

    model_config = ConfigDict(from_attributes=True, extra="forbid", validate_by_name=True)


def describe(error: ValidationError) -> tuple[str, str]:
    """The dotted path and message of a validation error's first problem, for InvalidInput."""
    first = error.errors(include_url=False)[0]
    field = ".".join(str(part) for part in first["loc"]) or "value"
    extra = f" ({len(error.errors())} problems)" if error.error_count() > 1 else ""
    return field, f"{first['msg']}{extra}"
