"""One memory budget for everything ingest holds: bytes being read, decoded and queued.

Receivers take bytes from the budget before they hold them and give them back when the
request is answered. When the budget is spent the request is refused (429) instead of
queueing: memory stays bounded and nothing acknowledged is ever dropped.
"""

from __future__ import annotations

import threading

from otterscope.errors import Overloaded, PayloadTooLarge


class MemoryBudget:
    def __init__(self, total: int, retry_after: float) -> None:
        self.total = total
        self.retry_after = retry_after
        self._used = 0
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        return self._used

    def take(self, n: int) -> None:
        """Take ``n`` bytes or raise ``Overloaded``."""
        with self._lock:
            if self._used + n > self.total:
                raise Overloaded(
                    f"ingest memory budget of {self.total} bytes is in use; retry later",
                    retry_after=self.retry_after,
                )
            self._used += n

    def give(self, n: int) -> None:
        with self._lock:
            self._used -= n
            if self._used < 0:
                raise AssertionError("memory budget released more than it took")


class Lease:
    """The bytes one request holds; released once, whatever happens."""

    def __init__(self, budget: MemoryBudget) -> None:
        self.budget = budget
        self.held = 0

    def take(self, n: int) -> None:
        if self.held + n > self.budget.total:
            # Waiting would not help: this request alone needs more than the whole budget.
            raise PayloadTooLarge(
                f"request needs more than the whole ingest memory budget of "
                f"{self.budget.total} bytes once decoded; send smaller batches"
            )
        self.budget.take(n)
        self.held += n

    def resize(self, n: int) -> None:
        """Hold exactly ``n`` bytes from now on (e.g. decoded size instead of body size)."""
        if n > self.held:
            self.take(n - self.held)
        elif n < self.held:
            self.budget.give(self.held - n)
            self.held = n

    def release(self) -> None:
        if self.held:
            self.budget.give(self.held)
            self.held = 0
