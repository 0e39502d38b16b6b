"""Protocol probes: one module per protocol, each raising `ProbeError` with a failure type."""

from synth.probes.http import ProbeError

__all__ = ["ProbeError"]
