"""The `synth` command: run, validate, list and demo (the agent's commands join later).

Exit codes: 0 all checks passed, 1 a check failed, 2 configuration, usage or loading errors.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TextIO

from synth import __version__
from synth.batch import run_checks
from synth.checks.loader import LoadedChecks, load_checks
from synth.config import ConfigError, Settings, find_config_file, load_settings
from synth.model import CheckSpec, Phase, RunResult
from synth.outputs.report import TerminalReporter, write_json_report, write_junit_report
from synth.runner import Runner
from synth.selection import select_checks

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad configuration, arguments or check files: exit 2 with the message."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `synth` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        code: int = args.handler(args)
    except UsageError as exc:
        print(f"synth: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as exc:
        print(f"synth: invalid configuration: {exc}", file=sys.stderr)
        for problem in exc.problems[1:] if len(exc.problems) > 1 else ():
            print(f"  {problem}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synth", description="Scripted user-flow checks on schedule and on deploy events."
    )
    parser.add_argument("--version", action="version", version=f"synth {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser("run", help="run checks once and report")
    _add_common(run)
    run.add_argument("--env", required=True, help="environment to run against")
    run.add_argument("--check", action="append", default=[], metavar="NAME", help="only NAME")
    run.add_argument("--tag", action="append", default=[], metavar="TAG", help="only tag TAG")
    run.add_argument("--json", metavar="FILE", help="write the JSON report to FILE (- = stdout)")
    run.add_argument("--junit", metavar="FILE", help="write a JUnit XML report to FILE")
    run.add_argument("--concurrency", type=_positive_int, help="checks running at once")
    run.add_argument(
        "--phase",
        choices=[Phase.ADHOC.value, Phase.PREPROD.value],
        default=Phase.ADHOC.value,
        help="label the runs (preprod for CI runs that feed the baseline)",
    )
    run.add_argument("--no-color", action="store_true", help="plain output")
    run.add_argument(
        "--no-page", action="store_true", help="do not page for failed checks (playbooks)"
    )
    run.set_defaults(handler=_cmd_run)

    validate = commands.add_parser("validate", help="load config and checks, list problems")
    _add_common(validate)
    validate.set_defaults(handler=_cmd_validate)

    listing = commands.add_parser("list", help="show checks")
    _add_common(listing)
    listing.add_argument("--env", help="only checks that run in this environment")
    listing.set_defaults(handler=_cmd_list)

    agent = commands.add_parser("agent", help="run the long-running agent")
    agent.add_argument("paths", nargs="*", metavar="PATH", help="check files or directories")
    agent.add_argument("--config", metavar="FILE", help="config file")
    agent.add_argument("--host", help="API listen address (default: server.host)")
    agent.add_argument("--port", type=int, help="API port (default: server.port; 0 = any)")
    agent.add_argument("--log-format", choices=["auto", "json", "text"], default="auto")
    agent.add_argument("--log-level", default="info")
    agent.set_defaults(handler=_cmd_agent)

    trig = commands.add_parser("trigger", help="announce a deploy and gate on its verdict")
    trig.add_argument("--service", required=True)
    trig.add_argument("--env", required=True)
    trig.add_argument("--version", required=True, dest="deploy_version")
    trig.add_argument("--agent", help="agent URL (default: $SYNTH_AGENT_URL or 127.0.0.1:8484)")
    trig.add_argument("--wait", action="store_true", help="wait for the verdict; exit 0/1/2")
    trig.add_argument("--timeout", type=float, default=600.0, help="seconds to wait")
    trig.add_argument("--commit")
    trig.add_argument("--url", dest="deploy_url", help="link to the deploy")
    trig.add_argument("--id", dest="event_id", help="idempotency key")
    trig.add_argument("--tag", action="append", default=[], help="only checks with TAG")
    trig.set_defaults(handler=_cmd_trigger)

    page = commands.add_parser("page", help="incident playbook tools")
    page_commands = page.add_subparsers(dest="page_command", metavar="COMMAND", required=True)
    page_test = page_commands.add_parser(
        "test", help="send a test trigger and its resolve through a playbook"
    )
    page_test.add_argument("--playbook", required=True, metavar="NAME")
    page_test.add_argument("--config", metavar="FILE", help="config file")
    page_test.set_defaults(handler=_cmd_page_test)

    demo = commands.add_parser("demo", help="run the example checks against the demo shop")
    demo.add_argument("--checks", default=None, help="checks directory (default: ./checks)")
    demo.add_argument("--no-color", action="store_true")
    demo.add_argument("--once", action="store_true", help="exit after the walkthrough")
    demo.set_defaults(handler=_cmd_demo)
    return parser


def _add_common(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("paths", nargs="*", metavar="PATH", help="check files or directories")
    cmd.add_argument(
        "--config", metavar="FILE", help="config file (default: $SYNTH_CONFIG or ./synth.yaml)"
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _load(args: argparse.Namespace) -> tuple[Settings, LoadedChecks]:
    settings = load_settings(find_config_file(args.config))
    paths = args.paths or settings.checks
    return settings, load_checks(paths)


def _print_problems(loaded: LoadedChecks, stream: TextIO) -> None:
    for problem in loaded.problems:
        print(f"error: {problem}", file=stream)


def _cmd_run(args: argparse.Namespace) -> int:
    settings, loaded = _load(args)
    _print_problems(loaded, sys.stderr)
    selection = select_checks(loaded.checks, settings, args.env, names=args.check, tags=args.tag)
    for problem in selection.problems:
        print(f"error: {problem}", file=sys.stderr)
    if not selection.checks:
        if loaded.problems or selection.problems:
            return EXIT_USAGE
        raise UsageError(f"no checks to run in environment {args.env!r}")
    out = sys.stderr if args.json == "-" else sys.stdout
    reporter = TerminalReporter(out, color=None if not args.no_color else False)
    concurrency = args.concurrency or settings.runner.concurrency
    print(
        f"Running {len(selection.checks)} check(s) against {args.env}"
        f" (concurrency {min(concurrency, len(selection.checks))})",
        file=out,
    )
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    runner = Runner(settings)
    runner.environment(args.env)  # fail fast on missing secrets, before any run
    results = asyncio.run(
        run_checks(
            runner,
            selection.checks,
            args.env,
            phase=Phase(args.phase),
            concurrency=concurrency,
            on_result=reporter.run_finished,
        )
    )
    duration = time.perf_counter() - started
    reporter.summary(results, duration_s=duration)
    if args.json:
        write_json_report(
            args.json, results, env=args.env, started_at=started_at, duration_s=duration
        )
    if args.junit:
        write_junit_report(args.junit, results, env=args.env)
    if not args.no_page and settings.playbooks:
        from synth.alerting.oneshot import page_failures

        page_failures(settings, selection.checks, results, sys.stderr)
    if loaded.problems or selection.problems:
        return EXIT_USAGE
    return EXIT_OK if all(r.passed for r in results) else EXIT_FAILED


def _cmd_validate(args: argparse.Namespace) -> int:
    settings, loaded = _load(args)
    _print_problems(loaded, sys.stdout)
    problems = len(loaded.problems)
    for env_name in settings.environments:
        try:
            Runner(settings).environment(env_name)
        except ConfigError as exc:
            for problem in exc.problems:
                print(f"error: {problem}", file=sys.stdout)
                problems += 1
    from synth.alerting.engine import playbook_problems

    for problem in playbook_problems(settings, loaded.checks):
        print(f"error: {problem}", file=sys.stdout)
        problems += 1
    envs = ", ".join(sorted(settings.environments)) or "none"
    print(f"{len(loaded.checks)} check(s) loaded, environments: {envs}; {problems} problem(s)")
    return EXIT_USAGE if problems else EXIT_OK


def _cmd_list(args: argparse.Namespace) -> int:
    settings, loaded = _load(args)
    _print_problems(loaded, sys.stderr)
    checks: Sequence[CheckSpec] = loaded.checks
    if args.env:
        checks = select_checks(checks, settings, args.env).checks
    rows = [("CHECK", "SERVICE", "ENVIRONMENTS", "SCHEDULE", "TAGS", "SOURCE")]
    for check in checks:
        rows.append(
            (
                check.name,
                check.service,
                ",".join(check.environments) or "(all)",
                check.schedule.describe(),
                ",".join(check.tags) or "-",
                str(check.source) if check.source else "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return EXIT_USAGE if loaded.problems else EXIT_OK


def _cmd_agent(args: argparse.Namespace) -> int:
    from pathlib import Path

    from synth.agent.app import Agent, load_state
    from synth.agent.server import bind
    from synth.outputs.logging import configure_logging

    configure_logging(args.log_format, args.log_level)
    config_file = find_config_file(args.config)
    state = load_state(config_file, args.paths)
    for problem in state.problems:
        print(f"error: {problem}", file=sys.stderr)
    if state.problems:
        return EXIT_USAGE
    server = state.settings.server
    try:
        listen = bind(args.host or server.host, server.port if args.port is None else args.port)
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host or server.host}: {exc.strerror}") from None
    host, port = listen.getsockname()[:2]
    print(f"synth agent: API on http://{host}:{port} (metrics at /metrics)", flush=True)
    agent = Agent(
        state, config_path=Path(config_file) if config_file else None, check_paths=args.paths
    )
    asyncio.run(agent.serve(listen))
    return EXIT_OK


def _cmd_trigger(args: argparse.Namespace) -> int:
    from synth.agent.trigger import TriggerArgs, trigger

    return trigger(
        TriggerArgs(
            service=args.service,
            env=args.env,
            version=args.deploy_version,
            agent=args.agent,
            wait=args.wait,
            timeout_s=args.timeout,
            commit=args.commit,
            deploy_url=args.deploy_url,
            event_id=args.event_id,
            tags=tuple(args.tag),
        )
    )


def _cmd_page_test(args: argparse.Namespace) -> int:
    from synth.alerting.oneshot import page_test

    settings = load_settings(find_config_file(args.config))
    return EXIT_OK if page_test(settings, args.playbook, sys.stdout) else EXIT_FAILED


def _cmd_demo(args: argparse.Namespace) -> int:
    from synth.demo.walkthrough import run_walkthrough

    return run_walkthrough(
        checks_dir=args.checks, color=False if args.no_color else None, keep_running=not args.once
    )


def results_exit_code(results: Sequence[RunResult]) -> int:
    """0 when every run passed, else 1."""
    return EXIT_OK if all(r.passed for r in results) else EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
