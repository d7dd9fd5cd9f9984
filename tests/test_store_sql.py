"""The SQL text of the embedded store: the cheap attribute pre-test never turns away a row
the exact test would keep."""

from __future__ import annotations

import json

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from otterscope.otlp import fast
from otterscope.otlp.anyvalue import Limits
from otterscope.store.embedded.sql import attribute_needles, json_path

_keys = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12
)
_values = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["500", "-0", "007", "1e3", "true", " 1", "1.0", "null", '"q"', "a\\b"]),
)


def _any(value: object) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=str(value))


def stored_attributes(attrs: dict[str, object]) -> str:
    """The attribute JSON exactly as the ingest path stores it (the C decoder)."""
    req = ExportTraceServiceRequest()
    span = req.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id = b"\x01" * 16
    span.span_id = b"\x02" * 8
    span.name = "s"
    span.attributes.extend(KeyValue(key=k, value=_any(v)) for k, v in attrs.items())
    batch = fast.spans_batch_from_bytes(req.SerializeToString(), "default", Limits())
    text: str = batch.table.column("attributes")[0].as_py()
    return text


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_keys, _values, min_size=1, max_size=4), st.data())
def test_needles_are_found_whenever_the_exact_test_matches(
    attrs: dict[str, object], data: st.DataObject
) -> None:
    text = stored_attributes(attrs)
    con = duckdb.connect()
    for key in attrs:
        (exact,) = con.execute(
            "SELECT json_extract_string(?, ?)", [text, json_path(key)]
        ).fetchone()  # type: ignore[misc]
        if exact is None:
            continue
        # The value a user would type to match: the exact text, and a near miss.
        for typed in (exact, data.draw(st.text(max_size=4)) + exact):
            needles = attribute_needles(key, typed)
            matches = exact == typed
            if matches and needles:
                assert any(n in text for n in needles), (key, typed, text, needles)


def test_values_with_more_than_one_spelling_get_no_needle() -> None:
    # Tagged values (non-finite doubles, bytes), arrays, kvlists and doubles.
    for value in ('{"\\u0000d":"Infinity"}', "[1, 2]", '{"a": 1}', "1.5", "1e3", "NaN"):
        assert attribute_needles("k", value) == []
    assert attribute_needles("k", "500") == ['"k":"500"', '"k":500']
    assert attribute_needles('a"b', "x") == ['"a\\"b":"x"']


@pytest.mark.parametrize("key", ["*", "a.*", "[*]", "$", 'a"b', "a/b", "a~b", "", "0", "é"])
def test_a_json_path_names_exactly_one_key(key: str) -> None:
    con = duckdb.connect()
    doc = json.dumps({key: "mine", "other": "not mine"})
    (found,) = con.execute("SELECT json_extract_string(?, ?)", [doc, json_path(key)]).fetchone()  # type: ignore[misc]
    assert found == "mine"
    (missing,) = con.execute(
        "SELECT json_extract_string(?, ?)", ['{"other": 1}', json_path(key)]
    ).fetchone()  # type: ignore[misc]
    assert missing is None
