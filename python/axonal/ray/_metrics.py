"""A small Prometheus text exposition for the Ray-side components (docs/telemetry.md names).

The engines' own metrics come from `Engine.prometheus()`; what the coordinators add (shards,
supersteps, exchanges, the fleet's log) is counted here, in the same `axonal_` namespace.
"""

from __future__ import annotations

import bisect
import threading

# Buckets of the coordinators' latency histograms, in seconds.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(str(v))}"' for k, v in sorted(labels.items()))
    return "{" + inner + "}"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class Registry:
    """Counters, gauges and histograms keyed by name and labels; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._meta: dict[str, tuple[str, str]] = {}
        self._values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._histograms: dict[tuple[str, tuple[tuple[str, str], ...]], list[float]] = {}

    def describe(self, name: str, kind: str, help_text: str) -> None:
        self._meta[name] = (kind, help_text)

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def set(self, name: str, value: float, **labels: str) -> None:
        with self._lock:
            self._values[(name, tuple(sorted(labels.items())))] = float(value)

    def observe(self, name: str, seconds: float, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            h = self._histograms.setdefault(key, [0.0] * (len(BUCKETS) + 2))
            h[bisect.bisect_left(BUCKETS, seconds)] += 1
            h[-1] += seconds

    def value(self, name: str, **labels: str) -> float:
        with self._lock:
            return self._values.get((name, tuple(sorted(labels.items()))), 0.0)

    def count(self, name: str, **labels: str) -> int:
        with self._lock:
            h = self._histograms.get((name, tuple(sorted(labels.items()))))
            return int(sum(h[:-1])) if h else 0

    def text(self) -> str:
        """The exposition: `# HELP`/`# TYPE` once per family, then its samples."""
        with self._lock:
            values = dict(self._values)
            histograms = {k: list(v) for k, v in self._histograms.items()}
        lines = []
        for name, (kind, help_text) in sorted(self._meta.items()):
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            if kind == "histogram":
                for (n, labels), h in sorted(histograms.items()):
                    if n != name:
                        continue
                    base = dict(labels)
                    cumulative = 0.0
                    for bound, count in zip((*BUCKETS, float("inf")), h[:-1]):
                        cumulative += count
                        lines.append(f"{name}_bucket{_labels({**base, 'le': _number(bound)})} {_number(cumulative)}")
                    lines.append(f"{name}_sum{_labels(base)} {_number(h[-1])}")
                    lines.append(f"{name}_count{_labels(base)} {_number(cumulative)}")
            else:
                for (n, labels), v in sorted(values.items()):
                    if n == name:
                        lines.append(f"{name}{_labels(dict(labels))} {_number(v)}")
        return "\n".join(lines) + "\n"
