"""The attribute index's one-pass reader (C, ``_fastotlp.attribute_pairs``) gives, for
every value a search can look up in the index, the text DuckDB's ``json_extract_string``
gives, which is what a search compares; JSON it does not follow is left to DuckDB.

Stored attribute JSON as both encoders write it (orjson, the C decoder), plus hand-written
JSON neither writes: whitespace, escapes, surrogate pairs, repeated keys, nulls, odd
numbers, trailing garbage.
"""

from __future__ import annotations

from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from otterscope.otlp import _fastotlp
from otterscope.store.embedded import attrindex, sql

SCALARS = st.one_of(
    st.text(max_size=6),
    st.sampled_from(["500", "true", "", 'é"\\/', "\x00\x1f", "😀", "1.5", "[1]", "null"]),
    st.integers(-(2**63), 2**64 - 1),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
)
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=3), SCALARS, max_size=2),
)
KEYS = st.one_of(st.sampled_from(["a", "b.c", "a/b", "x~y", "", "é", '"q"']), st.text(max_size=4))
HAND = st.sampled_from(
    [
        '{ "a" : "x" , "b":1 }',
        '{"a":"\\u00e9\\ud83d\\ude00\\n\\t\\"\\\\\\/"}',
        '{"a":1,"a":2}',
        '{"a":null,"a":"x"}',
        '{"a":-0}',
        '{"a":007}',
        '{"a":1e5,"b":-2.50,"c":12345678901234567890123}',
        '{"a":[1, {"b": "]"}],"c":{"d":[]}}',
        '{"a":"\\ud800"}',
        '{"a":"x"} junk',
        "[1,2]",
        "{}",
        '{"a":tru}',
        '{"a":NaN}',
    ]
)


def _column(texts: list[str | None]) -> pa.ChunkedArray:
    # Several chunks, one with an offset, as hot segments hand them to sealing.
    arr = pa.array([None, *texts], pa.string())
    return pa.chunked_array([arr.slice(1, len(texts) // 2), arr.slice(1 + len(texts) // 2)])


def _duckdb_pairs(texts: list[str | None]) -> set[tuple[int, str, str]]:
    con = duckdb.connect()
    con.register("t", pa.table({"a": pa.array(texts, pa.string())}))
    out = set()
    for i, text in enumerate(texts):
        if text is None:
            continue
        try:
            keys = con.execute("SELECT json_keys(?::JSON)", [text]).fetchone()
        except duckdb.Error:
            continue
        for key in set(keys[0] if keys else []):
            (value,) = con.execute(
                "SELECT json_extract_string(?::JSON, ?)", [text, sql.json_path(key)]
            ).fetchone()
            if value is not None:
                out.add((i, key, value))
    return out


def _looked_up(value: str) -> bool:
    """Whether a search for ``value`` reads the index (it has a needle)."""
    return bool(sql.attribute_needles("k", value))


def _check(texts: list[str | None], may_give_up: bool = False) -> None:
    found = attrindex._pairs(_column(texts))
    if found is None:
        # Left to DuckDB, as before the reader existed: never for JSON our encoders write.
        assert may_give_up
        return
    keys, pairs = found
    assert keys == sorted(keys)
    got = {
        (r, keys[k], v)
        for r, k, v in zip(
            pairs.column("r").to_pylist(),
            pairs.column("k").to_pylist(),
            pairs.column("v").to_pylist(),
            strict=True,
        )
    }
    want = _duckdb_pairs(texts)
    # Every key a row has, each once (the first occurrence), null values left out.
    assert {(r, k) for r, k, _ in got} == {(r, k) for r, k, _ in want}
    for r, k, v in want:
        if _looked_up(v):
            assert (r, k, v) in got
    for r, k, v in got:
        if _looked_up(v):
            assert (r, k, v) in want


@settings(max_examples=150, deadline=None)
@given(st.lists(st.dictionaries(KEYS, VALUES, max_size=5), min_size=1, max_size=12))
def test_pairs_match_duckdb_on_stored_json(rows: list[dict[str, Any]]) -> None:
    _check([orjson.dumps(r).decode() for r in rows])


@settings(max_examples=60, deadline=None)
@given(st.lists(HAND, min_size=1, max_size=4))
def test_pairs_match_duckdb_or_give_up_on_other_json(rows: list[str]) -> None:
    _check(rows, may_give_up=True)


def test_every_hand_written_case() -> None:
    for text in HAND.elements:  # type: ignore[attr-defined]
        _check([text], may_give_up=True)


def test_more_keys_than_the_limit_give_up() -> None:
    text = orjson.dumps({f"k{i}": i for i in range(attrindex.MAX_KEYS + 1)}).decode()
    assert attrindex._pairs(_column([text, "{}"])) is None
    assert _fastotlp.attribute_pairs([], 4) == (
        [],
        bytearray(),
        bytearray(),
        bytearray(8),
        bytearray(),
    )


def test_index_built_from_pairs_equals_the_duckdb_one() -> None:
    rows = [
        orjson.dumps({"user.id": f"u{i % 7}", "code": i % 3, "ok": i % 2 == 0, "s": "é\n"})
        for i in range(500)
    ]
    attrs = _column([r.decode() for r in rows])
    order = pc.sort_indices(pa.array([(i * 37) % 500 for i in range(500)]))
    fast = attrindex.build(attrs, order)
    real = attrindex._pairs
    try:
        attrindex._pairs = lambda a: None  # type: ignore[assignment]
        slow = attrindex.build(attrs, order)
    finally:
        attrindex._pairs = real  # type: ignore[assignment]
    assert fast is not None and slow is not None
    assert fast.equals(slow, check_metadata=True)
