"""Configuration: flags > env > file > defaults, substitution, validation (SPEC §1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from otterscope.config import KEYS, SCOPES, load, parse_bytes, parse_seconds
from otterscope.errors import ConfigError

DEFAULTS = {k.dotted: k for k in KEYS}


def write(tmp_path: Path, text: str, name: str = "otterscope.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def config_error(**kwargs: Any) -> str:
    with pytest.raises(ConfigError) as info:
        load(**kwargs)
    return info.value.message


# -- defaults and precedence -------------------------------------------------------------------


def test_defaults_with_nothing_given() -> None:
    s = load({}, None, {})
    for key in KEYS:
        assert s[key.dotted] == key.parse(key.default), key.dotted
    assert s["server.host"] == "127.0.0.1"
    assert s["server.http_port"] == 4318
    assert s["server.grpc_port"] == 4317
    assert s["server.data_dir"] == "./otterscope-data"
    assert s["server.shutdown_timeout"] == 30.0
    assert s["ingest.max_body_bytes"] == 16 * 1024 * 1024
    assert s["ingest.attribute_count_limit"] == 128
    assert s["ingest.attribute_value_length_limit"] == 4096
    assert s["retention.traces"] == s["retention.logs"] == s["retention.metrics"] == 7 * 86400
    assert s["retention.max_bytes"] == 0
    assert s.tokens == ()
    assert s.data_dir == Path("./otterscope-data")


def test_every_key_reads_from_its_env_name_or_is_file_only() -> None:
    for key in KEYS:
        assert key.env == f"OTTERSCOPE_{key.section.upper()}__{key.name.upper()}"
    file_only = {k.dotted for k in KEYS if k.file_only}
    assert file_only == {
        "server.allowed_hosts",
        "auth.tokens",
        "cors.origins",
        "metrics.exclude_resource_attributes",
        "metrics.promote_resource_attributes",
        "alerts.webhook_allowed_hosts",
    }


def test_file_beats_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "server:\n  http_port: 9000\nretention:\n  traces: 2d\n")
    s = load({}, path, {})
    assert s["server.http_port"] == 9000
    assert s["retention.traces"] == 2 * 86400
    assert s["server.grpc_port"] == 4317


def test_env_beats_file(tmp_path: Path) -> None:
    path = write(tmp_path, "server:\n  http_port: 9000\nretention:\n  traces: 2d\n")
    env = {"OTTERSCOPE_SERVER__HTTP_PORT": "9100", "OTTERSCOPE_RETENTION__TRACES": "36h"}
    s = load({}, path, env)
    assert s["server.http_port"] == 9100
    assert s["retention.traces"] == 36 * 3600


def test_flags_beat_env_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, "server:\n  http_port: 9000\n  host: 10.0.0.1\n")
    env = {"OTTERSCOPE_SERVER__HTTP_PORT": "9100", "OTTERSCOPE_SERVER__HOST": "10.0.0.2"}
    s = load({"server.http_port": 9200, "server.host": None}, path, env)
    assert s["server.http_port"] == 9200
    # A flag that was not given (None) does not hide the lower layers.
    assert s["server.host"] == "10.0.0.2"


def test_short_env_names(tmp_path: Path) -> None:
    path = write(tmp_path, "server:\n  data_dir: /from/file\nauth:\n  token: file-token\n")
    env = {"OTTERSCOPE_DATA_DIR": "/from/env", "OTTERSCOPE_AUTH_TOKEN": "env-token"}
    s = load({}, path, env)
    assert s["server.data_dir"] == "/from/env"
    assert s["auth.token"] == "env-token"
    assert [t.token for t in s.tokens] == ["env-token"]
    assert s.tokens[0].tenant == "default"
    assert s.tokens[0].scopes == SCOPES
    # The flag still wins over the short env name.
    assert load({"server.data_dir": "/from/flag"}, path, env)["server.data_dir"] == "/from/flag"


def test_long_env_name_also_works_for_short_keys() -> None:
    s = load({}, None, {"OTTERSCOPE_SERVER__DATA_DIR": "/d", "OTTERSCOPE_AUTH__TOKEN": "t"})
    assert s["server.data_dir"] == "/d"
    assert s["auth.token"] == "t"


def test_bool_values_from_env() -> None:
    for text, expected in (
        ("true", True),
        ("1", True),
        ("yes", True),
        ("false", False),
        ("0", False),
    ):
        s = load({}, None, {"OTTERSCOPE_SERVER__ALLOW_ANONYMOUS": text})
        assert s["server.allow_anonymous"] is expected
    message = config_error(flags={}, env={"OTTERSCOPE_SERVER__ALLOW_ANONYMOUS": "maybe"})
    assert "server.allow_anonymous" in message
    assert "OTTERSCOPE_SERVER__ALLOW_ANONYMOUS" in message


def test_unrelated_env_is_ignored() -> None:
    s = load({}, None, {"OTTERSCOPE_URL": "http://x", "HOME": "/root", "OTTERSCOPE_TOKEN": "t"})
    assert s.tokens == ()


# -- list keys are file-only -------------------------------------------------------------------


def test_list_keys_refuse_env(tmp_path: Path) -> None:
    """A list in the environment is refused (it used to be ignored without a word)."""
    for name, dotted in (
        ("OTTERSCOPE_AUTH__TOKENS", "auth.tokens"),
        ("OTTERSCOPE_CORS__ORIGINS", "cors.origins"),
        ("OTTERSCOPE_SERVER__ALLOWED_HOSTS", "server.allowed_hosts"),
    ):
        message = config_error(flags={}, env={name: "evil.example"})
        assert name in message and dotted in message and "config file" in message

    path = write(
        tmp_path,
        "cors:\n  origins: [https://app.example]\nserver:\n  allowed_hosts: [otel.internal]\n",
    )
    s = load({}, path, {})
    assert s["cors.origins"] == ("https://app.example",)
    assert s["server.allowed_hosts"] == ("otel.internal",)


# -- environment names -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("OTTERSCOPE_SERVER__HTTP_PROT", "OTTERSCOPE_SERVER__HTTP_PORT"),
        ("OTTERSCOPE_SERVER_HTTP_PORT", "OTTERSCOPE_SERVER__HTTP_PORT"),
        ("otterscope_retention__traces", "OTTERSCOPE_RETENTION__TRACES"),
        ("OTTERSCOPE_AUTH_TOKN", "OTTERSCOPE_AUTH_TOKEN"),
        ("OTTERSCOPE_DATADIR", "OTTERSCOPE_DATA_DIR"),
        ("OTTERSCOPE_SQL__MAX_ROW", "OTTERSCOPE_SQL__MAX_ROWS"),
    ],
)
def test_a_misspelt_variable_is_refused_with_the_closest_name(name: str, suggestion: str) -> None:
    message = config_error(flags={}, env={name: "1"})
    assert f"unknown environment variable {name}: did you mean {suggestion}?" in message


def test_a_variable_like_no_setting_is_refused_with_where_to_look() -> None:
    message = config_error(flags={}, env={"OTTERSCOPE_ZZZZZZZZZZ": "1"})
    assert "OTTERSCOPE_ZZZZZZZZZZ" in message and "otterscope serve --help" in message


def test_variables_the_config_file_reads_are_not_mistakes(tmp_path: Path) -> None:
    path = write(tmp_path, "auth:\n  tokens:\n    - token: ${env:OTTERSCOPE_INGEST_TOKEN}\n")
    s = load({}, path, {"OTTERSCOPE_INGEST_TOKEN": "t1"})
    assert [t.token for t in s.tokens] == ["t1"]
    # Without the file that reads it, the same variable is a mistake.
    assert "OTTERSCOPE_INGEST_TOKEN" in config_error(
        flags={}, env={"OTTERSCOPE_INGEST_TOKEN": "t1"}
    )


def test_list_keys_must_be_lists_of_strings(tmp_path: Path) -> None:
    path = write(tmp_path, "cors:\n  origins: https://app.example\n")
    message = config_error(flags={}, config_file=path, env={})
    assert "cors.origins" in message
    path = write(tmp_path, "server:\n  allowed_hosts: [1, 2]\n")
    assert "server.allowed_hosts" in config_error(flags={}, config_file=path, env={})


# -- ${env:NAME} substitution -------------------------------------------------------------------


def test_env_substitution(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "server:\n  http_port: ${env:PORT}\n  data_dir: /srv/${env:SITE}/data\n"
        "auth:\n  tokens:\n    - token: ${env:INGEST_TOKEN}\n      tenant: acme\n"
        "      scopes: [ingest]\n",
    )
    s = load({}, path, {"PORT": "9999", "SITE": "east", "INGEST_TOKEN": "s3cret"})
    assert s["server.http_port"] == 9999
    assert s["server.data_dir"] == "/srv/east/data"
    assert len(s.tokens) == 1
    assert s.tokens[0].token == "s3cret"
    assert s.tokens[0].tenant == "acme"
    assert s.tokens[0].scopes == frozenset({"ingest"})


def test_unset_env_reference_is_an_error_naming_it(tmp_path: Path) -> None:
    path = write(tmp_path, "auth:\n  token: ${env:OTTERSCOPE_TEST_SURELY_UNSET}\n")
    message = config_error(flags={}, config_file=path, env={})
    assert "OTTERSCOPE_TEST_SURELY_UNSET" in message


def test_empty_env_reference_is_substituted(tmp_path: Path) -> None:
    path = write(tmp_path, "auth:\n  extra_header: '${env:HDR}'\n")
    assert load({}, path, {"HDR": ""})["auth.extra_header"] == ""


def test_substitution_does_not_recurse(tmp_path: Path) -> None:
    path = write(tmp_path, "server:\n  data_dir: ${env:A}\n")
    assert load({}, path, {"A": "${env:B}"})["server.data_dir"] == "${env:B}"


# -- unknown names and malformed files ---------------------------------------------------------


def test_unknown_section(tmp_path: Path) -> None:
    path = write(tmp_path, "sever:\n  host: 0.0.0.0\n")
    message = config_error(flags={}, config_file=path, env={})
    assert "unknown section" in message and "sever" in message


def test_unknown_key(tmp_path: Path) -> None:
    path = write(tmp_path, "server:\n  http_prot: 1\n")
    message = config_error(flags={}, config_file=path, env={})
    assert "unknown key" in message and "server.http_prot" in message


def test_section_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "server: 4318\n")
    assert "server" in config_error(flags={}, config_file=path, env={})


def test_file_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "- a\n- b\n")
    assert "mapping" in config_error(flags={}, config_file=path, env={})


def test_invalid_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "server: [unclosed\n")
    assert "not valid YAML" in config_error(flags={}, config_file=path, env={})


def test_missing_file(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.yaml")
    message = config_error(flags={}, config_file=missing, env={})
    assert "cannot read config file" in message and "nope.yaml" in message


def test_empty_file_is_all_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    assert load({}, path, {})["server.http_port"] == 4318


# -- value parsing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("7d", 7 * 86400.0),
        ("30s", 30.0),
        ("250ms", 0.25),
        ("15m", 900.0),
        ("2h", 7200.0),
        ("1w", 604800.0),
        ("1.5s", 1.5),
        ("45", 45.0),
        (45, 45.0),
        (0.5, 0.5),
    ],
)
def test_durations(text: Any, seconds: float) -> None:
    assert parse_seconds(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["7 days", "soon", "-5s", "1y", "", True])
def test_bad_durations(text: Any) -> None:
    with pytest.raises(ValueError):
        parse_seconds(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("16MiB", 16 * 1024**2),
        ("16mib", 16 * 1024**2),
        ("1GB", 10**9),
        ("512kb", 512_000),
        ("2 GiB", 2 * 1024**3),
        ("100", 100),
        ("100B", 100),
        (4096, 4096),
    ],
)
def test_sizes(text: Any, size: int) -> None:
    assert parse_bytes(text) == size


@pytest.mark.parametrize("text", ["16 megabytes", "MiB", "-1MiB", "1TiB", True])
def test_bad_sizes(text: Any) -> None:
    with pytest.raises(ValueError):
        parse_bytes(text)


def test_duration_and_size_keys_parse_from_env_and_file(tmp_path: Path) -> None:
    path = write(
        tmp_path, "retention:\n  logs: 30d\n  max_bytes: 20GiB\ningest:\n  retry_after: 250ms\n"
    )
    env = {
        "OTTERSCOPE_INGEST__MAX_BODY_BYTES": "8MiB",
        "OTTERSCOPE_SERVER__SHUTDOWN_TIMEOUT": "10s",
    }
    s = load({}, path, env)
    assert s["retention.logs"] == 30 * 86400
    assert s["retention.max_bytes"] == 20 * 1024**3
    assert s["ingest.retry_after"] == 0.25
    assert s["ingest.max_body_bytes"] == 8 * 1024**2
    assert s["server.shutdown_timeout"] == 10.0


def test_bad_duration_names_the_key_and_source(tmp_path: Path) -> None:
    path = write(tmp_path, "retention:\n  traces: a week\n")
    message = config_error(flags={}, config_file=path, env={})
    assert "retention.traces" in message
    assert "config file" in message
    assert "a week" in message

    message = config_error(flags={}, env={"OTTERSCOPE_RETENTION__LOGS": "forever"})
    assert "retention.logs" in message and "OTTERSCOPE_RETENTION__LOGS" in message


def test_bad_size_names_the_key(tmp_path: Path) -> None:
    message = config_error(flags={}, env={"OTTERSCOPE_INGEST__MAX_BODY_BYTES": "16 megs"})
    assert "ingest.max_body_bytes" in message


def test_bad_integer_names_the_key() -> None:
    message = config_error(flags={}, env={"OTTERSCOPE_SERVER__HTTP_PORT": "http"})
    assert "server.http_port" in message
    assert "'http' is not a whole number" in message and "int()" not in message
    message = config_error(flags={"server.grpc_port": "x"}, env={})
    assert "server.grpc_port" in message and "command line" in message


def test_positive_limits_and_budget_relation() -> None:
    message = config_error(flags={}, env={"OTTERSCOPE_INGEST__MAX_BODY_BYTES": "0"})
    assert "ingest.max_body_bytes" in message
    message = config_error(
        flags={},
        env={
            "OTTERSCOPE_INGEST__MAX_BODY_BYTES": "64MiB",
            "OTTERSCOPE_INGEST__MEMORY_BUDGET_BYTES": "32MiB",
        },
    )
    assert "ingest.memory_budget_bytes" in message


# -- tokens ------------------------------------------------------------------------------------


def test_tokens_list(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
auth:
  tokens:
    - token: ingest-only
      tenant: acme
      scopes: [ingest]
    - token: reader
      tenant: acme
      scopes: [read]
    - token: everything
""",
    )
    s = load({}, path, {"OTTERSCOPE_AUTH_TOKEN": "root"})
    by_token = {t.token: t for t in s.tokens}
    assert set(by_token) == {"root", "ingest-only", "reader", "everything"}
    assert by_token["ingest-only"].scopes == frozenset({"ingest"})
    assert by_token["ingest-only"].tenant == "acme"
    assert by_token["reader"].scopes == frozenset({"read"})
    # Defaults: tenant 'default', every scope.
    assert by_token["everything"].tenant == "default"
    assert by_token["everything"].scopes == SCOPES
    assert by_token["root"].scopes == SCOPES


