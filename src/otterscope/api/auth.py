"""Who is calling: bearer tokens -> a tenant and its scopes.

Tokens are compared as SHA-256 digests with ``hmac.compare_digest`` against every
configured token, so neither the match nor its position leaks through timing. Tokens are
read from headers only, never from a URL, and never logged.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from otterscope.config import SCOPES, TokenConfig
from otterscope.errors import BadRequest, Forbidden, Unauthorized

DEFAULT_TENANT = "default"
_URL_TOKEN_PARAMS = ("token", "access_token", "api_key", "apikey")


@dataclass(frozen=True, slots=True)
class Principal:
    tenant: str
    scopes: frozenset[str]

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise Forbidden(f"this token lacks the '{scope}' scope")


@dataclass(frozen=True, slots=True)
class _Entry:
    digest: bytes
    principal: Principal


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class Authenticator:
    def __init__(self, tokens: tuple[TokenConfig, ...], extra_header: str = "") -> None:
        self._entries = tuple(
            _Entry(_digest(t.token), Principal(t.tenant, t.scopes)) for t in tokens
        )
        self._extra = extra_header.lower()

    @property
    def anonymous(self) -> bool:
        return not self._entries

    def _presented(self, headers: Mapping[str, str]) -> str | None:
        auth = headers.get("authorization")
        if auth:
            scheme, _, value = auth.partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                return value.strip()
        if self._extra:
            extra = headers.get(self._extra)
            if extra:
                scheme, _, rest = extra.partition(" ")
                return rest.strip() if scheme.lower() == "bearer" and rest else extra.strip()
        return None

    def authenticate(
        self, headers: Mapping[str, str], query: Mapping[str, str] | None = None
    ) -> Principal:
        if query:
            for name in _URL_TOKEN_PARAMS:
                if name in query:
                    raise BadRequest(
                        f"tokens are not accepted in URLs (query parameter '{name}'); "
                        "send 'Authorization: Bearer <token>'"
                    )
        if self.anonymous:
            return Principal(DEFAULT_TENANT, SCOPES)
        presented = self._presented(headers)
        if presented is None:
            raise Unauthorized("missing token: send 'Authorization: Bearer <token>'")
        return self.check_token(presented)

    def check_token(self, presented: str) -> Principal:
        digest = _digest(presented)
        found: Principal | None = None
        for entry in self._entries:
            if hmac.compare_digest(entry.digest, digest):
                found = entry.principal
        if found is None:
            raise Unauthorized("unknown token")
        return found
