"""Durable, ordered delivery of alerts.

Every event of every channel (PagerDuty triggers, resolves and change events, webhook
events, Slack messages) is written to the store's outbox before anything is sent (in the
same transaction as the alert state that caused it). The sender task delivers, per dedup
key, the oldest pending event only, so a key's events go out in order; different keys do
not wait for each other (webhook and Slack events have keys of their own: a PagerDuty
outage does not hold them up). 429, 5xx, timeouts and network errors are retried with
exponential backoff and jitter (honouring Retry-After); 400 is logged, counted and
dropped. An agent killed mid-send sends that event again after its restart: PagerDuty's
dedup key makes the repeat harmless (a webhook receiver dedupes on the event's id, which
a redelivery keeps).

The channels' clients block (the `pagerduty` client does), so each send runs in the
sender's own worker thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from synth.alerting.channel import Delivery
from synth.alerting.channels import CHANNELS, channel_for
from synth.config import PagerDutySettings, Settings
from synth.model import DeliveryResult
from synth.outputs.metrics import Metrics
from synth.store import NewOutboxEvent, OutboxEvent, OutboxStatus, Store, StoreError

log = logging.getLogger("synth.alerting")

POLL_S = 1.0
BATCH = 50
CLAIM_MARGIN_S = 5.0
DRAIN_S = 5.0


def backoff_s(attempts: int, settings: PagerDutySettings, retry_after_s: float | None) -> float:
    """Seconds before attempt `attempts + 1`: exponential from `retry_initial`, capped at
    `retry_max`, with "equal jitter" (half fixed, half random) so replicas spread out;
    never sooner than the server's Retry-After."""
    ceiling = min(settings.retry_max, settings.retry_initial * 2.0 ** max(attempts - 1, 0))
    delay: float = ceiling / 2 + random.uniform(0, ceiling / 2)
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, settings.retry_max))
    return delay


class Dispatcher:
    """Sends one stored event through its channel (channels.py), resolving the playbook's
    secrets at send time. Blocking: call it from one worker thread."""

    def __init__(self, settings: PagerDutySettings) -> None:
        self._senders = {channel.setting: channel.sender(settings) for channel in CHANNELS}

    def send(self, settings: Settings, event: NewOutboxEvent | OutboxEvent) -> Delivery:
        playbook = settings.playbooks.get(event.playbook)
        if playbook is None:
            return Delivery(
                DeliveryResult.REJECTED, f"playbook {event.playbook!r} is no longer configured"
            )
        channel = channel_for(event.kind)
        if channel is None:
            return Delivery(DeliveryResult.REJECTED, f"unknown event kind {event.kind!r}")
        if not channel.configured(playbook):
            return Delivery(DeliveryResult.REJECTED, f"the playbook has no {channel.setting}")
        try:
            return self._senders[channel.setting].send(event, playbook)
        except ValueError as exc:  # the secret's env var or file went missing: retry later
            return Delivery(DeliveryResult.RETRY, f"cannot read the playbook's secret: {exc}")

    def close(self) -> None:
        for sender in self._senders.values():
            sender.close()


