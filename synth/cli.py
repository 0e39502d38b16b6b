"""The `synth` command: run, validate, list and demo (the agent's commands join later).

Exit codes: 0 all checks passed, 1 a check failed, 2 configuration, usage or loading errors.
A metrics push that fails is reported on stderr and does not change the exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from synth import __version__
from synth.baseline.client import BaselineError
from synth.batch import run_checks
from synth.checks.loader import LoadedChecks, load_checks
from synth.config import ConfigError, Settings, find_config_file, load_settings
from synth.errors import SynthError
from synth.model import CheckSpec, Phase, RunResult
from synth.outputs.artifact_links import file_link
from synth.outputs.report import TerminalReporter
from synth.outputs.sinks import (
    BaselineTarget,
    OutputPlan,
    PageTarget,
    PushTarget,
    RunLog,
    build_sinks,
)
from synth.report_command import add_report_parser
from synth.runner import Runner
from synth.selection import select_checks
from synth.silence_command import add_silence_parser
from synth.store import StoreError

if TYPE_CHECKING:
    from synth.outputs.metrics import Metrics

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
TRACE_FLUSH_S = 5.0


class UsageError(SynthError):
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
    run.add_argument(
        "--log-format",
        choices=["auto", "json", "text"],
        default="text",
        help="format of the log lines on stderr, check code's included (default: text)",
    )
    run.add_argument("--log-level", default="warning", help="least level logged (default: warning)")
    run.add_argument("--check", action="append", default=[], metavar="NAME", help="only NAME")
    run.add_argument("--tag", action="append", default=[], metavar="TAG", help="only tag TAG")
    run.add_argument("--json", metavar="FILE", help="write the JSON report to FILE (- = stdout)")
    run.add_argument("--junit", metavar="FILE", help="write a JUnit XML report to FILE")
    run.add_argument("--concurrency", type=_positive_int, help="checks running at once")
    run.add_argument(
        "--phase",
        choices=[Phase.ADHOC.value, Phase.PREPROD.value],
        default=Phase.PREPROD.value,
        help="label the runs: preprod (default: CI runs that feed the baseline) or adhoc",
    )
    run.add_argument(
        "--push-metrics",
        metavar="URL",
        help="push the runs' metrics to this Prometheus Pushgateway (job=synth)",
    )
    run.add_argument(
        "--push-label",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        type=_label,
        help="extra grouping-key label for the push (location and env are always set)",
    )
    run.add_argument("--no-color", action="store_true", help="plain output")
    run.add_argument(
        "--record-baseline",
        action="store_true",
        help="with --phase preprod: record the runs as the baseline (in --store or --agent)",
    )
    _add_baseline_target(run)
    run.add_argument(
        "--version",
        dest="baseline_version",
        metavar="LABEL",
        help="version the baseline is recorded on (default: $SYNTH_VERSION or git describe)",
    )
    run.add_argument(
        "--no-page", action="store_true", help="do not page for failed checks (playbooks)"
    )
    run.set_defaults(handler=_cmd_run)

    baseline = commands.add_parser("baseline", help="show and compare recorded baselines")
    baseline_commands = baseline.add_subparsers(dest="baseline_command", metavar="COMMAND")
    show = baseline_commands.add_parser("show", help="a check's baseline per step")
    show.add_argument("check", metavar="CHECK")
    show.add_argument("--env", help="only this environment")
    show.add_argument("--config", metavar="FILE", help="config file (for the store URL)")
    _add_baseline_target(show)
    show.set_defaults(handler=_cmd_baseline_show)
    diff = baseline_commands.add_parser("diff", help="compare two environments step by step")
    diff.add_argument("--from", dest="source", required=True, metavar="ENV")
    diff.add_argument("--to", dest="target", required=True, metavar="ENV")
    diff.add_argument("--check", help="only this check")
    diff.add_argument(
        "--window",
        type=_positive_int,
        default=20,
        metavar="N",
        help="without a recorded baseline for --to: its newest N stored runs per check "
        "(default 20)",
    )
    diff.add_argument("--config", metavar="FILE", help="config file (for the store URL)")
    _add_baseline_target(diff)
    diff.set_defaults(handler=_cmd_baseline_diff)
    baseline.set_defaults(handler=lambda _args: _usage(baseline))

    add_report_parser(commands)

    validate = commands.add_parser(
        "validate",
        help="load config and checks, list every problem the agent would refuse to start on",
    )
    _add_common(validate)
    validate.add_argument(
        "--env",
        metavar="ENV",
        help="only what `synth run --env ENV` needs: this environment's secrets and the "
        "checks (not the agent's API and hook credentials)",
    )
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
    trig.add_argument("--junit", metavar="FILE", help="with --wait: the runs as JUnit XML")
    trig.set_defaults(handler=_cmd_trigger)

    add_silence_parser(commands)

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


def _add_baseline_target(cmd: argparse.ArgumentParser) -> None:
    where = cmd.add_mutually_exclusive_group()
    where.add_argument("--store", metavar="URL", help="store URL (default: store.url)")
    where.add_argument(
        "--agent", metavar="URL", help="agent URL (credentials: $SYNTH_TOKEN or $SYNTH_HMAC_SECRET)"
    )


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return EXIT_USAGE


def _label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier() or not value:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    if key == "job":
        raise argparse.ArgumentTypeError("job is always synth")
    return key, value


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
    if args.record_baseline and args.phase != Phase.PREPROD.value:
        raise UsageError("--record-baseline needs --phase preprod")
    if (args.store or args.agent) and not args.record_baseline:
        raise UsageError("--store and --agent go with --record-baseline")
    from synth.outputs.logging import configure_logging
    from synth.outputs.metrics import Metrics
    from synth.outputs.push import PushError, check_gateway_url
    from synth.outputs.tracing import TracingConfig, start_tracing

    configure_logging(args.log_format, args.log_level)
    tracing_config = TracingConfig.from_env(os.environ)
    if args.push_metrics:
        try:
            check_gateway_url(args.push_metrics)
        except PushError as exc:
            raise UsageError(str(exc)) from None
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
    reporter = TerminalReporter(
        out,
        color=None if not args.no_color else False,
        artifact_link=file_link(settings.browser.artifacts_dir),
    )
    concurrency = args.concurrency or settings.runner.concurrency
    print(
        f"Running {len(selection.checks)} check(s) against {args.env}"
        f" (concurrency {min(concurrency, len(selection.checks))})",
        file=out,
    )
    metrics = Metrics(settings=settings.metrics)
    if tracing_config.enabled:
        metrics.watch_exporter(tracing_config.exporter_name)
    tracing = start_tracing(
        tracing_config, location=settings.location, environment=args.env, counters=metrics
    )
    runner = Runner(settings, tracer=tracing.tracer)
    runs = RunLog(order=[check.name for check in selection.checks])
    sinks = build_sinks(
        _output_plan(args, settings, selection.checks, metrics, reporter, runs, out)
    )
    try:
        runner.environment(args.env)  # fail fast on missing secrets, before any run
        asyncio.run(
            run_checks(
                runner,
                selection.checks,
                args.env,
                phase=Phase(args.phase),
                concurrency=concurrency,
                sink=sinks,
            )
        )
    finally:
        tracing.shutdown(TRACE_FLUSH_S)
    try:
        asyncio.run(sinks.close())
    except (BaselineError, StoreError) as exc:
        raise UsageError(f"cannot record the baseline: {exc}") from None
    results = runs.results
    if loaded.problems or selection.problems:
        return EXIT_USAGE
    return EXIT_OK if all(r.passed for r in results) else EXIT_FAILED


def _output_plan(
    args: argparse.Namespace,
    settings: Settings,
    checks: Sequence[CheckSpec],
    metrics: Metrics,
    reporter: TerminalReporter,
    runs: RunLog,
    out: TextIO,
) -> OutputPlan:
    """Where `synth run` sends its runs (synth.outputs.sinks)."""
    from synth.baseline import client

    baseline = None
    if args.record_baseline:
        where = args.agent or "the store"
        baseline = BaselineTarget(
            version=args.baseline_version or client.default_version(),
            store_url=None if args.agent else (args.store or settings.store.url),
            agent_url=args.agent,
            say=lambda line: print(f"baseline: recorded {line} in {where}", file=out),
        )
    push = None
    if args.push_metrics:
        push = PushTarget(
            url=args.push_metrics,
            location=settings.location,
            environment=args.env,
            extra=dict(args.push_label),
            warn=lambda line: print(
                f"synth: warning: {line} (exit code unchanged)", file=sys.stderr
            ),
        )
    page = None if args.no_page else PageTarget(settings, checks, sys.stderr)
    return OutputPlan(
        metrics=metrics,
        runs=runs,
        terminal=reporter,
        env=args.env,
        json_path=args.json,
        junit_path=args.junit,
        baseline=baseline,
        push=push,
        page=page,
        artifact_dir=settings.browser.artifacts_dir,
    )


def _baseline_source(args: argparse.Namespace) -> tuple[str | None, str | None]:
    if args.agent:
        return None, args.agent
    if args.store:
        return args.store, None
    return load_settings(find_config_file(args.config)).store.url, None


def _min_samples(args: argparse.Namespace) -> int:
    """The check's `baseline.min_samples` in the config (given or found), else the default."""
    from synth.config import BaselineSettings

    path = find_config_file(args.config)
    if path is None or not path.exists():
        return BaselineSettings().min_samples
    try:
        return load_settings(path).baseline.for_check(args.check).min_samples
    except ConfigError:
        return BaselineSettings().min_samples


