"""The demo shop: a small JSON HTTP service with runtime fault switches, used as a target."""

from synth.demo.faults import Faults
from synth.demo.shop import RequestRecord, ShopServer, ShopThread, run_in_thread

__all__ = ["Faults", "RequestRecord", "ShopServer", "ShopThread", "run_in_thread"]