class OutboxSender:
    """The agent's background task that drains the outbox of its own origin (location)."""

    def __init__(
        self,
        *,
        settings: Callable[[], Settings],
        store: Callable[[], Store | None],
        metrics: Metrics,
        origin: str,
    ) -> None:
        self._settings = settings
        self._store = store
        self._metrics = metrics
        self._origin = origin
        self._wake = asyncio.Event()
        self._stopping = False
        self._delivering = asyncio.Lock()  # one delivery pass at a time: none sent twice
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="synth-outbox"
        )
        self._dispatcher: Dispatcher | None = None
        self._dispatcher_for: PagerDutySettings | None = None

    def wake(self) -> None:
        """Something was enqueued: look now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Deliver until `stop`; a store or delivery failure is logged and retried."""
        while not self._stopping:
            try:
                await self.deliver_due()
            except StoreError as exc:
                self._metrics.store_error("outbox")
                log.warning("outbox: store unavailable: %s", exc)
            except Exception:  # never let a bug stop paging for good
                log.exception("outbox: delivery loop failed; retrying")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=POLL_S)

    async def stop(self, drain_s: float = DRAIN_S) -> None:
        """Try for up to `drain_s` to deliver what is due (a graceful stop sends the last
        run's page now rather than at the next start), finish the send in progress
        (bounded by the client timeout), then stop."""
        with contextlib.suppress(TimeoutError, StoreError):
            await asyncio.wait_for(self.deliver_due(), timeout=drain_s)
        self._stopping = True
        self._wake.set()
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close_dispatcher)
        self._executor.shutdown(wait=False)

    async def deliver_due(self) -> int:
        """Send every due event once; returns how many were attempted."""
        store = self._store()
        if store is None:
            return 0
        async with self._delivering:
            return await self._deliver_pass(store)

    async def _deliver_pass(self, store: Store) -> int:
        attempted = 0
        # Agents of one location sharing a store (a cluster) drain the same outbox: each
        # claims one event at a time, for as long as its send may take.
        batch, claim_s = (1, self._settings().pagerduty.timeout + CLAIM_MARGIN_S)
        if not store.shared:
            batch, claim_s = BATCH, 0.0
        while not self._stopping:
            due = await store.due_outbox(origin=self._origin, limit=batch, claim_s=claim_s)
            if not due:
                break
            for event in due:
                if self._stopping:
                    break
                await self._deliver(store, event)
                attempted += 1
            if len(due) < batch:
                break
        await self._refresh_gauges(store)
        return attempted

    async def _deliver(self, store: Store, event: OutboxEvent) -> None:
        settings = self._settings()
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        delivery = await loop.run_in_executor(self._executor, self._send, settings, event)
        attempts = event.attempts + 1
        self._metrics.page_delivery(event.playbook, event.kind, delivery.result.value)
        context = {
            "playbook": event.playbook,
            "action": event.kind,
            "dedup_key": event.dedup_key,
            "outbox_id": event.id,
            "attempts": attempts,
            "seconds": round(time.monotonic() - started, 3),
        }
        if delivery.result is DeliveryResult.SENT:
            await store.outbox_done(event.id, status=OutboxStatus.SENT, attempts=attempts)
            log.info("alert delivered", extra=context)
        elif delivery.result is DeliveryResult.REJECTED:
            await store.outbox_done(
                event.id, status=OutboxStatus.DROPPED, attempts=attempts, error=delivery.error
            )
            log.error("alert rejected and dropped: %s", delivery.error, extra=context)
        else:
            delay = backoff_s(attempts, settings.pagerduty, delivery.retry_after_s)
            await store.outbox_retry(
                event.id,
                attempts=attempts,
                next_attempt_at=datetime.now(UTC) + timedelta(seconds=delay),
                error=delivery.error or "unknown error",
            )
            log.warning(
                "alert not delivered, retrying in %.1fs: %s",
                delay,
                delivery.error,
                extra=context,
            )

    def _send(self, settings: Settings, event: OutboxEvent) -> Delivery:
        if self._dispatcher is None or self._dispatcher_for != settings.pagerduty:
            self._close_dispatcher()
            self._dispatcher = Dispatcher(settings.pagerduty)
            self._dispatcher_for = settings.pagerduty
        return self._dispatcher.send(settings, event)

    def _close_dispatcher(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.close()
            self._dispatcher = None

    async def _refresh_gauges(self, store: Store) -> None:
        depth, oldest = await store.outbox_backlog(origin=self._origin)
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest is not None else 0.0
        self._metrics.outbox_state(depth, age)


def deliver_now(
    settings: Settings,
    events: Sequence[NewOutboxEvent],
    *,
    deadline_s: float = 60.0,
    report: Callable[[NewOutboxEvent, Delivery], Any] | None = None,
) -> list[Delivery]:
    """Send events in order, retrying each within an overall deadline (for `synth run`
    and `synth page test`, which have no agent and no durable outbox). Blocking."""
    dispatcher = Dispatcher(settings.pagerduty)
    deadline = time.monotonic() + deadline_s
    results: list[Delivery] = []
    try:
        for event in events:
            attempts = 0
            while True:
                attempts += 1
                delivery = dispatcher.send(settings, event)
                if delivery.result is not DeliveryResult.RETRY:
                    break
                delay = backoff_s(attempts, settings.pagerduty, delivery.retry_after_s)
                if time.monotonic() + delay > deadline:
                    break
                time.sleep(delay)
            results.append(delivery)
            if report is not None:
                report(event, delivery)
    finally:
        dispatcher.close()
    return results
