"""synth: scripted user-flow checks run on schedule and on deploy events.

The public API for check authors::

    import synth

    @synth.check(service="shop", every="30s")
    async def browse(flow: synth.Flow) -> None:
        (await flow.get("/health")).expect_status(200)
"""

from synth.checks.api import CheckDefinitionError, check
from synth.checks.failures import CheckFailure
from synth.checks.flow import Flow
from synth.checks.response import Response
from synth.model import FailureType, Phase

__all__ = [
    "CheckDefinitionError",
    "CheckFailure",
    "FailureType",
    "Flow",
    "Phase",
    "Response",
    "check",
]
__version__ = "0.1.0"