def _cmd_baseline_show(args: argparse.Namespace) -> int:
    from synth.baseline import client
    from synth.baseline.table import show_table

    store_url, agent_url = _baseline_source(args)
    try:
        rows = client.fetch(
            check=args.check, env=args.env, store_url=store_url, agent_url=agent_url
        )
    except (client.BaselineError, StoreError) as exc:
        raise UsageError(str(exc)) from None
    if not rows:
        where = f" in environment {args.env!r}" if args.env else ""
        print(f"no baseline recorded for check {args.check!r}{where}")
        return EXIT_FAILED
    print(f"baseline of {args.check}")
    sys.stdout.write(show_table(rows, _min_samples(args)))
    return EXIT_OK


def _cmd_baseline_diff(args: argparse.Namespace) -> int:
    from synth.baseline import client
    from synth.baseline.table import diff_table

    store_url, agent_url = _baseline_source(args)
    try:
        source = client.fetch(
            check=args.check, env=args.source, store_url=store_url, agent_url=agent_url
        )
        target = client.fetch(
            check=args.check, env=args.target, store_url=store_url, agent_url=agent_url
        )
        window = None
        if not target and store_url is not None:
            window = client.recent_runs(
                store_url, env=args.target, check=args.check, window=args.window
            )
            target = window.baselines
    except (client.BaselineError, StoreError) as exc:
        raise UsageError(str(exc)) from None
    if not source and not target:
        print(f"nothing recorded for {args.source!r} or {args.target!r}")
        return EXIT_FAILED
    print(f"{args.source} → {args.target}")
    if window is not None and window.oldest is not None and window.newest is not None:
        span = f"{window.oldest:%Y-%m-%d %H:%M:%S} to {window.newest:%H:%M:%S} UTC"
        print(
            f"{args.target}: the newest {args.window} stored runs of each check "
            f"({window.runs} runs, {span}); each step's contract from its newest runs "
            "since its response shape last changed"
        )
    sys.stdout.write(diff_table(source, target))
    return EXIT_OK


