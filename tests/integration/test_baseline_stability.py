"""An unchanged target raises no regression: 20 pre-prod runs make the baseline (through a
real SQLite store), then 50 production runs of the same demo shop are all compared with
it, through the agent's comparator, and none is flagged."""

from __future__ import annotations

from pathlib import Path

from agent_harness import EXAMPLE_CHECKS, SHOP_PASSWORD
from prometheus_client.parser import text_string_to_metric_families

from synth.agent.baselines import BaselineComparator
from synth.baseline.record import fragments
from synth.checks.loader import load_checks
from synth.config import Settings
from synth.demo import ShopThread
from synth.model import Phase, RunRequest
from synth.outputs.metrics import Metrics
from synth.runner import Runner
from synth.store import Store

BASELINE_RUNS = 20
PRODUCTION_RUNS = 50


def settings_for(shop: ShopThread) -> Settings:
    env = {
        "services": {"shop": {"base_url": shop.base_url}},
        "secrets": {"shop_password": SHOP_PASSWORD},
    }
    return Settings(
        environments={"staging": env, "production": env},
        baseline={"from_env": "staging"},  # the defaults: factor 2, 20 samples, window 50
    )


async def test_unchanged_target_over_50_runs_raises_no_regression(
    tmp_path: Path, shop: ShopThread
) -> None:
    settings = settings_for(shop)
    loaded = load_checks([EXAMPLE_CHECKS / "shop_checkout.py"])
    (checkout,) = loaded.checks
    runner = Runner(settings)

    def request(env: str, phase: Phase) -> RunRequest:
        return RunRequest(check=checkout, environment=env, phase=phase)

    preprod = [await runner.run(request("staging", Phase.PREPROD)) for _ in range(BASELINE_RUNS)]
    assert all(r.passed for r in preprod)
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path}/synth.db")
    try:
        await store.merge_baselines(fragments(preprod, "v1"))
        metrics = Metrics()
        comparator = BaselineComparator(settings.baseline, metrics, lambda: store)
        judged = []
        for _ in range(PRODUCTION_RUNS):
            result = await runner.run(request("production", Phase.SCHEDULED))
            judged.append(await comparator.apply(result))
    finally:
        await store.close()

    flagged = [(r.run_id, f.message) for r in judged for f in r.findings]
    assert flagged == []
    assert all(r.passed for r in judged)
    # The comparison did happen: once the window had 20 runs, every step got a ratio.
    ratios = {
        sample.labels["step"]: sample.value
        for family in text_string_to_metric_families(metrics.exposition().decode())
        for sample in family.samples
        if sample.name == "synth_step_baseline_latency_ratio"
    }
    assert set(ratios) == {"log in", "list products", "add to cart", "check out", "order status"}
    assert all(ratio > 0 for ratio in ratios.values())
