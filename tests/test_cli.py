"""The ``otterscope`` command line: help texts, usage errors, configuration errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from otterscope.config import KEYS

SERVE_FLAGS = (
    "--host",
    "--http-port",
    "--grpc-port",
    "--data-dir",
    "--config",
    "--tls-cert",
    "--tls-key",
    "--allow-anonymous",
    "--log-level",
)


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTTERSCOPE_")}
    env["COLUMNS"] = "200"  # argparse wraps at the terminal width
    return subprocess.run(
        [sys.executable, "-m", "otterscope", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
    )


def test_top_level_help() -> None:
    result = run("--help")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("usage: otterscope")
    assert "serve" in out
    assert "OpenTelemetry" in out


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("otterscope ")


def test_serve_help_lists_every_flag_and_key() -> None:
    result = run("serve", "--help")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for flag in SERVE_FLAGS:
        assert flag in out, flag
    for key in KEYS:
        assert key.dotted in out, key.dotted
        if not key.file_only:
            assert key.env in out, key.env
    # The short env names are documented too.
    assert "OTTERSCOPE_AUTH_TOKEN" in out
    assert "OTTERSCOPE_DATA_DIR" in out
    assert "flags > environment > config file > defaults" in out


def test_serve_flags_match_the_parser() -> None:
    """No flag is added to ``serve`` without the list above (and so the README) knowing."""
    from otterscope.cli.main import _parser

    parser = _parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    serve = sub.choices["serve"]  # type: ignore[index]
    flags = {o for a in serve._actions for o in a.option_strings if o.startswith("--")}
    assert flags - {"--help"} == set(SERVE_FLAGS)


def test_every_flag_with_a_key_is_a_serve_flag() -> None:
    for key in KEYS:
        if key.flag:
            assert key.flag in SERVE_FLAGS, key.dotted


def test_no_command_is_a_usage_error() -> None:
    result = run()
    assert result.returncode == 2
    assert "usage: otterscope" in result.stdout + result.stderr


def test_unknown_command_is_a_usage_error() -> None:
    result = run("frobnicate")
    assert result.returncode == 2
    assert "usage: otterscope" in result.stderr


def test_unknown_flag_is_a_usage_error() -> None:
    result = run("serve", "--no-such-flag")
    assert result.returncode == 2
    assert "--no-such-flag" in result.stderr


def _config_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("otterscope: configuration error"), lines[0]
    return lines[0]


def test_unknown_key_in_config_file(tmp_path: Path) -> None:
    path = tmp_path / "otterscope.yaml"
    path.write_text("server:\n  http_prot: 4318\n")
    line = _config_error_line(
        run("serve", "--config", str(path), "--data-dir", str(tmp_path / "d"), cwd=tmp_path)
    )
    assert "server.http_prot" in line
    assert not (tmp_path / "d").exists(), "nothing is created before the configuration is valid"


def test_invalid_yaml_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "otterscope.yaml"
    path.write_text("server: [unclosed\n")
    line = _config_error_line(run("serve", "--config", str(path), cwd=tmp_path))
    assert "not valid YAML" in line


def test_unset_env_reference(tmp_path: Path) -> None:
    path = tmp_path / "otterscope.yaml"
    path.write_text("auth:\n  token: ${env:OTTERSCOPE_CLI_TEST_UNSET}\n")
    line = _config_error_line(run("serve", "--config", str(path), cwd=tmp_path))
    assert "OTTERSCOPE_CLI_TEST_UNSET" in line


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--tls-cert", "cert.pem"], "server.tls_key"),
        (["--http-port", "http"], "--http-port"),
    ],
)
def test_bad_flags(tmp_path: Path, args: list[str], needle: str) -> None:
    result = run("serve", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert needle in result.stderr


def test_public_host_without_token_refuses_to_start(tmp_path: Path) -> None:
    result = run("serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path / "d"), cwd=tmp_path)
    line = _config_error_line(result)
    assert "OTTERSCOPE_AUTH_TOKEN" in line
    assert "--allow-anonymous" in line
