"""Axonal beyond one machine, on Ray (docs/spec.md §20). Needs the `ray` extra:
`pip install "axonal[ray]"`.

- `Fleet`: replicated serving on Ray Serve. Every replica loads the same snapshot and applies the
  same ordered mutation log, so all replicas reach the same graph versions; each answer says which
  version answered it.
- `ShardedRecall`: one graph partitioned by destination across Ray actors, one depth per superstep,
  answers bit-identical to a single `Engine` on the same graph.
"""

try:
    import ray as _ray  # noqa: F401
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError('axonal.ray needs Ray: pip install "axonal[ray]"') from e

from ._fleet import Fleet, GraphLog, ReplicaUnavailable
from ._sharded import ShardedRecall, ShardedResult

__all__ = ["Fleet", "GraphLog", "ReplicaUnavailable", "ShardedRecall", "ShardedResult"]
