"""Starting Ray, or joining a cluster, the same way for every job of this room.

Usage statistics are off before Ray is imported (users' archives are private and these machines
have no internet), the dashboard is off unless asked for, and Ray's own progress bars and INFO
lines stay quiet so the job's one progress bar is readable.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

__all__ = ["start_ray", "stop_ray"]

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # ser_core/, shipped to an existing cluster's workers


def _quiet_environment() -> None:
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # never report usage (also set for workers started here)
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # Ray's C++ core logs an error-looking notice on every job (a restartable actor's constructor
    # arguments live in its object store, as Ray Data puts them); real faults still reach Python as
    # exceptions and Ray's log files. Ray says once that it set this.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    # Ray starts its workers 15 steps nicer than itself; here they run at the command's own priority
    # (start it with `nice` to yield to other work). At nice 19 on the shared 2-core machine, two
    # workers lost to everyone else's jobs and answered slower than one.
    os.environ.setdefault("RAY_worker_niceness", "0")


def start_ray(workers: int | None = None, address: str | None = None, *, dashboard: bool = False,
              ship_code: bool | None = None):
    """Start a local Ray with ``workers`` CPUs, or connect to ``address`` (``auto``, ``ray://host:10001``).

    Parameters
    ----------
    workers : int, optional
        Local Ray only: the CPUs it may use (default: all of this machine's).
    address : str, optional
        An existing cluster, used as it is (its CPUs decide the parallelism).
    dashboard : bool
        Start Ray's dashboard (local Ray only; a cluster has its own).
    ship_code : bool, optional
        Send this checkout's ``ser_core`` package with the job (default: when joining a cluster),
        so nodes need the packages of ``requirements.txt`` but not the project itself.

    Returns
    -------
    module
        ``ray``, initialised.
    """
    _quiet_environment()
    import ray
    import ray.data

    if ray.is_initialized():
        return ray
    # Token authentication stays on (Ray's default); its notice on every start is hidden.
    logging.getLogger("ray").setLevel(logging.ERROR)
    if address:
        ship = ship_code if ship_code is not None else True
        runtime_env = {"py_modules": [str(PACKAGE_DIR)],
                       "env_vars": {"RAY_USAGE_STATS_ENABLED": "0", "TF_CPP_MIN_LOG_LEVEL": "3"}} if ship else None
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=False, logging_level=logging.ERROR)
    else:
        # The local workers inherit this process's environment (usage statistics off).
        ray.init(num_cpus=workers, include_dashboard=dashboard, log_to_driver=False, logging_level=logging.ERROR)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    return ray


def stop_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()
