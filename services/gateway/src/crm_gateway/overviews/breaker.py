"""An in-process circuit breaker per upstream service, so a failing service is not hammered."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass
class CircuitBreaker:
    """Closed -> open after `failures` failures in a row -> half-open after `cooldown` seconds.

    Half-open lets exactly one trial call through: its success closes the
    circuit, its failure opens it for another cool-down. Per process: each
    replica learns on its own that a service is failing (a few calls each).
    """

    failures: int
    cooldown: float
    clock: Callable[[], float] = time.monotonic
    state: str = CLOSED
    failed_in_a_row: int = 0
    opened_at: float = 0.0
    trial_running: bool = field(default=False)

    def allow(self) -> bool:
        """Whether a call may go out now (taking the half-open trial if it is free)."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN and self.clock() - self.opened_at >= self.cooldown:
            self.state = HALF_OPEN
        if self.state == HALF_OPEN and not self.trial_running:
            self.trial_running = True
            return True
        return False

    def succeeded(self) -> None:
        self.state = CLOSED
        self.failed_in_a_row = 0
        self.trial_running = False

    def failed(self) -> None:
        self.failed_in_a_row += 1
        if self.state == HALF_OPEN or self.failed_in_a_row >= self.failures:
            self.state = OPEN
            self.opened_at = self.clock()
        self.trial_running = False

    def abandoned(self) -> None:
        """A call that ended with neither answer nor failure (cancelled): free the trial."""
        self.trial_running = False


class Breakers:
    """One breaker per upstream service, made on first use."""

    def __init__(self, *, failures: int, cooldown: float):
        self.failures = failures
        self.cooldown = cooldown
        self._by_service: dict[str, CircuitBreaker] = {}

    def of(self, service: str) -> CircuitBreaker:
        breaker = self._by_service.get(service)
        if breaker is None:
            breaker = CircuitBreaker(failures=self.failures, cooldown=self.cooldown)
            self._by_service[service] = breaker
        return breaker