@pytest.mark.parametrize(
    ("entry", "needle"),
    [
        ("- tenant: acme", "token"),
        ("- token: ''", "token"),
        ("- token: 42", "token"),
        ("- just-a-string", "token"),
        ("- {token: t, scopes: [ingest, write]}", "scopes"),
        ("- {token: t, scopes: read}", "scopes"),
        ("- {token: t, tenant: 'a b'}", "tenant"),
        ("- {token: t, tenant: ''}", "tenant"),
        ("- {token: t, tenant: 7}", "tenant"),
        ("- {token: t, scope: [ingest]}", "scope"),
    ],
)
def test_bad_token_entries(tmp_path: Path, entry: str, needle: str) -> None:
    path = write(tmp_path, f"auth:\n  tokens:\n    {entry}\n")
    message = config_error(flags={}, config_file=path, env={})
    assert "auth.tokens[0]" in message
    assert needle in message


def test_tokens_must_be_a_list(tmp_path: Path) -> None:
    path = write(tmp_path, "auth:\n  tokens: abc\n")
    assert "auth.tokens" in config_error(flags={}, config_file=path, env={})


def test_duplicate_tokens_are_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "auth:\n  tokens:\n    - {token: same, tenant: a}\n    - {token: same, tenant: b}\n",
    )
    message = config_error(flags={}, config_file=path, env={})
    assert "auth.tokens[1]" in message and "same" not in message  # tokens are never echoed
    path = write(tmp_path, "auth:\n  tokens:\n    - {token: root, tenant: a}\n")
    message = config_error(flags={}, config_file=path, env={"OTTERSCOPE_AUTH_TOKEN": "root"})
    assert "auth.tokens[0]" in message


