"""Sign-in rate limits: sliding windows kept in process memory.

Each server process keeps its own windows, so with N workers an attacker gets up to N times
the configured attempts; the limits are sized for that. A restart forgets them.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable


class SlidingWindow:
    """At most ``limit`` events per key in any ``window_s`` seconds."""

    def __init__(
        self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _trim(self, key: str, now: float) -> deque[float]:
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - self.window_s:
            events.popleft()
        return events

    def retry_after(self, key: str) -> int:
        """Seconds until ``key`` may try again; 0 if it may now."""
        with self._lock:
            now = self._clock()
            events = self._trim(key, now)
            if len(events) < self.limit:
                if not events:
                    del self._events[key]
                return 0
            return max(1, math.ceil(events[len(events) - self.limit] + self.window_s - now))

    def hit(self, key: str) -> None:
        with self._lock:
            self._trim(key, self._clock()).append(self._clock())
            if len(self._events) > 100_000:  # bound memory under a spray of keys
                self._forget_idle()

    def clear(self, key: str) -> None:
        with self._lock:
            self._events.pop(key, None)

    def _forget_idle(self) -> None:
        now = self._clock()
        for key in list(self._events):
            if not self._trim(key, now):
                del self._events[key]


class LoginLimiter:
    """Failed sign-ins per email, and all sign-in attempts per client address."""

    def __init__(
        self,
        *,
        failures_per_email: int,
        attempts_per_ip: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.by_email = SlidingWindow(failures_per_email, window_s, clock)
        self.by_ip = SlidingWindow(attempts_per_ip, window_s, clock)

    def retry_after(self, email: str, ip: str) -> int:
        return max(self.by_email.retry_after(email), self.by_ip.retry_after(ip))

    def attempt(self, ip: str) -> None:
        self.by_ip.hit(ip)

    def failed(self, email: str) -> None:
        self.by_email.hit(email)

    def succeeded(self, email: str) -> None:
        self.by_email.clear(email)
