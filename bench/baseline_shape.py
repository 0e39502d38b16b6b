"""CPU cost of the JSON shape synth records for the baseline on every JSON response,
against its peer: the `json.loads` of the same body that synth does anyway (and that the
check's `r.json()` now reuses).

For each body size, the median over repeats (order rotated) of µs per call:

- peer     json.loads(body)
- synth    json.loads(body) + json_shape(document, redactor.text)

and the ratio synth / peer. The shape looks at no more than 256 paths, 8 levels and 5
items per array, so its cost is bounded while parsing grows with the body.

    .venv/bin/python bench/baseline_shape.py [--repeats 5] [--budget 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

from synth.baseline.shape import json_shape
from synth.redact import Redactor


def product(i: int) -> dict[str, object]:
    return {
        "id": f"p{i}",
        "name": f"Product {i}",
        "price": 12.5 + i,
        "currency": "EUR",
        "in_stock": i % 3 != 0,
        "tags": ["a", "b"],
        "dimensions": {"w": 1.0, "h": 2.0, "unit": "cm"},
    }


BODIES = {
    "order (200 B)": json.dumps({"order": {"id": "o1", "status": "confirmed", "total": 25.0}}),
    "10 products (2 KB)": json.dumps({"items": [product(i) for i in range(10)], "count": 10}),
    "5000 products (1 MB)": json.dumps({"items": [product(i) for i in range(5000)], "count": 5000}),
}


def per_call_us(fn: Callable[[], object], budget_s: float) -> float:
    """µs per call over as many calls as fit in `budget_s` (at most 100 000)."""
    calls, started = 0, time.process_time()
    deadline = started + budget_s
    while calls < 100_000:
        fn()
        calls += 1
        if calls % 10 == 0 and time.process_time() >= deadline:
            break
    return (time.process_time() - started) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=float, default=20.0, help="total CPU seconds")
    args = parser.parse_args()
    redactor = Redactor(["s3cret-token-value"])
    slice_s = args.budget / (len(BODIES) * 2 * args.repeats)
    print(f"{'body':<22} {'peer µs':>10} {'synth µs':>10} {'ratio':>7}")
    for name, text in BODIES.items():
        body = text.encode()
        variants: dict[str, Callable[[], object]] = {
            "peer": lambda body=body: json.loads(body),
            "synth": lambda body=body: json_shape(json.loads(body), redactor.text),
        }
        samples: dict[str, list[float]] = {k: [] for k in variants}
        order = list(variants)
        for repeat in range(args.repeats):
            for key in order[repeat % 2 :] + order[: repeat % 2]:
                samples[key].append(per_call_us(variants[key], slice_s))
        peer, synth = (statistics.median(samples[k]) for k in ("peer", "synth"))
        print(f"{name:<22} {peer:>10.1f} {synth:>10.1f} {synth / peer:>6.2f}x")


if __name__ == "__main__":
    main()
