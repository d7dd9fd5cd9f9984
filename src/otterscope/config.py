"""Configuration: the keys of ``config_keys.KEYS``, loaded as flags > env > file > defaults.

Inside the code the result is a frozen ``Settings`` read by attribute, validated once at
start-up. This module owns where values come from: the config file (with ``${env:NAME}``
references), the environment variables (an unknown ``OTTERSCOPE_*`` one is refused), the
command-line flags, and the checks that span keys (tokens, ports, TLS, budgets).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from otterscope.config_keys import KEYS, Key, parse_bytes, parse_seconds
from otterscope.errors import ConfigError

__all__ = [
    "KEYS",
    "SCOPES",
    "Key",
    "Settings",
    "TokenConfig",
    "load",
    "parse_bytes",
    "parse_seconds",
]


@dataclass(frozen=True)
class TokenConfig:
    token: str
    tenant: str
    scopes: frozenset[str]


SCOPES = frozenset({"ingest", "read", "admin"})


@dataclass(frozen=True)
class Settings:
    values: Mapping[str, Any]
    tokens: tuple[TokenConfig, ...] = field(default=())

    def __getitem__(self, dotted: str) -> Any:
        return self.values[dotted]

    @property
    def data_dir(self) -> Path:
        return Path(self.values["server.data_dir"])


# The short forms of two keys, and the client commands' own names: a shell that exports them
# also runs `otterscope serve`, so they are not mistakes.
_SHORT_ENV = {"OTTERSCOPE_DATA_DIR": "server.data_dir", "OTTERSCOPE_AUTH_TOKEN": "auth.token"}
_CLIENT_ENV = ("OTTERSCOPE_URL", "OTTERSCOPE_TOKEN")


def _check_env_names(env: Mapping[str, str], referenced: set[str]) -> None:
    """Refuse an ``OTTERSCOPE_*`` variable that sets nothing, as an unknown file key is.

    ``referenced``: the variables the config file reads with ``${env:NAME}``.
    """
    settable = [k.env for k in KEYS if not k.file_only] + list(_SHORT_ENV)
    file_only = {k.env: k.dotted for k in KEYS if k.file_only}
    known = {*settable, *_CLIENT_ENV, *referenced}
    for name in sorted(env):
        if not name.upper().startswith("OTTERSCOPE_") or name in known:
            continue
        if name in file_only:
            raise ConfigError(
                f"{name} is not read: {file_only[name]} is a list and is set only in the "
                "config file (--config); unset it and put it there"
            )
        # Compared without the prefix every candidate shares, which would make all look close.
        tails = {n.removeprefix("OTTERSCOPE_"): n for n in [*settable, *_CLIENT_ENV]}
        close = difflib.get_close_matches(name.upper().removeprefix("OTTERSCOPE_"), tails, n=1)
        hint = (
            f"did you mean {tails[close[0]]}?"
            if close
            else "otterscope serve --help lists them all"
        )
        raise ConfigError(
            f"unknown environment variable {name}: {hint} (unset it if it is not for otterscope)"
        )


_ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


def _substitute(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):

        def repl(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in env:
                raise ConfigError(f"config file refers to ${{env:{name}}} but {name} is not set")
            return env[name]

        return _ENV_REF.sub(repl, node)
    if isinstance(node, list):
        return [_substitute(x, env) for x in node]
    if isinstance(node, dict):
        return {k: _substitute(v, env) for k, v in node.items()}
    return node


def _parse_tokens(raw: Any) -> tuple[TokenConfig, ...]:
    if not isinstance(raw, (list, tuple)):
        raise ConfigError("auth.tokens must be a list of {token, tenant, scopes}")
    out = []
    for i, item in enumerate(raw):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("token"), str)
            or not item["token"]
        ):
            raise ConfigError(f"auth.tokens[{i}] needs a non-empty 'token'")
        # A misspelt key (e.g. 'scope') must not silently grant every scope.
        unknown = sorted(str(k) for k in item if k not in ("token", "tenant", "scopes"))
        if unknown:
            raise ConfigError(
                f"auth.tokens[{i}]: unknown key(s) {unknown}; expected token, tenant, scopes"
            )
        scopes = item.get("scopes", sorted(SCOPES))
        if not isinstance(scopes, list) or not set(scopes) <= SCOPES:
            raise ConfigError(f"auth.tokens[{i}].scopes must be a list drawn from {sorted(SCOPES)}")
        tenant = item.get("tenant", "default")
        if not isinstance(tenant, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", tenant):
            raise ConfigError(f"auth.tokens[{i}].tenant must be 1-64 of A-Z a-z 0-9 _ . -")
        out.append(TokenConfig(item["token"], tenant, frozenset(scopes)))
    return tuple(out)


def load(
    flags: Mapping[str, Any] | None = None,
    config_file: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Build the settings. ``flags`` maps dotted keys to values given on the command line."""
    env = os.environ if env is None else env
    flags = flags or {}
    file_doc: dict[str, Any] = {}
    referenced: set[str] = set()
    if config_file:
        try:
            text = Path(config_file).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read config file {config_file}: {exc.strerror}") from None
        try:
            loaded = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {config_file} is not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {config_file} must be a mapping of sections")
        referenced = set(_ENV_REF.findall(text))
        file_doc = _substitute(loaded, env)
        known = {k.section for k in KEYS}
        for section, body in file_doc.items():
            if section not in known:
                raise ConfigError(f"config file: unknown section {section!r}")
            if not isinstance(body, dict):
                raise ConfigError(f"config file: section {section!r} must be a mapping")
            names = {k.name for k in KEYS if k.section == section}
            for name in body:
                if name not in names:
                    raise ConfigError(f"config file: unknown key {section}.{name}")
    _check_env_names(env, referenced)
    short_env = {dotted: env.get(name) for name, dotted in _SHORT_ENV.items()}
    values: dict[str, Any] = {}
    for key in KEYS:
        raw: Any = key.default
        source = "default"
        section = file_doc.get(key.section, {})
        if key.name in section:
            raw, source = section[key.name], "config file"
        if not key.file_only:
            if short_env.get(key.dotted) is not None:
                raw, source = short_env[key.dotted], "environment"
            if key.env in env:
                raw, source = env[key.env], key.env
        if flags.get(key.dotted) is not None:
            raw, source = flags[key.dotted], "command line"
        try:
            values[key.dotted] = key.parse(raw)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{key.dotted} (from {source}): {exc}") from None
    tokens = _parse_tokens(values["auth.tokens"])
    if values["auth.token"]:
        tokens = (TokenConfig(values["auth.token"], "default", SCOPES), *tokens)
    # One token, one tenant: a token listed twice would make its tenant ambiguous.
    offset = 1 if values["auth.token"] else 0
    for i, t in enumerate(tokens):
        if any(t.token == u.token for u in tokens[:i]):
            where = f"auth.tokens[{i - offset}]"
            raise ConfigError(f"{where} repeats a token already configured (auth.token or earlier)")
    for port in ("server.http_port", "server.grpc_port"):
        if not 1 <= values[port] <= 65535:
            raise ConfigError(f"{port} is {values[port]}: a port is a number from 1 to 65535")
    if values["server.http_port"] == values["server.grpc_port"]:
        raise ConfigError(
            f"server.http_port and server.grpc_port are both {values['server.http_port']}: "
            "give each its own port"
        )
    if bool(values["server.tls_cert"]) != bool(values["server.tls_key"]):
        raise ConfigError("server.tls_cert and server.tls_key go together: set both or neither")
    for positive in (
        "ingest.max_body_bytes",
        "ingest.memory_budget_bytes",
        "ingest.max_commit_items",
        "ingest.idempotency_max_keys",
        "live.buffer_messages",
        "server.max_connections",
        "server.header_timeout",
        "server.body_timeout",
    ):
        if values[positive] <= 0:
            raise ConfigError(f"{positive} must be positive")
    if values["ingest.decode_workers"] < 0:
        raise ConfigError("ingest.decode_workers must be 0 (decode on the event loop) or more")
    if values["ingest.memory_budget_bytes"] < values["ingest.max_body_bytes"]:
        raise ConfigError("ingest.memory_budget_bytes must be at least ingest.max_body_bytes")
    return Settings(values=values, tokens=tokens)
