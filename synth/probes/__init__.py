"""Protocol probes: one module per protocol, each raising `ProbeError` with a failure type."""

from synth.probes.errors import ProbeError

__all__ = ["ProbeError"]
