"""Deploy verifications outlive their member: every live cluster member looks, every
lease/3, for unfinished deploys whose verifying member instance holds no lease (it died,
was fenced or stopped), claims each with a compare-and-set on the record's owner (one
claimant wins) and resumes it (synth.agent.deploys.DeployManager.resume)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from synth.cluster.membership import Membership
from synth.store import DeployRecord, StoreError
from synth.store.cluster import ClusterTable

log = logging.getLogger("synth.cluster")

# Claimed per pass: a burst of orphans is taken over in a few passes, by all survivors.
CLAIM_BATCH = 20


class DeployTakeover:
    """The claiming loop of one member; `run()` until cancelled."""

    def __init__(
        self,
        membership: Membership,
        table: Callable[[], ClusterTable | None],
        resume: Callable[[DeployRecord], Awaitable[None]],
        on_claimed: Callable[[], None],
    ) -> None:
        self._membership = membership
        self._table = table
        self._resume = resume
        self._on_claimed = on_claimed

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._membership.timing.renew)
            try:
                await self.claim_orphans()
            except StoreError as exc:
                log.warning("could not look for orphaned deploys: %s", exc)

    async def claim_orphans(self) -> int:
        """Claim and resume what is orphaned now; how many this member took."""
        table = self._table()
        if table is None or not self._membership.may_run():
            return 0  # a fenced member takes nothing: it may be the one cut off
        taken = 0
        for deploy_id, previous in await table.orphaned_deploys(CLAIM_BATCH):
            record = await table.claim_deploy(
                deploy_id, owner=self._membership.owner_token(), previous=previous
            )
            if record is None:
                continue  # another survivor was first, or it finished meanwhile
            taken += 1
            self._on_claimed()
            log.warning(
                "took over a deploy verification from a member that is gone",
                extra={"deploy_id": deploy_id, "from_member": previous},
            )
            await self._resume(record)
        return taken
