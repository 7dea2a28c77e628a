"""What every benchmark shares: the machine description, medians, and the result file."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).with_name("results")


def machine() -> dict[str, object]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
    }


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def median(values: list[float]) -> float:
    return statistics.median(values)


def record(
    name: str, value: float, unit: str, baseline: float, goal: str, **details: object
) -> dict[str, object]:
    """Write bench/results/NAME.json and print the figure with its ratio to the baseline."""
    result = {
        "name": name,
        "value": round(value, 1),
        "unit": unit,
        "baseline": round(baseline, 1),
        "ratio": round(value / baseline, 3),
        "goal": goal,
        "machine": machine(),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **details,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    ratio = value / baseline
    print(f"{name}: {value:,.0f} {unit}, baseline {baseline:,.0f} {unit}, ratio {ratio:.2f}")
    return result
