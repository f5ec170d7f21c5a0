"""One search on many machines: KerasTuner's chief/worker mode, checked early.

KerasTuner runs a distributed search from three environment variables: every
process gets ``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT`` (where the chief
serves the one oracle) and its own ``KERASTUNER_TUNER_ID``; the process whose id
contains ``"chief"`` runs the oracle (it trains nothing), every other one asks it
for trials and runs them. All of them must see the same ``directory`` (a shared
filesystem): workers write the trials' checkpoints there, the chief its
``oracle.json`` and, after the search, reads the best models back.

KerasTuner itself quietly runs a whole search of its own on every machine when
``KERASTUNER_TUNER_ID`` is set without ``KERASTUNER_ORACLE_IP``; `distributed_search`
refuses that and every other half-set environment before any work starts.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

__all__ = [
    "ENV_VARS",
    "ORACLE_WAIT",
    "SearchRole",
    "distributed_search",
    "wait_for_oracle",
]

#: Seconds a worker waits for the chief's oracle (KerasTuner's own RPC timeout).
ORACLE_WAIT = 3600.0

#: The environment variables of KerasTuner's distributed search.
ENV_VARS = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")

_EXAMPLE = (
    "e.g. KERASTUNER_ORACLE_IP=10.0.0.1 KERASTUNER_ORACLE_PORT=8000 on every "
    "machine, KERASTUNER_TUNER_ID=chief on the one that serves the oracle and "
    "tuner0, tuner1, ... on the others"
)


@dataclasses.dataclass(frozen=True)
class SearchRole:
    """This process's part in a distributed search.

    Attributes:
        tuner_id: str. ``KERASTUNER_TUNER_ID``.
        oracle_ip: str. ``KERASTUNER_ORACLE_IP``: the chief's address.
        oracle_port: int. ``KERASTUNER_ORACLE_PORT``: the chief's port.
    """

    tuner_id: str
    oracle_ip: str
    oracle_port: int

    @property
    def is_chief(self) -> bool:
        """Whether this process serves the oracle (KerasTuner: "chief" in the id)."""
        return "chief" in self.tuner_id

    @property
    def address(self) -> str:
        """``ip:port`` of the oracle."""
        return f"{self.oracle_ip}:{self.oracle_port}"


def _bad(what: str, received: str) -> ValueError:
    return ValueError(
        f"Expected {what} for a distributed KerasTuner search ({_EXAMPLE}); unset "
        f"all of {', '.join(ENV_VARS)} for a search on one machine. "
        f"Received: {received}"
    )


def distributed_search(environ: Mapping[str, str] | None = None) -> SearchRole | None:
    """Reads and checks KerasTuner's distributed-search environment.

    Args:
        environ: mapping or None. The environment to read; None reads
            ``os.environ``. Defaults to None.

    Returns:
        A `SearchRole`, or None when none of `ENV_VARS` is set (one machine).

    Raises:
        ValueError: ``KERASTUNER_TUNER_ID`` or ``KERASTUNER_ORACLE_PORT`` set
            without ``KERASTUNER_ORACLE_IP``; ``KERASTUNER_ORACLE_IP`` without the
            other two; an empty value; a port that is not an int in [1, 65535].
            The message names the variables and shows accepted values.

    Examples:
    ```python
    >>> role = distributed_search({
    ...     "KERASTUNER_TUNER_ID": "tuner1",
    ...     "KERASTUNER_ORACLE_IP": "10.0.0.1",
    ...     "KERASTUNER_ORACLE_PORT": "8000",
    ... })
    >>> role.is_chief, role.address
    (False, '10.0.0.1:8000')
    >>> distributed_search({}) is None
    True

    ```
    """
    env = os.environ if environ is None else environ
    values = {name: env.get(name) for name in ENV_VARS}
    shown = ", ".join(f"{k}={v!r}" for k, v in values.items() if v is not None)
    if all(v is None for v in values.values()):
        return None
    tuner_id, ip, port = (values[name] for name in ENV_VARS)
    if ip is None:
        raise _bad(
            "KERASTUNER_ORACLE_IP to be set too (else KerasTuner runs a whole "
            "search of its own on this machine)",
            shown,
        )
    missing = [name for name, v in values.items() if v is None]
    if missing:
        raise _bad(f"{' and '.join(missing)} to be set too", shown)
    empty = [name for name, v in values.items() if not v.strip()]
    if empty:
        raise _bad(f"{' and '.join(empty)} to be non-empty", shown)
    try:
        number = int(port)
    except ValueError:
        number = 0
    if not 1 <= number <= 65535:
        raise _bad("KERASTUNER_ORACLE_PORT to be an int in [1, 65535]", shown)
    return SearchRole(tuner_id.strip(), ip.strip(), number)


def wait_for_oracle(role: SearchRole, timeout: float | None = None) -> None:
    """Blocks until the chief's oracle at ``role.address`` accepts connections.

    Args:
        role: `SearchRole`. This worker's role (`distributed_search`).
        timeout: float or None. Seconds to wait; None waits `ORACLE_WAIT`.

    Raises:
        TimeoutError: no oracle answered in time; the message names the address
            and the variables to check.
    """
    import grpc

    timeout = ORACLE_WAIT if timeout is None else timeout
    channel = grpc.insecure_channel(role.address)
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
    except grpc.FutureTimeoutError as err:
        raise TimeoutError(
            f"Expected the chief's oracle to answer at {role.address} within "
            f"{timeout:g} s: start the chief (KERASTUNER_TUNER_ID=chief) or fix "
            "KERASTUNER_ORACLE_IP/KERASTUNER_ORACLE_PORT. Received: no answer "
            f"(KERASTUNER_TUNER_ID={role.tuner_id!r})"
        ) from err
    finally:
        channel.close()
