"""The README stays true: configuration table, API section, set-up commands (SPEC §1)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from starlette.routing import Route

from otterscope.api.app import build_app
from otterscope.config import KEYS
from otterscope.ingest.http import OtlpHttpReceiver

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()

SECTIONS_IN_ORDER = (
    "Set up",
    "Quick start",
    "Web UI",
    "Configuration",
    "API",
    "Grafana set-up",
    "Architecture",
    "Performance",
    "Development",
)


def section(title: str) -> str:
    """The text under ``## title`` up to the next ``## `` heading."""
    m = re.search(rf"^## {re.escape(title)}\s*$(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert m, f"README has no '## {title}' section"
    return m.group(1)


def code_blocks(text: str) -> list[str]:
    return re.findall(r"^```[^\n]*\n(.*?)^```", text, re.M | re.S)


def table_rows(text: str, first_header: str) -> tuple[list[str], list[list[str]]]:
    """The markdown table whose header row starts with ``| first_header |``."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.lstrip().startswith("|") and cells[0] == first_header:
            header = cells
            rows = []
            for body in lines[i + 2 :]:
                if not body.lstrip().startswith("|"):
                    break
                rows.append([c.strip() for c in body.strip().strip("|").split("|")])
            return header, rows
    raise AssertionError(f"no table starting with '| {first_header} |'")


def ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]*)`", cell)


# -- structure ---------------------------------------------------------------------------------


def test_first_paragraph_says_what_it_is() -> None:
    first = README.split("\n\n")[1].lower()
    for word in ("otlp", "traces", "metrics", "logs", "http", "grpc", "duckdb", "parquet"):
        assert word in first, word


def test_sections_in_order() -> None:
    headings = re.findall(r"^## (.+?)\s*$", README, re.M)
    positions = [headings.index(t) for t in SECTIONS_IN_ORDER]
    assert positions == sorted(positions), headings


def test_exactly_two_setup_commands() -> None:
    blocks = code_blocks(section("Set up"))
    commands = [
        line.strip()
        for block in blocks
        for line in block.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert commands == ["pip install . && otterscope serve", "bash .ci/run"]
    assert len(blocks) == 2
    assert (ROOT / ".ci" / "run").is_file()


def test_architecture_links_to_its_file() -> None:
    assert "(ARCHITECTURE.md)" in section("Architecture")


def test_performance_names_bench() -> None:
    text = section("Performance")
    assert "bench/" in text
    header, rows = table_rows(text, "what (SPEC §8)")
    assert "measured" in header
    assert len(rows) >= 9


# -- configuration table -----------------------------------------------------------------------


def config_table() -> dict[str, list[str]]:
    header, rows = table_rows(section("Configuration"), "Key")
    assert header == ["Key", "Environment", "Default", "Meaning"]
    out: dict[str, list[str]] = {}
    for row in rows:
        assert len(row) == 4, row
        keys = ticked(row[0])
        assert len(keys) == 1, row
        assert keys[0] not in out, f"{keys[0]} listed twice"
        out[keys[0]] = row
    return out


def test_config_table_lists_exactly_the_keys() -> None:
    table = config_table()
    assert list(table) == [k.dotted for k in KEYS], "README table differs from config.KEYS"


@pytest.mark.parametrize("key", KEYS, ids=[k.dotted for k in KEYS])
def test_config_table_env_names(key: Any) -> None:
    row = config_table()[key.dotted]
    env = row[1]
    if key.file_only:
        assert env == "file only"
    else:
        assert ticked(env)[0] == key.env
    short = {"server.data_dir": "OTTERSCOPE_DATA_DIR", "auth.token": "OTTERSCOPE_AUTH_TOKEN"}
    if key.dotted in short:
        assert short[key.dotted] in ticked(env)


@pytest.mark.parametrize("key", KEYS, ids=[k.dotted for k in KEYS])
def test_config_table_defaults(key: Any) -> None:
    cell = config_table()[key.dotted][2]
    values = ticked(cell)
    if not values:
        assert cell == "(none)", f"{key.dotted}: default cell {cell!r}"
        assert key.default in ("", ()), (
            f"{key.dotted}: README says (none), default is {key.default!r}"
        )
        return
    # A list is written as YAML (as in the config file).
    text = values[0]
    documented = key.parse(yaml.safe_load(text) if isinstance(key.default, tuple) else text)
    assert documented == key.parse(key.default), (
        f"{key.dotted}: README default {values[0]!r} is not {key.default!r}"
    )


@pytest.mark.parametrize("key", [k for k in KEYS if k.flag], ids=[k.dotted for k in KEYS if k.flag])
def test_config_table_names_flags(key: Any) -> None:
    assert f"`{key.flag}`" in config_table()[key.dotted][3]


def test_config_section_example_file_is_valid(tmp_path: Path) -> None:
    from otterscope.config import load

    yaml_blocks = [
        b for b in code_blocks(section("Configuration")) if re.search(r"^auth:", b, re.M)
    ]
    assert yaml_blocks, "no example config file"
    text = yaml_blocks[0]
    assert "tokens:" in text and "origins:" in text and "${env:" in text
    path = tmp_path / "otterscope.yaml"
    path.write_text(text)
    names = set(re.findall(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}", text))
    settings = load({}, str(path), {n: f"value-of-{n}" for n in names})
    assert settings.tokens
    assert settings["cors.origins"]


# -- API section -------------------------------------------------------------------------------


def app_paths() -> set[str]:
    """Every path the HTTP app registers; nothing is started or opened to get them."""
    receiver = OtlpHttpReceiver(cast(Any, None), cast(Any, None))
    app = build_app(cast(Any, None), receiver)
    routes = cast(Any, app).routes
    return {r.path for r in routes if isinstance(r, Route)}


def _normal(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def test_app_routes_are_found() -> None:
    paths = app_paths()
    assert {"/v1/traces", "/v1/metrics", "/v1/logs", "/health", "/ready", "/metrics"} <= paths
    assert {"/api/traces", "/api/traces/{trace_id}", "/api/logs"} <= paths


@pytest.mark.parametrize("path", sorted(app_paths()))
def test_every_route_is_documented(path: str) -> None:
    api = _normal(section("API"))
    assert re.search(rf"(?<![\w/]){re.escape(_normal(path))}(?![\w/{{])", api), (
        f"route {path} is not in the README's API section"
    )


def test_api_documents_error_shapes() -> None:
    api = section("API")
    assert '{"error": {"code"' in api
    assert "google.rpc.Status" in api


def test_quick_start_examples() -> None:
    text = section("Quick start")
    for needle in (
        "/v1/traces",
        "/v1/logs",
        "/api/traces?service=",
        "/api/traces/5b8efff798038103d269b633813fc60c",
        "/api/logs?q=",
        "/health",
        "/metrics",
        "OTLPSpanExporter",
        "http://127.0.0.1:4318/v1/traces",
        "127.0.0.1:4317",
        "OTTERSCOPE_AUTH_TOKEN",
        "Authorization: Bearer",
    ):
        assert needle in text, needle


def test_sql_views_and_their_columns_are_documented() -> None:
    from otterscope.store.embedded.sandbox_sql import VIEWS, columns

    api = section("API")
    for view, signal in VIEWS.items():
        line = next((x for x in api.splitlines() if x.startswith(f"- `{view}`: ")), None)
        assert line is not None, f"the README does not list the columns of {view}"
        listed = re.findall(r"`([a-z_]+)`", line.split(":", 1)[1])
        assert listed == columns(signal), f"{view}: README {listed} != {columns(signal)}"
