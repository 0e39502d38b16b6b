"""The low-urgency "is flaky" notification is held by a silence too, and goes once the
silence is over: a real AlertEngine on a real SQLite store, fed run results."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from synth.alerting.engine import AlertEngine
from synth.alerting.payloads import flaky_key
from synth.alerting.silences import Silence
from synth.config import Settings
from synth.model import CheckSpec, FailedAttempt, Failure, FailureType, Phase, RunResult, Status
from synth.outputs.metrics import Metrics
from synth.store import Store

KEY = flaky_key("production", "checkout")


async def noop() -> None:
    return None


CHECK = CheckSpec(name="checkout", func=noop, service="shop", environments=("production",))


def run(retried: bool) -> RunResult:
    failure = Failure(FailureType.TIMEOUT, "timed out after 5s")
    attempts = (FailedAttempt(1, failure, "pay", "ab" * 16),) if retried else ()
    return RunResult(
        run_id="r",
        check="checkout",
        service="shop",
        environment="production",
        phase=Phase.SCHEDULED,
        location="here",
        status=Status.PASSED,
        started_at=datetime.now(UTC),
        duration_s=0.1,
        steps=(),
        attempts=len(attempts) + 1,
        failed_attempts=attempts,
    )


async def test_a_silence_holds_the_flaky_notification_until_it_ends(tmp_path: Path) -> None:
    settings = Settings.model_validate(
        {
            "location": "here",
            "playbooks": {
                "oncall": {"routing_key": "r" * 32, "flaky": {"notify_above": 0.05, "min_runs": 20}}
            },
            "default_playbook": "oncall",
        }
    )
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path}/synth.db")
    try:
        engine = AlertEngine(
            settings=lambda: settings,
            store=lambda: store,
            check=lambda name: CHECK if name == CHECK.name else None,
            checks_for=lambda service, env, tags: [CHECK],
            metrics=Metrics(),
            origin="here",
            wake=lambda: None,
        )
        now = datetime.now(UTC)
        silence = Silence(
            id="s1", start=now - timedelta(minutes=1), end=now + timedelta(hours=1), all=True
        )
        await store.silences.add(silence)  # as POST /v1/silences does
        engine.silences.added(silence)
        for index in range(30):
            await engine.observe(run(retried=index % 5 == 0))  # 20 % transient failures
        assert [e for e in await store.list_outbox() if e.dedup_key == KEY] == []

        ended = await store.silences.end("s1", datetime.now(UTC))  # as DELETE does
        assert ended is not None
        engine.silences.ended(ended)
        await engine.observe(run(retried=False))
        sent = [e.kind for e in await store.list_outbox() if e.dedup_key == KEY]
        assert sent == ["trigger"]
        await engine.observe(run(retried=False))
        assert [e.kind for e in await store.list_outbox() if e.dedup_key == KEY] == ["trigger"]
    finally:
        await store.close()
