"""`python -m synth.demo`: run the demo shop until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Sequence

from synth.demo.shop import DEFAULT_PASSWORD, ShopServer


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synth.demo", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument("--port", type=int, default=8080, help="port to bind (default %(default)s)")
    parser.add_argument("--password", default=DEFAULT_PASSWORD, help="password of user 'demo'")
    parser.add_argument("--app-version", default="1.0.0", help="version reported by /health")
    args = parser.parse_args(argv)
    server = ShopServer(version=args.app_version, password=args.password)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(server, args.host, args.port))
    return 0


async def _serve(server: ShopServer, host: str, port: int) -> None:
    url = await server.start(host, port)
    print(f"demo shop listening on {url} (faults admin: {url}/_faults)", flush=True)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopped.set)
    try:
        await stopped.wait()
    finally:
        await server.stop()
    print("demo shop stopped", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
