"""Where a sweep's training runs execute: here, one after another (the default), or as Ray tasks.

Each task is one training run, single-threaded unless told otherwise, and returns its row of
runs.csv. Searches (theory/search.py) that need runs one after another, such as a d* bisection,
advance side by side: every search keeps one run in flight, so a grid of G cells keeps G workers
busy. Rows stream to the caller as they finish (``on_row``), and a row already in ``cached`` (a
previous, stopped run of the same sweep) is taken instead of training again.
"""

from __future__ import annotations

import os

from georecall.theory.checks import MissingExtra

EXECUTORS = ("local", "ray")

RUN_FIELDS = ["N", "R", "seed", "d_model", "d_mlp", "exact", "train_accuracy", "min_margin", "steps_to_exact", "steps_run", "elapsed_s"]
RUN_TYPES = {"N": int, "R": int, "seed": int, "d_model": int, "d_mlp": int, "exact": lambda text: {"True": True, "False": False}[text],
             "train_accuracy": float, "min_margin": float, "steps_to_exact": int, "steps_run": int, "elapsed_s": float}


class NeedsRay(MissingExtra):
    """Ray (the cluster extra) is not installed."""


def run_key(config) -> tuple:
    """What tells one run of a sweep from another under one training protocol."""
    return config.N, config.R, config.seed, config.d_model, config.d_mlp


def row_key(row: dict) -> tuple:
    return tuple(int(row[name]) for name in ("N", "R", "seed", "d_model", "d_mlp"))


def training_task(config_json: dict) -> dict:
    """One training run; its runs.csv row (JSON-ready)."""
    from georecall.experiments.config import TrainConfig
    from georecall.experiments.train import train

    config = TrainConfig.from_json_dict(config_json)
    run = train(config)
    return {"N": config.N, "R": config.R, "seed": config.seed, "d_model": config.d_model, "d_mlp": config.d_mlp,
            "exact": bool(run.exact), "train_accuracy": float(run.train_accuracy), "min_margin": round(float(run.min_margin), 6),
            "steps_to_exact": run.steps_to_exact, "steps_run": run.steps_run, "elapsed_s": round(run.elapsed_s, 3)}


def with_threads(threads: int, task, *args):
    """``task(*args)`` with torch and BLAS held to ``threads`` threads (fewer where the work is small:
    verify/threads.py): tasks side by side never oversubscribe the cores."""
    from threadpoolctl import threadpool_limits

    from georecall.verify.threads import set_thread_limit

    set_thread_limit(threads)
    try:
        with threadpool_limits(limits=threads):
            return task(*args)
    finally:
        set_thread_limit(None)


class _Queued:
    def __init__(self, task, args):
        self.task, self.args = task, args


class LocalExecutor:
    """Runs the tasks in this process, one after another, in the order they were submitted (no Ray
    needed); a task runs when its result is asked for, so each result streams out as soon as it exists."""

    name = "local"

    def __init__(self, threads: int = 1):
        self.threads = threads

    def submit(self, task, *args):
        return _Queued(task, args)

    def wait(self, handles):
        return handles[0]

    def result(self, handle):
        return with_threads(self.threads, handle.task, *handle.args)

    def close(self) -> None:
        pass


class RayExecutor:
    """Each task a Ray task: on the cluster at ``address``, or on a local Ray instance with
    ``workers`` CPUs when no address is given. A task function defined in a script travels by value
    (Ray pickles ``__main__`` functions whole), so the scripts need nothing installed but this package."""

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None, cpus_per_task: float = 1, gpus_per_task: float = 0,
                 threads: int = 1):
        try:
            import ray
        except ImportError:
            raise NeedsRay('--executor ray needs Ray, from the [cluster] extra: pip install -e ".[cluster]"') from None
        self.ray = ray
        self.started_here = not ray.is_initialized()
        if self.started_here:
            options = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
            if address is None:
                ray.init(num_cpus=workers or os.cpu_count() or 1, **options)
            else:
                ray.init(address=address, **options)
        self.remote = ray.remote(with_threads).options(num_cpus=cpus_per_task, num_gpus=gpus_per_task)
        self.threads = threads

    def submit(self, task, *args):
        return self.remote.remote(self.threads, task, *args)

    def wait(self, handles):
        ready, _ = self.ray.wait(list(handles), num_returns=1)
        return ready[0]

    def result(self, handle):
        return self.ray.get(handle)

    def close(self) -> None:
        if self.started_here:
            self.ray.shutdown()