# -- TLS ---------------------------------------------------------------------------------------


def test_tls_cert_without_key_is_refused() -> None:
    message = config_error(flags={"server.tls_cert": "/etc/cert.pem"}, env={})
    assert "server.tls_cert" in message and "server.tls_key" in message


def test_tls_key_without_cert_is_refused() -> None:
    message = config_error(flags={}, env={"OTTERSCOPE_SERVER__TLS_KEY": "/etc/key.pem"})
    assert "server.tls_cert" in message and "server.tls_key" in message


def test_tls_cert_and_key_together() -> None:
    s = load({"server.tls_cert": "c.pem"}, None, {"OTTERSCOPE_SERVER__TLS_KEY": "k.pem"})
    assert (s["server.tls_cert"], s["server.tls_key"]) == ("c.pem", "k.pem")


@pytest.mark.parametrize("port", [0, -1, 65536, 70000])
def test_ports_out_of_range(port: int) -> None:
    for key in ("server.http_port", "server.grpc_port"):
        message = config_error(flags={key: port}, env={})
        assert f"{key} is {port}" in message and "1 to 65535" in message


def test_the_two_ports_differ() -> None:
    message = config_error(flags={"server.http_port": 5000, "server.grpc_port": 5000}, env={})
    assert "both 5000" in message


@pytest.mark.parametrize(
    "key", ["server.header_timeout", "server.body_timeout", "server.max_connections"]
)
def test_connection_limits_are_positive(key: str) -> None:
    assert f"{key} must be positive" in config_error(flags={key: 0}, env={})