def _cmd_validate(args: argparse.Namespace) -> int:
    from synth.alerting.policy import noisy_playbook_warnings
    from synth.startup import startup_problems

    settings, loaded = _load(args)
    _print_problems(loaded, sys.stdout)
    found = [str(p) for p in loaded.problems]
    found += startup_problems(settings, loaded.checks, environment=args.env)
    for problem in found[len(loaded.problems) :]:
        print(f"error: {problem}", file=sys.stdout)
    for warning in noisy_playbook_warnings(settings, list(loaded.checks)):
        print(f"warning: {warning}", file=sys.stdout)
    envs = args.env or ", ".join(sorted(settings.environments)) or "none"
    print(f"{len(loaded.checks)} check(s) loaded, environments: {envs}; {len(found)} problem(s)")
    return EXIT_USAGE if found else EXIT_OK


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
    from synth.outputs.tracing import TracingConfig

    configure_logging(args.log_format, args.log_level)
    config_file = find_config_file(args.config)
    state = load_state(config_file, args.paths)
    for problem in state.problems:
        print(f"error: {problem}", file=sys.stderr)
    if state.problems:
        return EXIT_USAGE
    from synth.store.single_agent import claim_store

    try:
        # Held until this process exits: a second agent on the file refuses to start.
        store_lock = claim_store(state.settings.store.url)
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    server = state.settings.server
    host = args.host or server.host
    port = server.port if args.port is None else args.port
    try:
        listen = bind(host, port)
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise UsageError(f"cannot listen on {host}:{port}: {reason}") from None
    host, port = listen.getsockname()[:2]
    print(f"synth agent: API on http://{host}:{port} (metrics at /metrics)", flush=True)
    agent = Agent(
        state,
        config_path=Path(config_file) if config_file else None,
        check_paths=args.paths,
        tracing=TracingConfig.from_env(os.environ),
        api_port=port,
    )
    try:
        asyncio.run(agent.serve(listen))
    finally:
        if store_lock is not None:
            store_lock.release()
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
            junit=args.junit,
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
