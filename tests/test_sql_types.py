"""``POST /api/query`` answers every DuckDB type in its documented JSON form, over real HTTP.

One parametrised case per type (and per special value: NaN, infinities, integers past
±2^53, infinite dates and timestamps), each checking the DuckDB type name the answer
carries and the value exactly; none of them may be a 500.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer, start_server
from tests.payloads import new_span_id, new_trace_id, now_ns, span, traces_body

UUID = "4f72b677-b315-4f28-bfb5-65fa5249b9bc"
BIG = "123456789012345678901234567890.12345678"

# (SQL expression, DuckDB type name in the answer, JSON value in the answer)
CASES: list[tuple[str, str, Any]] = [
    ("true", "BOOLEAN", True),
    ("(-128)::TINYINT", "TINYINT", -128),
    ("32767::SMALLINT", "SMALLINT", 32767),
    ("(-2147483648)::INTEGER", "INTEGER", -2147483648),
    ("9007199254740992::BIGINT", "BIGINT", 9007199254740992),
    ("(-9007199254740992)::BIGINT", "BIGINT", -9007199254740992),
    ("9007199254740993::BIGINT", "BIGINT", "9007199254740993"),
    ("(-9223372036854775808)::BIGINT", "BIGINT", "-9223372036854775808"),
    ("42::HUGEINT", "HUGEINT", 42),
    (
        "170141183460469231731687303715884105727::HUGEINT",
        "HUGEINT",
        "170141183460469231731687303715884105727",
    ),
    ("255::UTINYINT", "UTINYINT", 255),
    ("65535::USMALLINT", "USMALLINT", 65535),
    ("4294967295::UINTEGER", "UINTEGER", 4294967295),
    ("18446744073709551615::UBIGINT", "UBIGINT", "18446744073709551615"),
    (
        "340282366920938463463374607431768211455::UHUGEINT",
        "UHUGEINT",
        "340282366920938463463374607431768211455",
    ),
    ("1.5::FLOAT", "FLOAT", 1.5),
    ("'nan'::FLOAT", "FLOAT", "NaN"),
    ("'-inf'::FLOAT", "FLOAT", "-Infinity"),
    ("0.1::DOUBLE", "DOUBLE", 0.1),
    ("'nan'::DOUBLE", "DOUBLE", "NaN"),
    ("'inf'::DOUBLE", "DOUBLE", "Infinity"),
    ("'-inf'::DOUBLE", "DOUBLE", "-Infinity"),
    ("1.25::DECIMAL(4,2)", "DECIMAL(4,2)", 1.25),
    (f"{BIG}::DECIMAL(38,8)", "DECIMAL(38,8)", BIG),
    ("'hé \"q\" \\'", "VARCHAR", 'hé "q" \\'),
    ("'\\x00\\xFFab'::BLOB", "BLOB", "AP9hYg=="),
    ("'0101'::BIT", "BIT", "0101"),
    ("DATE '2024-01-02'", "DATE", "2024-01-02"),
    ("'infinity'::DATE", "DATE", "infinity"),
    ("'-infinity'::DATE", "DATE", "-infinity"),
    ("TIME '12:34:56.789'", "TIME", "12:34:56.789"),
    ("TIME_NS '12:00:00.123456789'", "TIME_NS", "12:00:00.123456789"),
    ("TIMETZ '12:34:56+02:30'", "TIME WITH TIME ZONE", "12:34:56+02:30"),
    ("TIMESTAMP '2024-01-02 03:04:05.123456'", "TIMESTAMP", "2024-01-02 03:04:05.123456"),
    ("'infinity'::TIMESTAMP", "TIMESTAMP", "infinity"),
    ("'-infinity'::TIMESTAMP", "TIMESTAMP", "-infinity"),
    ("TIMESTAMP_S '2024-01-02 03:04:05'", "TIMESTAMP_S", "2024-01-02 03:04:05"),
    ("TIMESTAMP_MS '2024-01-02 03:04:05.123'", "TIMESTAMP_MS", "2024-01-02 03:04:05.123"),
    (
        "TIMESTAMP_NS '2024-01-02 03:04:05.123456789'",
        "TIMESTAMP_NS",
        "2024-01-02 03:04:05.123456789",
    ),
    ("'infinity'::TIMESTAMP_NS", "TIMESTAMP_NS", "infinity"),
    (
        "TIMESTAMPTZ '2024-01-02 03:04:05+02'",
        "TIMESTAMP WITH TIME ZONE",
        "2024-01-02 01:04:05+00",
    ),
    ("'-infinity'::TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE", "-infinity"),
    ("INTERVAL '1 month 2 days 3 seconds'", "INTERVAL", "1 month 2 days 00:00:03"),
    (f"'{UUID}'::UUID", "UUID", UUID),
    ("'b'::ENUM('a', 'b')", "ENUM('a', 'b')", "b"),
    (
        "[1, NULL, 9007199254740993]::BIGINT[]",
        "BIGINT[]",
        [1, None, "9007199254740993"],
    ),
    ("['infinity'::TIMESTAMP, NULL]", "TIMESTAMP[]", ["infinity", None]),
    ("[1, 2]::INTEGER[2]", "INTEGER[2]", [1, 2]),
    (
        "{'a': 1, 'b': 'x', 'c': 'nan'::DOUBLE}",
        "STRUCT(a INTEGER, b VARCHAR, c DOUBLE)",
        {"a": 1, "b": "x", "c": "NaN"},
    ),
    ("row(1, 'x')", "TUPLE(INTEGER, VARCHAR)", [1, "x"]),
    ("['\\x01'::BLOB]", "BLOB[]", ["\\x01"]),
    ("MAP([1, 2], ['a', 'b'])", "MAP(INTEGER, VARCHAR)", {"1": "a", "2": "b"}),
    (
        "MAP {'k': [1.5::DOUBLE, 'inf'::DOUBLE]}",
        "MAP(VARCHAR, DOUBLE[])",
        {"k": [1.5, "Infinity"]},
    ),
    (
        "union_value(num := 2)::UNION(num INTEGER, str VARCHAR)",
        "UNION(num INTEGER, str VARCHAR)",
        {"num": 2},
    ),
    (
        """'{"a": [1, 2.5, null, "x"], "big": 9007199254740993}'::JSON""",
        "JSON",
        {"a": [1, 2.5, None, "x"], "big": "9007199254740993"},
    ),
    ("[1::VARIANT, 'x'::VARIANT, {'a': 1.5}::VARIANT]", "VARIANT[]", [1, "x", {"a": 1.5}]),
    ("'POINT(0 0)'::GEOMETRY", "GEOMETRY", "POINT (0 0)"),
    ("NULL", "NULL", None),
    ("NULL::INTEGER", "INTEGER", None),
    ("NULL::TIMESTAMP", "TIMESTAMP", None),
    (
        "12345678901234567890123456789012345678901234567890::BIGNUM",
        "BIGNUM",
        "12345678901234567890123456789012345678901234567890",
    ),
]


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_server(tmp_path_factory.mktemp("sql-types"))
    t = now_ns()
    spans = [span(new_trace_id(), new_span_id(), "op", t, kind=kind) for kind in (1, 2, 2, 3)]
    r = httpx.post(f"{server.url}/v1/traces", json=traces_body("shop", spans), timeout=30)
    assert r.status_code == 200, r.text
    yield server
    server.stop()


def query(srv: RunningServer, text: str) -> httpx.Response:
    return httpx.post(f"{srv.url}/api/query", json={"query": text}, timeout=60)


@pytest.mark.parametrize(("expression", "type_name", "value"), CASES, ids=[c[0] for c in CASES])
def test_each_type_has_its_documented_form(
    srv: RunningServer, expression: str, type_name: str, value: Any
) -> None:
    r = query(srv, f"SELECT {expression} AS v")
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["columns"] == ["v"]
    assert got["types"] == [type_name]
    assert got["rows"] == [[value]]
    assert type(got["rows"][0][0]) is type(value)  # 1 is not "1", 1.0 is not 1


def test_a_histogram_is_an_object_of_counts(srv: RunningServer) -> None:
    r = query(srv, "SELECT histogram(kind) AS h, sum(duration_nano) AS total FROM spans")
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["types"] == ["MAP(TINYINT, UBIGINT)", "HUGEINT"]
    assert got["rows"] == [[{"1": 1, "2": 2, "3": 1}, 4 * 10**6]]


def test_many_columns_of_one_row_keep_their_order_and_names(srv: RunningServer) -> None:
    exprs = ", ".join(f"{e} AS c{i}" for i, (e, _, _) in enumerate(CASES))
    r = query(srv, f"SELECT {exprs}, 1 AS c0")
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["columns"] == [f"c{i}" for i in range(len(CASES))] + ["c0"]
    assert got["types"] == [t for _, t, _ in CASES] + ["INTEGER"]
    assert got["rows"] == [[v for _, _, v in CASES] + [1]]
