"""Run units of work on a Ray cluster (``--executor ray``; ``pip install 'miragelab[ray]'``).

Each unit is one Ray task that calls :func:`miragelab.runners.work.run_unit`: it
computes the unit's rows and writes its parquet part itself, so the driver
never holds the table and the parts land wherever ``root`` points (a folder
every node sees). The task declares its resources (``num_cpus``,
``num_gpus`` per unit), so Ray places one model per GPU on a GPU cluster and
runs as many units at once as the cluster has room for.

Failures: a task whose worker process died (killed, out of memory, lost node)
is resubmitted by Ray up to ``max_retries`` times; a part is written
atomically, so a retried unit never leaves half a part behind. An exception
raised by the job itself is not retried (it would fail again): the run stops
and names the unit. Parts already written stay, so rerunning the command
resumes.

Ray is imported only when this executor is built; without it, building one is
bad input (exit code 2) with the one line that says how to install it.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from miragelab.errors import InputError
from miragelab.runners.ray_slots import shared_slots
from miragelab.runners.work import Job, Unit, run_unit

INSTALL_HINT = "the ray executor needs Ray: pip install 'miragelab[ray]'"


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise InputError(INSTALL_HINT, field="executor") from None
    return ray


class RayExecutor:
    """Units as Ray tasks, consumed as they complete (:class:`~miragelab.runners.work.Executor`).

    Parameters
    ----------
    address
        Cluster to join (``auto``, ``HOST:6379``, ``ray://HOST:10001``); default
        ``RAY_ADDRESS``, else a Ray instance on this machine, started for the
        run and stopped after it.
    num_cpus, num_gpus
        Resources one unit holds while it runs (fractions allowed, as in Ray).
    max_retries
        Resubmissions of a unit whose worker process died.
    """

    def __init__(
        self,
        address: str | None = None,
        num_cpus: float = 1,
        num_gpus: float = 0,
        max_retries: int = 3,
    ) -> None:
        if num_cpus < 0:
            raise InputError(f"must be >= 0, got {num_cpus:g}", field="num-cpus-per-unit")
        if num_gpus < 0:
            raise InputError(f"must be >= 0, got {num_gpus:g}", field="num-gpus-per-unit")
        if max_retries < 0:
            raise InputError(f"must be >= 0, got {max_retries}", field="max-retries")
        self.ray = _import_ray()
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.max_retries = max_retries

    def _connect(self) -> bool:
        """Join or start Ray unless this process already has; True when we must shut it down."""
        ray = self.ray
        if ray.is_initialized():
            return False
        options: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "logging_level": logging.ERROR,
        }
        if self.address is None:
            # a private instance: no telemetry leaves the machine
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            ray.init(**options)
        else:
            del options["include_dashboard"]  # the cluster's own setting
            ray.init(address=self.address, **options)
        return True

    def run(
        self, job: Job, units: Sequence[Unit], root: Path, on_done: Callable[[Unit], None]
    ) -> None:
        if not units:
            return
        ray = self.ray
        owned = self._connect()
        slots = None
        try:
            self._check_room(owned)
            slots = shared_slots(ray)  # the request budget, held by this driver for the run
            task = ray.remote(run_unit).options(
                num_cpus=self.num_cpus,
                num_gpus=self.num_gpus,
                max_retries=self.max_retries,
                retry_exceptions=False,
            )
            waiting = {task.remote(job, unit, str(root)): unit for unit in units}
            pending = list(waiting)
            while pending:
                finished, pending = ray.wait(pending, num_returns=1)
                for ref in finished:
                    unit = waiting[ref]
                    try:
                        ray.get(ref)
                    except BaseException as exc:
                        for other in pending:
                            ray.cancel(other)
                        raise self._failure(unit, exc) from None
                    on_done(unit)
        finally:
            if slots is not None:
                ray.kill(slots)
            if owned:
                ray.shutdown()

    def _check_room(self, owned: bool) -> None:
        """A unit asking for more than the whole instance has would wait forever."""
        total = self.ray.cluster_resources()
        where = "instance" if owned else "cluster"
        short = [
            f"a unit needs {need:g} {key}(s), the Ray {where} has {total.get(key, 0):g}"
            for key, need in (("CPU", self.num_cpus), ("GPU", self.num_gpus))
            if need > total.get(key, 0)
        ]
        if not short:
            return
        message = "; ".join(short)
        if owned:  # nothing will join a private instance
            raise InputError(f"cannot place a unit: {message}", field="executor")
        # a cluster with an autoscaler may still add the nodes
        print(f"warning: {message}; units wait until such a node joins", file=sys.stderr)

    def _failure(self, unit: Unit, exc: BaseException) -> BaseException:
        """The error to raise for a unit that failed: its own InputError, else one naming it."""
        errors = self.ray.exceptions
        if isinstance(exc, errors.RayTaskError):
            cause = exc.cause if exc.cause is not None else exc
            if isinstance(cause, InputError):
                return cause
            return RuntimeError(f"unit {unit} failed: {type(cause).__name__}: {cause}")
        if isinstance(exc, errors.RayError):
            return RuntimeError(
                f"unit {unit} failed after {self.max_retries} retries: "
                f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
            )
        return exc
