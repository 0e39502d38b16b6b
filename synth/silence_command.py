"""`synth silence`: make, list and end silences through a running agent's API
(`/v1/silences`), as `synth trigger` talks to it: `--agent URL` (default
$SYNTH_AGENT_URL or http://127.0.0.1:8484), credentials from $SYNTH_TOKEN or
$SYNTH_HMAC_SECRET.

    synth silence add --check checkout --env production --for 2h --reason "db failover"
    synth silence list
    synth silence expire 4e71b649b61c44e8b4aec7745b32e395

Exit codes: 0 done, 2 bad arguments, an agent out of reach or a request it refused (its
`detail` is printed).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO
from urllib.parse import quote

import httpx2

from synth.agent.auth import credentials_from_env
from synth.agent.trigger import AGENT_ENV, DEFAULT_AGENT
from synth.errors import SynthError
from synth.units import parse_duration

EXIT_OK, EXIT_ERROR = 0, 2
TIMEOUT_S = 30.0
MATCHERS = ("check", "service", "env", "tag")


class SilenceCommandError(SynthError):
    """What `synth silence` says on stderr before exiting 2."""


def add_silence_parser(commands: Any) -> None:
    silence = commands.add_parser("silence", help="silence paging for a while (maintenance)")
    actions = silence.add_subparsers(dest="silence_command", metavar="COMMAND", required=True)

    add = actions.add_parser("add", help="silence the checks the matchers name")
    _agent_flag(add)
    add.add_argument("--check", metavar="NAME", help="only this check")
    add.add_argument("--service", metavar="NAME", help="only this service's checks")
    add.add_argument("--env", metavar="ENV", help="only this environment")
    add.add_argument("--tag", metavar="TAG", help="only checks with this tag")
    add.add_argument("--all", action="store_true", help="every check (no matchers)")
    add.add_argument(
        "--deploys", action="store_true", help="silence deploy verifications' pages too"
    )
    until = add.add_mutually_exclusive_group(required=True)
    until.add_argument("--for", dest="duration", metavar="DURATION", help="e.g. 30m, 2h, 1d")
    until.add_argument("--until", metavar="TIME", help="ISO 8601 end (UTC without an offset)")
    add.add_argument("--start", metavar="TIME", help="ISO 8601 start (default: now)")
    add.add_argument("--reason", required=True, help="why (shown to people; kept with it)")
    add.add_argument("--author", help="who (default: your user name)")
    add.set_defaults(handler=_add)

    listing = actions.add_parser("list", help="active and upcoming silences and windows")
    _agent_flag(listing)
    listing.add_argument("--json", action="store_true", help="the agent's answer as JSON")
    listing.set_defaults(handler=_list)

    expire = actions.add_parser("expire", help="end a silence now")
    _agent_flag(expire)
    expire.add_argument("silence_id", metavar="ID")
    expire.set_defaults(handler=_expire)


def _agent_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--agent", metavar="URL", help=f"agent URL (default: ${AGENT_ENV} or {DEFAULT_AGENT})"
    )


def _add(args: argparse.Namespace) -> int:
    return _run(lambda: _silence_add(args))


def _list(args: argparse.Namespace) -> int:
    return _run(lambda: _silence_list(args))


def _expire(args: argparse.Namespace) -> int:
    return _run(lambda: _silence_expire(args))


def _run(action: Callable[[], None], err: TextIO | None = None) -> int:
    try:
        action()
    except SilenceCommandError as exc:
        print(f"synth silence: {exc}", file=err or sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def request_body(args: argparse.Namespace, now: datetime) -> dict[str, Any]:
    """The `POST /v1/silences` body of `synth silence add`; SilenceCommandError when the
    arguments cannot make one (the agent checks the rest and says why it refuses)."""
    matchers = {key: value for key in MATCHERS if (value := getattr(args, key)) is not None}
    if args.all and matchers:
        raise SilenceCommandError("--all silences every check: give it no --check/--service/…")
    if not args.all and not matchers:
        raise SilenceCommandError(
            "say what to silence: --check, --service, --env and/or --tag (or --all)"
        )
    body: dict[str, Any] = {
        "matchers": matchers,
        "all": args.all,
        "deploys": args.deploys,
        "reason": args.reason,
        "author": args.author or _user(),
    }
    start = now
    if args.start is not None:
        body["start"] = args.start
        start = _time(args.start, "--start")
    if args.duration is not None:
        try:
            seconds = parse_duration(args.duration)
        except ValueError as exc:
            raise SilenceCommandError(f"--for: {exc}") from None
        if seconds <= 0:
            raise SilenceCommandError("--for: must be longer than 0s")
        try:
            body["end"] = (start + timedelta(seconds=seconds)).isoformat()
        except OverflowError:
            raise SilenceCommandError(f"--for: {args.duration} is too long") from None
    else:
        _time(args.until, "--until")
        body["end"] = args.until
    return body


def _time(text: str, flag: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise SilenceCommandError(
            f"{flag}: {text!r} is not an ISO 8601 time (e.g. 2026-03-01T02:00:00+01:00)"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _user() -> str:
    try:
        return getpass.getuser() or "synth"
    except (KeyError, OSError):  # no user name in a bare container
        return "synth"


def _silence_add(args: argparse.Namespace, out: TextIO = sys.stdout) -> None:
    body = request_body(args, datetime.now(UTC))
    made = _call(args.agent, "POST", "/v1/silences", body, expect=201)
    print(f"silence {made['id']} made", file=out)
    print(_describe(made), file=out)


def _silence_list(args: argparse.Namespace, out: TextIO = sys.stdout) -> None:
    listed = _call(args.agent, "GET", "/v1/silences")
    silences = listed.get("silences", [])
    if args.json:
        out.write(json.dumps(listed, indent=2) + "\n")
        return
    if not silences:
        print("no active or upcoming silences", file=out)
        return
    for silence in silences:
        print(_describe(silence), file=out)


def _silence_expire(args: argparse.Namespace, out: TextIO = sys.stdout) -> None:
    path = f"/v1/silences/{quote(args.silence_id, safe='')}"
    ended = _call(args.agent, "DELETE", path)
    print(f"silence {ended['id']} ended at {ended['end']}", file=out)


def _describe(silence: dict[str, Any]) -> str:
    """`<id>  <what>  <start> → <end>  by <author>: <reason>` (config windows: `config`)."""
    matchers = silence.get("matchers") or {}
    what = "all checks" if silence.get("all") else " ".join(f"{k}={v}" for k, v in matchers.items())
    if silence.get("deploys"):
        what += " (deploys too)"
    who = silence.get("author") or silence.get("source", "")
    return (
        f"{silence['id']}  {what}  {silence['start']} → {silence['end']}  "
        f"by {who}: {silence.get('reason', '')}"
    )


def _call(
    agent: str | None, method: str, path: str, body: Any = None, *, expect: int = 200
) -> dict[str, Any]:
    base = (agent or os.environ.get(AGENT_ENV) or DEFAULT_AGENT).rstrip("/")
    content = json.dumps(body).encode() if body is not None else b""
    headers = credentials_from_env(method, path, content)
    if body is not None:
        headers["Content-Type"] = "application/json"
    try:
        with httpx2.Client(timeout=TIMEOUT_S, trust_env=False) as client:
            response = client.request(method, base + path, content=content, headers=headers)
    except httpx2.HTTPError as exc:
        raise SilenceCommandError(f"cannot reach the agent at {base}: {exc}") from None
    if response.status_code != expect:
        raise SilenceCommandError(
            f"the agent refused ({response.status_code}): {_detail(response)}"
        )
    try:
        data = response.json()
    except ValueError:
        raise SilenceCommandError(f"the agent answered no JSON: {response.text[:200]}") from None
    if not isinstance(data, dict):
        raise SilenceCommandError(f"unexpected answer from the agent: {response.text[:200]}")
    return data


def _detail(response: httpx2.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return response.text[:300]
    return detail if isinstance(detail, str) else json.dumps(detail)
