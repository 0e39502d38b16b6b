"""Retry from another location: a scheduled run that failed here is retried once by a
live agent of another location sharing the store, before it counts as failed — so a
fault of this location's own network or DNS reads as what it is (passed on retry, flaky
here) and a fault of the target fails from everywhere.

The asker writes a request (synth.store.remote_retries) and waits for the answer up to the
check's timeout plus a margin; a member of another location claims it within a poll
interval, runs the check once (no retries, not published: it is the asker's attempt) and
answers with its run. With no other location live, the store away or no answer in time,
the asker retries here, as without a cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from synth.codec import run_from_dict, run_to_dict
from synth.model import CheckSpec, Phase, RunRequest, RunResult
from synth.store import Store, StoreError
from synth.store.remote_retries import RetryAsked

if TYPE_CHECKING:
    from synth.agent.app import Agent

log = logging.getLogger("synth.agent")

POLL_S = 0.1
"""How often the asker looks for the answer."""
SERVE_POLL_S = 0.25
"""How often a member looks for requests from other locations."""
MARGIN_S = 3.0
"""What the asker waits beyond the check's timeout: a claim, the answer's write."""
MAX_SERVING = 4
"""Retries one member runs for other locations at once."""

RunOnce = Callable[[RunRequest], Awaitable[RunResult]]


class RemoteRetries:
    """Asks other locations for retries, and answers theirs."""

    def __init__(
        self,
        *,
        store: Callable[[], Store | None],
        location: Callable[[], str],
        member: str,
        check: Callable[[str], CheckSpec | None],
        run_once: RunOnce,
    ) -> None:
        self._store = store
        self._location = location
        self._member = member
        self._check = check
        self._run_once = run_once
        self._serving: set[asyncio.Task[None]] = set()
        self.asked = 0
        self.answered_here = 0

    async def retry(self, request: RunRequest, failed: RunResult) -> RunResult | None:
        """Another location's attempt at `request`, or None to retry here."""
        store = self._store()
        if store is None or not store.shared:
            return None
        location = self._location()
        request_id = uuid.uuid4().hex
        wait_s = request.check.timeout_s + MARGIN_S
        try:
            if not await store.retries.other_locations(location):
                return None
            await store.retries.ask(
                request_id,
                check=request.check.name,
                environment=request.environment,
                phase=request.phase.value,
                location=location,
                within_s=wait_s,
            )
        except StoreError as exc:
            log.warning("retry not asked of another location (retrying here): %s", exc)
            return None
        self.asked += 1
        try:
            async with asyncio.timeout(wait_s):
                while True:
                    await asyncio.sleep(POLL_S)
                    done, answer = await store.retries.answered(request_id)
                    if done:
                        return run_from_dict(answer) if answer is not None else None
        except TimeoutError:
            log.info(
                "no other location answered the retry in time; retrying here",
                extra={"check": request.check.name, "env": request.environment},
            )
            return None
        except (StoreError, ValueError) as exc:
            log.warning("retry from another location unusable (retrying here): %s", exc)
            return None
        finally:
            with contextlib.suppress(StoreError):
                await asyncio.shield(store.retries.withdraw(request_id))

    async def serve(self) -> None:
        """Claim and run other locations' retries until cancelled."""
        while True:
            await asyncio.sleep(SERVE_POLL_S)
            store = self._store()
            free = MAX_SERVING - len(self._serving)
            if store is None or not store.shared or free <= 0:
                continue
            try:
                asked = await store.retries.claim(
                    location=self._location(), member=self._member, limit=free
                )
            except StoreError as exc:
                log.debug("retry requests not read: %s", exc)
                continue
            for item in asked:
                task = asyncio.create_task(self._answer(store, item))
                self._serving.add(task)
                task.add_done_callback(self._serving.discard)

    async def _answer(self, store: Store, item: RetryAsked) -> None:
        check = self._check(item.check)
        result = None
        if check is not None and check.applies_to(item.environment):
            request = RunRequest(
                check=check,
                environment=item.environment,
                phase=Phase(item.phase),
                location=self._location(),
            )
            try:
                async with asyncio.timeout(max(item.seconds_left - 0.5, 0.1)):
                    result = run_to_dict(await self._run_once(request))
            except TimeoutError:
                result = None
            except Exception:  # an asked retry must never take the member down
                log.exception("retry for another location failed to run")
        try:
            await store.retries.answer(item.id, member=self._member, result=result)
            self.answered_here += 1
        except StoreError as exc:
            log.warning("retry answer not stored: %s", exc)

    async def close(self) -> None:
        for task in list(self._serving):
            task.cancel()
        await asyncio.gather(*self._serving, return_exceptions=True)


def remote_retries(agent: Agent) -> RemoteRetries:
    """The agent's retries across locations: asked and answered as its cluster member
    (none without a cluster: `retry` then always answers "retry here")."""
    membership = agent.membership
    return RemoteRetries(
        store=lambda: agent.store if agent.store_ok and membership is not None else None,
        location=lambda: agent.settings.location,
        member=membership.owner_token() if membership is not None else "",
        check=lambda name: agent._check_named(name),
        run_once=lambda request: agent.executor.run(request, None, retries=0),
    )
