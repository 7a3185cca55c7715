"""Axonal: spreading-activation recall over a weighted memory graph, with health probes, a circuit
breaker and fallback, an auto-tuner and streaming telemetry (docs/spec.md §11).

    import axonal
    g = axonal.Graph.from_edges([0, 1, 2, 3, 4], [1, 2, 3, 4, 0], [1.0] * 5)
    with axonal.Engine(g) as e:
        r = e.recall([0])
        r.nodes, r.activations, r.hops   # NumPy arrays, best first
"""

import atexit

from . import _native
from ._native import (
    AxonalError,
    ClosedError,
    ConfigError,
    Engine,
    Graph,
    GraphError,
    HttpServer,
    RecallError,
    RecallBatch,
    RecallResult,
    __version__,
)

# Engines still open at interpreter exit (say, kept alive by a callback that refers to its own engine)
# are closed while the interpreter can still run their Python callbacks.
atexit.register(_native._close_all)

__all__ = [
    "AxonalError",
    "ClosedError",
    "ConfigError",
    "Engine",
    "Graph",
    "GraphError",
    "HttpServer",
    "RecallError",
    "RecallBatch",
    "RecallResult",
    "__version__",
]
