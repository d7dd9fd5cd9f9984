"""How ``POST /api/query`` answers turn DuckDB values into JSON, one rule per column type.

Every DuckDB type has a documented form (README, "POST /api/query"); nothing is dropped or
rounded in silence:

- integers within ±2^53 are numbers, beyond it decimal strings (as everywhere in the API);
- DOUBLE and FLOAT are numbers, NaN and ±infinity the strings ``"NaN"``, ``"Infinity"``,
  ``"-Infinity"``; a DECIMAL is a number when the number's text is the same value, else a
  decimal string;
- BLOB is base64; BOOLEAN, VARCHAR and NULL are themselves;
- every other type leaves DuckDB through ``to_json``: dates, times and intervals as DuckDB
  writes them (``"infinity"`` included), UUID, ENUM and BIT as text, JSON as the value it
  holds, LIST and ARRAY as arrays, STRUCT and MAP as objects (MAP keys as their text), UNION
  as ``{member: value}``; the numbers inside follow the rules above.

A value that still cannot be written (a JSON string holding a lone surrogate escape) is a
``BadRequest`` naming the column, never a crash.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from duckdb.sqltypes import DuckDBPyType

from otterscope.errors import BadRequest

SAFE_INTEGER = 2**53

_INTEGERS = {
    "tinyint",
    "smallint",
    "integer",
    "bigint",
    "hugeint",
    "utinyint",
    "usmallint",
    "uinteger",
    "ubigint",
    "uhugeint",
}
_FLOATS = {"float", "double"}
_NON_FINITE = {"NaN": "NaN", "Infinity": "Infinity", "-Infinity": "-Infinity"}


def integer(value: int | None) -> int | str | None:
    if value is None or -SAFE_INTEGER <= value <= SAFE_INTEGER:
        return value
    return str(value)


def double(value: float | None) -> float | str | None:
    if value is None or math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def decimal(value: Decimal | None) -> float | str | None:
    if value is None:
        return None
    return _number_text(format(value, "f"))


def _number_text(text: str) -> float | str:
    """A JSON number when its shortest double text is the same value, else the text."""
    number = float(text)
    try:
        same = math.isfinite(number) and Decimal(repr(number)) == Decimal(text)
    except InvalidOperation:
        same = False
    return number if same else text


def _json_int(text: str) -> int | str:
    value = int(text)
    return value if -SAFE_INTEGER <= value <= SAFE_INTEGER else text


def _json_float(text: str) -> float | str:
    return _number_text(text)


def _json_constant(text: str) -> str:
    return _NON_FINITE[text]


def from_json(text: str | None) -> Any:
    """``to_json``'s text (NaN and big integers included) as a value under the same rules."""
    if text is None:
        return None
    return json.loads(
        text, parse_int=_json_int, parse_float=_json_float, parse_constant=_json_constant
    )


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type_name: str
    shape: str  # how it leaves DuckDB: a key of sandbox_sql.SHAPES
    convert: Callable[[Any], Any]


def column(name: str, kind: DuckDBPyType) -> Column:
    type_id = kind.id
    text = str(kind)
    if type_id == "null" or text == '"NULL"':
        return Column(name, "NULL", "value", _same)
    if type_id in _INTEGERS:
        return Column(name, text, "value", integer)
    if type_id in _FLOATS:
        return Column(name, text, "value", double)
    if type_id == "decimal":
        return Column(name, text, "value", decimal)
    if text in ("BOOLEAN", "VARCHAR"):  # JSON is a VARCHAR by id, not by name
        return Column(name, text, "value", _same)
    if type_id == "blob":
        return Column(name, text, "base64", _same)  # DuckDB's base64() made it text
    return Column(name, text, "json", from_json)


def encode_row(columns: list[Column], row: tuple[Any, ...]) -> bytes:
    """One answer row as JSON bytes (``BadRequest`` naming the column it cannot write)."""
    try:
        return orjson.dumps([c.convert(v) for c, v in zip(columns, row, strict=True)])
    except (ValueError, TypeError) as exc:  # orjson.JSONEncodeError is a TypeError
        for c, v in zip(columns, row, strict=True):
            try:
                orjson.dumps(c.convert(v))
            except (ValueError, TypeError) as column_exc:
                raise BadRequest(
                    f"column {c.name!r} ({c.type_name}) holds a value JSON cannot carry: "
                    f"{column_exc}"
                ) from None
        raise BadRequest(f"a row cannot be written as JSON: {exc}") from None
