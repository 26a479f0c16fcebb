"""The edge agent's command intake: a bounded queue, schema validation, rate limits, refusals.

Nothing that arrives on a command topic is trusted. The network thread only offers payloads
(:meth:`CommandGate.offer`: size check and a bounded queue); the agent's loop takes them
(:meth:`CommandGate.take`), decodes them against :class:`core.wire.Command` and spends a token of
the asset's and of the requester's bucket. Every refusal is counted by reason and waits in
:meth:`CommandGate.answers` for the agent to answer it with one status per asset and pass, so a
flood of refusals cannot become a flood of answers.
"""

from __future__ import annotations

import logging
import queue as queue_mod
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from core.errors import WireError
from core.wire import COMMAND_MAX_BYTES, Command, decode_command

__all__ = ["CommandGate", "Refusals", "TokenBucket"]

log = logging.getLogger(__name__)

#: requesters remembered for their rate limit; the least recently seen is forgotten first
MAX_REQUESTERS = 1024
#: who a command without ``requester`` is charged to
ANONYMOUS = "anonymous"


class TokenBucket:
    """``burst`` tokens, refilled at ``rate_per_s``; a command is served only when it gets one."""

    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate_per_s = rate_per_s
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()

    def available(self) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate_per_s)
        self._at = now
        return self._tokens >= 1.0

    def take(self) -> None:
        self._tokens -= 1.0


@dataclass
class Refusals:
    """The refusals of one asset since they were last answered."""

    count: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    last_why: str = ""

    def detail(self) -> str:
        """``command refused: <why>``, with the tally when more than one is answered at once."""
        if self.count == 1:
            return f"command refused: {self.last_why}"
        tally = ", ".join(f"{reason}: {n}" for reason, n in sorted(self.by_reason.items()))
        return f"command refused: {self.last_why}; {self.count} commands refused ({tally})"


class CommandGate:
    """Bounded, validated, rate-limited command intake of one agent.

    Args:
        assets: the assets this agent serves; commands for others are counted, not answered
            (on a site shared by several agents every agent sees every asset's commands).
        queue_max: commands waiting to be served; more are refused (``queue full``).
        asset_rate_per_min, asset_burst: token bucket of each asset.
        requester_rate_per_min, requester_burst: token bucket of each requester.
        clock: monotonic clock of the buckets.
    """

    def __init__(self, assets: Collection[str], *, queue_max: int, asset_rate_per_min: float, asset_burst: int,
                 requester_rate_per_min: float, requester_burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.assets = frozenset(assets)
        self.queue: queue_mod.Queue[tuple[str, bytes]] = queue_mod.Queue(maxsize=queue_max)
        self._clock = clock
        self._requester_rate = requester_rate_per_min / 60.0
        self._requester_burst = requester_burst
        self._asset_buckets = {a: TokenBucket(asset_rate_per_min / 60.0, asset_burst, clock) for a in self.assets}
        self._requester_buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self._lock = threading.Lock()
        self._pending: dict[str, Refusals] = {}
        #: refusals by reason since the agent started (``queue full``, ``invalid``, ``rate limit`` ...)
        self.refused: Counter[str] = Counter()
        self.served = 0

    # ------------------------------------------------------------------ network thread
    def offer(self, asset_id: str, payload: bytes) -> None:
        """Queue a command payload; never blocks, never raises (called by the MQTT network thread)."""
        if len(payload) > COMMAND_MAX_BYTES:
            self.refuse(asset_id, "oversize", f"command is {len(payload)} bytes, limit is {COMMAND_MAX_BYTES}")
            return
        try:
            self.queue.put_nowait((asset_id, bytes(payload)))
        except queue_mod.Full:
            self.refuse(asset_id, "queue full", f"command queue full ({self.queue.maxsize} waiting)")

    def refuse(self, asset_id: str, reason: str, why: str) -> None:
        """Count a refusal; keep it to be answered when the asset is one of ours."""
        with self._lock:
            self.refused[reason] += 1
            if asset_id not in self.assets:
                log.debug("command for an asset this agent does not serve: counted, not answered")
                return
            pending = self._pending.setdefault(asset_id, Refusals())
            pending.count += 1
            pending.by_reason[reason] += 1
            pending.last_why = why

    # ------------------------------------------------------------------ agent loop
    def take(self) -> tuple[str, Command] | None:
        """The next command that may be served (schema and rate limits passed), or ``None`` when none waits.

        Looks at no more than the queue held when called, so a flood cannot starve the caller.
        """
        for _ in range(self.queue.maxsize):
            try:
                asset_id, payload = self.queue.get_nowait()
            except queue_mod.Empty:
                return None
            command = self._admit(asset_id, payload)
            if command is not None:
                return asset_id, command
        return None

    def _admit(self, asset_id: str, payload: bytes) -> Command | None:
        if asset_id not in self.assets:
            self.refuse(asset_id, "unknown asset", "this agent does not serve the asset")
            return None
        try:
            command = decode_command(payload)
        except WireError as err:
            self.refuse(asset_id, err.reason, err.detail)
            return None
        asset_bucket = self._asset_buckets[asset_id]
        requester = command.requester or ANONYMOUS
        requester_bucket = self._requester_bucket(requester)
        if not asset_bucket.available():
            self.refuse(asset_id, "rate limit (asset)",
                        f"over the asset's rate limit ({asset_bucket.rate_per_s * 60:g} per minute, "
                        f"burst {asset_bucket.burst:g})")
            return None
        if not requester_bucket.available():
            self.refuse(asset_id, "rate limit (requester)",
                        f"over the requester's rate limit ({requester_bucket.rate_per_s * 60:g} per minute, "
                        f"burst {requester_bucket.burst:g})")
            return None
        asset_bucket.take()
        requester_bucket.take()
        self.served += 1
        return command

    def _requester_bucket(self, requester: str) -> TokenBucket:
        bucket = self._requester_buckets.get(requester)
        if bucket is None:
            bucket = TokenBucket(self._requester_rate, self._requester_burst, self._clock)
            self._requester_buckets[requester] = bucket
            if len(self._requester_buckets) > MAX_REQUESTERS:
                self._requester_buckets.popitem(last=False)
        else:
            self._requester_buckets.move_to_end(requester)
        return bucket

    def answers(self) -> dict[str, Refusals]:
        """The refusals to answer, per asset, since the last call."""
        with self._lock:
            pending, self._pending = self._pending, {}
        return pending

    def refused_total(self) -> int:
        with self._lock:
            return sum(self.refused.values())
