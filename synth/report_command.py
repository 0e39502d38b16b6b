"""`synth report`: the uptime / SLO report of a period (synth.uptime), from the store or
from a running agent, as text, JSON or CSV."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any

import httpx2

from synth.agent.auth import TOKEN_ENV
from synth.config import find_config_file, load_settings
from synth.errors import SynthError
from synth.store import Store, StoreError
from synth.uptime import build_report, report_csv, report_text, report_to_dict, report_window

EXIT_OK, EXIT_USAGE = 0, 2


def add_report_parser(commands: Any) -> None:
    report = commands.add_parser(
        "report", help="uptime per check: availability, failures by type, incidents"
    )
    report.add_argument("--since", default="30d", help="period up to now (default 30d)")
    report.add_argument("--service", help="only the checks of this service")
    report.add_argument("--env", help="only this environment")
    report.add_argument("--format", choices=("text", "json", "csv"), default="text")
    report.add_argument("--config", metavar="FILE", help="config file (for the store URL)")
    where = report.add_mutually_exclusive_group()
    where.add_argument("--store", metavar="URL", help="store URL (default: store.url)")
    where.add_argument(
        "--agent", metavar="URL", help="agent URL (credentials: $SYNTH_TOKEN when reads need it)"
    )
    report.set_defaults(handler=run_report)


def run_report(args: argparse.Namespace) -> int:
    try:
        data = _from_agent(args) if args.agent else asyncio.run(_from_store(args))
    except (SynthError, ValueError, httpx2.HTTPError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.format == "json":
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    elif args.format == "csv":
        sys.stdout.write(report_csv(data))
    else:
        sys.stdout.write(report_text(data))
    return EXIT_OK


async def _from_store(args: argparse.Namespace) -> dict[str, Any]:
    since, until = report_window(args.since)
    url = args.store or load_settings(find_config_file(args.config)).store.url
    store = await Store.open(url)
    try:
        report = await build_report(
            store, since=since, until=until, service=args.service, environment=args.env
        )
    finally:
        await store.close()
    return report_to_dict(report)


def _from_agent(args: argparse.Namespace) -> dict[str, Any]:
    report_window(args.since)  # the same error here as the agent's 400
    params = {k: v for k, v in (("since", args.since), ("service", args.service),
                                ("env", args.env)) if v}  # fmt: skip
    token = os.environ.get(TOKEN_ENV)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx2.get(
        args.agent.rstrip("/") + "/v1/report", params=params, headers=headers, timeout=30
    )
    if response.status_code != 200:
        raise StoreError(f"the agent answered {response.status_code}: {response.text[:300]}")
    data: dict[str, Any] = response.json()
    return data
