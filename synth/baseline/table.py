"""The tables `synth baseline show` and `synth baseline diff` print."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from synth.baseline.contract import Contract
from synth.baseline.record import StepBaseline, effective

MAX_CONTRACT_TEXT = 120


def show_table(rows: Sequence[StepBaseline], min_samples: int) -> str:
    """One line per environment × step × version: samples, p50/p95/p99, success, fields,
    and whether the agent judges runs on it (`min_samples`); a note below when some
    cannot be."""
    lines = [
        (
            "ENV",
            "STEP",
            "VERSION",
            "N",
            "P50",
            "P95",
            "P99",
            "SUCCESS",
            "FIELDS",
            "UPDATED",
            "JUDGED",
        )
    ]
    ordered = sorted(rows, key=lambda r: (r.environment, r.check, r.step))
    for row in ordered:
        ratio = row.success_ratio
        lines.append(
            (
                row.environment,
                row.step,
                row.version,
                str(row.latency.count),
                _ms(row.latency.quantile(0.5)),
                _ms(row.latency.quantile(0.95)),
                _ms(row.latency.quantile(0.99)),
                f"{ratio * 100:.1f}%" if ratio is not None else "-",
                str(len(row.contract.fields)),
                row.updated_at.strftime("%Y-%m-%d %H:%M") if row.updated_at else "-",
                "yes"
                if row.latency.count >= min_samples
                else f"no: {row.latency.count} of {min_samples} samples",
            )
        )
    table = align(lines)
    if any(row.latency.count < min_samples for row in rows):
        table += (
            f"A baseline with fewer than {min_samples} samples (baseline.min_samples) is "
            "not judged: production runs of the step say so, and "
            "synth_step_baseline_samples shows it. Record more pre-prod runs.\n"
        )
    return table


def diff_table(
    source: Iterable[StepBaseline], target: Iterable[StepBaseline], min_samples: int = 1
) -> str:
    """Per check × step: p50/p95 on each side, the p95 ratio and contract differences."""
    by_check_from = _by_check(source, min_samples)
    by_check_to = _by_check(target, min_samples)
    lines = [("CHECK", "STEP", "FROM P50", "FROM P95", "TO P50", "TO P95", "RATIO", "CONTRACT")]
    for check in sorted(set(by_check_from) | set(by_check_to)):
        left, right = by_check_from.get(check, {}), by_check_to.get(check, {})
        for step in sorted(set(left) | set(right)):
            a, b = left.get(step), right.get(step)
            a95 = a.latency.quantile(0.95) if a else None
            b95 = b.latency.quantile(0.95) if b else None
            ratio = f"{b95 / a95:.2f}x" if a95 and b95 is not None else "-"
            contract = (
                ", ".join(contract_diff(a.contract, b.contract)) or "same"
                if a and b
                else ("only in from" if a else "only in to")
            )
            if len(contract) > MAX_CONTRACT_TEXT:
                contract = contract[: MAX_CONTRACT_TEXT - 1] + "…"
            lines.append(
                (
                    check,
                    step,
                    _ms(a.latency.quantile(0.5) if a else None),
                    _ms(a95),
                    _ms(b.latency.quantile(0.5) if b else None),
                    _ms(b95),
                    ratio,
                    contract,
                )
            )
    return align(lines)


def contract_diff(source: Contract, target: Contract) -> list[str]:
    """`-path` (always there in `source`, never in `target`), `path: a→b` (new types),
    `+path` (only in `target`)."""
    out = []
    for path in sorted(set(source.fields) | set(target.fields)):
        a, b = source.fields.get(path), target.fields.get(path)
        if a is not None and b is None:
            if a.present == source.samples and target.samples:
                out.append(f"-{path}")
        elif a is None and b is not None:
            out.append(f"+{path}")
        elif a is not None and b is not None and not set(b.types) <= set(a.types):
            out.append(f"{path}: {'|'.join(sorted(a.types))}→{'|'.join(sorted(b.types))}")
    return out


def _by_check(
    rows: Iterable[StepBaseline], min_samples: int
) -> Mapping[str, dict[str, StepBaseline]]:
    grouped: dict[str, list[StepBaseline]] = {}
    for row in rows:
        grouped.setdefault(row.check, []).append(row)
    return {check: effective(found, min_samples) for check, found in grouped.items()}


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    millis = seconds * 1000
    return f"{millis:.0f} ms" if millis >= 10 else f"{millis:.1f} ms"


def align(rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return (
        "\n".join(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in rows
        )
        + "\n"
    )
