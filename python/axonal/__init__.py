"""Axonal: spreading-activation recall over a weighted memory graph, with health probes, a circuit
breaker and fallback, an auto-tuner and streaming telemetry (SPEC §11).

    import axonal
    g = axonal.Graph.from_edges([0, 1, 2, 3, 4], [1, 2, 3, 4, 0], [1.0] * 5)
    with axonal.Engine(g) as e:
        r = e.recall([0])
        r.nodes, r.activations, r.hops   # NumPy arrays, best first
"""

from ._native import (
    AxonalError,
    ClosedError,
    ConfigError,
    Engine,
    Graph,
    GraphError,
    RecallError,
    RecallResult,
    __version__,
)

__all__ = [
    "AxonalError",
    "ClosedError",
    "ConfigError",
    "Engine",
    "Graph",
    "GraphError",
    "RecallError",
    "RecallResult",
    "__version__",
]
