# Type stub for the C extension built from _fastspans.c.
from typing import Any

def decode(body: bytes, attribute_count: int, attribute_value_length: int, /) -> dict[str, Any]: ...
