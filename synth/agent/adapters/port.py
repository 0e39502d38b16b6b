"""What a CD-tool adapter may ask of the agent, and nothing more: its settings (the hooks,
the environments), whether it is stopping, the API's tokens, submitting a deploy and
awaiting its verdict, and counting a refused hook call. `Agent` provides it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from synth.agent.deploys import DeployEvent
    from synth.config import Settings
    from synth.store import DeployRecord


class DeployPort(Protocol):
    """The agent as the CD-tool adapters see it."""

    @property
    def settings(self) -> Settings: ...

    @property
    def stopping(self) -> bool: ...

    @property
    def api_tokens(self) -> Sequence[str]:
        """`server.tokens`: what a hook without tokens of its own accepts."""
        ...

    async def submit_deploy(self, event: DeployEvent) -> tuple[DeployRecord, bool]:
        """Start verifying (record, created); DeployRefused when nothing covers it."""
        ...

    async def wait_deploy(self, deploy_id: str, timeout_s: float) -> DeployRecord | None:
        """The record once finished, or as it is after `timeout_s`."""
        ...

    def hook_rejected(self, hook: str, code: str) -> None:
        """Count a refused hook call (synth_hook_rejections_total)."""
        ...
