"""The alerting thread: evaluates the rules on their schedule and delivers what is due.

One thread, ``otterscope-alerts``: every second it makes the deliveries that are due, and
every ``alerts.evaluation_interval`` it evaluates every rule. ``POST /api/alerts/evaluate``
evaluates a tenant's rules at once (from the request's worker thread) and delivers.
"""

from __future__ import annotations

import logging
import threading
import time

from otterscope.alerting.delivery import Deliverer
from otterscope.alerting.evaluator import Evaluation, Evaluator
from otterscope.alerting.state import AlertState

log = logging.getLogger("otterscope.alerts")
TICK_S = 1.0


class Alerting:
    def __init__(
        self,
        state: AlertState,
        evaluator: Evaluator,
        deliverer: Deliverer,
        interval_s: float,
        allowed_hosts: tuple[str, ...],
    ) -> None:
        self.state = state
        self.evaluator = evaluator
        self.deliverer = deliverer
        self.allowed_hosts = allowed_hosts  # webhook hosts a rule may name (empty: any)
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="otterscope-alerts", daemon=True)
        # Evaluations and deliveries one at a time (the thread and the API may both ask).
        self._busy = threading.Lock()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)
        self.deliverer.close()

    def evaluate_now(self, tenant: str | None = None) -> Evaluation:
        with self._busy:
            result = self.evaluator.evaluate(tenant)
            self.deliverer.deliver_due()
            return result

    def _run(self) -> None:
        last = 0.0
        while not self._stop.wait(TICK_S):
            try:
                with self._busy:
                    if time.monotonic() - last >= self._interval:
                        last = time.monotonic()
                        self.evaluator.evaluate()
                    self.deliverer.deliver_due()
            except Exception:
                # The thread must outlive one bad evaluation; the next tick tries again.
                log.exception("alerting pass failed")
