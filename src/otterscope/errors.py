"""The one exception hierarchy of otterscope.

Every error a user can see is an ``OtterscopeError``: it carries the HTTP status, a
snake_case code and a message meant for the user. The API layer maps it to the JSON error
shape, the OTLP receivers map it to a ``google.rpc.Status`` and a gRPC status code.
"""

from __future__ import annotations


class OtterscopeError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class BadRequest(OtterscopeError):
    status = 400
    code = "bad_request"


class Unauthorized(OtterscopeError):
    status = 401
    code = "unauthorized"


class Forbidden(OtterscopeError):
    status = 403
    code = "forbidden"


class NotFound(OtterscopeError):
    status = 404
    code = "not_found"


class MethodNotAllowed(OtterscopeError):
    status = 405
    code = "method_not_allowed"

    def __init__(self, message: str, *, allow: tuple[str, ...]) -> None:
        super().__init__(message)
        self.allow = allow


class PayloadTooLarge(OtterscopeError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(OtterscopeError):
    status = 415
    code = "unsupported_media_type"


class Overloaded(OtterscopeError):
    """The ingest budget is spent: the client should retry later (HTTP 429)."""

    status = 429
    code = "overloaded"


class Unavailable(OtterscopeError):
    """Draining, or the store cannot commit (HTTP 503)."""

    status = 503
    code = "unavailable"


class ConfigError(OtterscopeError):
    """Bad configuration: reported at start-up, never at request time."""

    status = 500
    code = "config_error"


class StartupError(OtterscopeError):
    """What start-up needs is not there: the data dir (in use, not writable) or a port."""

    status = 500
    code = "startup_error"


class StoreError(OtterscopeError):
    status = 500
    code = "store_error"


class QueryTimeout(StoreError):
    status = 503
    code = "query_timeout"


class LayoutTooNew(StoreError):
    code = "layout_too_new"