def map_unordered(executor, task, argument_tuples):
    """(index, ``task(*arguments)``) for each tuple, as each finishes (independent cells of a grid)."""
    pending = {executor.submit(task, *arguments): index for index, arguments in enumerate(argument_tuples)}
    while pending:
        handle = executor.wait(list(pending))
        index = pending.pop(handle)
        yield index, executor.result(handle)


def make_executor(name: str = "local", address: str | None = None, workers: int | None = None, cpus_per_task: float = 1,
                  gpus_per_task: float = 0):
    if name == "local":
        return LocalExecutor(threads=max(1, int(cpus_per_task)))
    return RayExecutor(address, workers, cpus_per_task, gpus_per_task, threads=max(1, int(cpus_per_task)))


def run_searches(cells, executor, on_row=None, cached: dict | None = None) -> list:
    """Advance every search in ``cells`` to its end; the value each one returns, in cell order.

    ``cells``: (search, make_config) pairs, where the search yields a value to try and is sent
    whether the run ``make_config(value)`` was exact. ``on_row(config, row, cached)`` sees each row.
    """
    cached = {} if cached is None else cached
    results = [None] * len(cells)
    pending = {}

    def advance(index: int, exact=None) -> None:
        search, make_config = cells[index]
        while True:
            try:
                value = next(search) if exact is None else search.send(exact)
            except StopIteration as stop:
                results[index] = stop.value
                return
            config = make_config(value)
            row = cached.get(run_key(config))
            if row is None:
                pending[executor.submit(training_task, config.to_json_dict())] = (index, config)
                return
            if on_row is not None:
                on_row(config, row, True)
            exact = bool(row["exact"])

    for index in range(len(cells)):
        advance(index)
    while pending:
        handle = executor.wait(list(pending))
        index, config = pending.pop(handle)
        row = executor.result(handle)
        cached[run_key(config)] = row
        if on_row is not None:
            on_row(config, row, False)
        advance(index, bool(row["exact"]))
    return results


def add_executor_options(parser) -> None:
    """--executor, --address, --workers, --cpus-per-task, --gpus-per-task (georecall sweep and the scripts)."""
    parser.add_argument("--executor", choices=EXECUTORS, default="local",
                        help="local (default: runs one after another here) or ray (each training run a Ray task; the [cluster] extra)")
    parser.add_argument("--address", default=None, help="with --executor ray: the cluster to join, e.g. ray://head:10001 or auto "
                                                        "(default: start a local Ray instance)")
    parser.add_argument("--workers", type=int, default=None, help="with --executor ray and no --address: CPUs of the local Ray "
                                                                  "instance (default: every core)")
    parser.add_argument("--cpus-per-task", type=int, default=1, help="CPUs (and torch threads) per training run (default 1)")
    parser.add_argument("--gpus-per-task", type=float, default=0, help="with --executor ray: GPUs per training run; add --device cuda "
                                                                       "(default 0)")


def executor_from_args(args):
    from georecall.theory.checks import InputError

    if args.executor == "local" and (args.address is not None or args.workers is not None or args.gpus_per_task):
        raise InputError("--address, --workers and --gpus-per-task need --executor ray")
    if args.workers is not None and not 1 <= args.workers <= 4096:
        raise InputError(f"--workers must be in 1..4096, got {args.workers}")
    if not 1 <= args.cpus_per_task <= 1024:
        raise InputError(f"--cpus-per-task must be in 1..1024, got {args.cpus_per_task}")
    if not 0 <= args.gpus_per_task <= 64:
        raise InputError(f"--gpus-per-task must be in 0..64, got {args.gpus_per_task:g}")
    return make_executor(args.executor, args.address, args.workers, args.cpus_per_task, args.gpus_per_task)
