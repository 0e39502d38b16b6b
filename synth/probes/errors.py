"""The one error a probe raises: a network failure, already classified by failure type."""

from __future__ import annotations

from synth.errors import SynthError
from synth.model import FailureType


class ProbeError(SynthError):
    """A network-level failure, already classified."""

    def __init__(self, failure_type: FailureType, message: str) -> None:
        super().__init__(message)
        self.failure_type = failure_type
        self.message = message
