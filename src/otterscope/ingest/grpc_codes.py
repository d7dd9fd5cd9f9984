"""The gRPC status code that stands for each otterscope error."""

from __future__ import annotations

from otterscope.errors import OtterscopeError

OK = 0
INVALID_ARGUMENT = 3
PERMISSION_DENIED = 7
RESOURCE_EXHAUSTED = 8
UNIMPLEMENTED = 12
INTERNAL = 13
UNAVAILABLE = 14
UNAUTHENTICATED = 16

_BY_STATUS = {
    400: INVALID_ARGUMENT,
    401: UNAUTHENTICATED,
    403: PERMISSION_DENIED,
    405: UNIMPLEMENTED,
    413: RESOURCE_EXHAUSTED,
    415: INVALID_ARGUMENT,
    429: RESOURCE_EXHAUSTED,
    503: UNAVAILABLE,
}


def grpc_code(exc: OtterscopeError) -> int:
    return _BY_STATUS.get(exc.status, INTERNAL)
