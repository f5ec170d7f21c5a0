"""Distribution: strategy selection, opt-in scopes, batch sizes, fault tolerance.

See ``docs/distribute.md`` for running the same script on 1 CPU, N GPUs, N machines.
"""

from keras_transfer.distribute.cluster import (
    ClusterSpec,
    is_chief,
    parse_tf_config,
    write_dir,
)
from keras_transfer.distribute.strategy import (
    STRATEGY_NAMES,
    backup_callback,
    get_strategy,
    global_batch_size,
    into_scope,
    maybe_distribute,
    num_replicas,
    num_workers_from_tf_config,
    per_replica_batch_size,
)

__all__ = [
    "STRATEGY_NAMES",
    "ClusterSpec",
    "backup_callback",
    "get_strategy",
    "global_batch_size",
    "into_scope",
    "is_chief",
    "maybe_distribute",
    "num_replicas",
    "num_workers_from_tf_config",
    "parse_tf_config",
    "per_replica_batch_size",
    "write_dir",
]
