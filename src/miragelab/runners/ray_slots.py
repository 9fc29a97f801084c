"""The request budget shared by every process of a Ray job (``--rps`` under ``--executor ray``).

Apart from the limiter that uses it and the executor that holds it for the run, so
neither imports the other.
"""

from __future__ import annotations

import time
from typing import Any

__all__ = ["shared_slots"]


class _Slots:
    """The send times of each endpoint's requests, handed out to every process of a Ray job."""

    def __init__(self) -> None:
        self.next: dict[str, float] = {}

    def take(self, key: str, interval: float, floor: float = 0.0) -> float:
        now = time.time()  # wall clock: comparable across the job's processes and nodes
        slot = max(now, self.next.get(key, 0.0), floor)
        self.next[key] = slot + interval
        return slot


def shared_slots(ray: Any) -> Any:
    """The job's one slot actor (no CPU reserved), made by the first caller.

    The ray executor calls this in the driver before it sends any unit, so the
    actor lives as long as the run: an actor made by a worker would die with
    that worker, and a new one would not know the slots already handed out.
    """
    name = f"rate|{ray.get_runtime_context().get_job_id()}"
    actor = ray.remote(num_cpus=0)(_Slots)
    return actor.options(name=name, namespace="miragelab", get_if_exists=True).remote()
