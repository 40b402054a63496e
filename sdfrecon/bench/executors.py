"""Where benchmark jobs run: a local process pool or a Ray cluster, behind one small
interface (:class:`Executor`: submit a job, wait for finished ones), and the one refill loop
that drives either (:func:`_refill`: at most ``slots`` jobs in flight, the next prepared job
submitted as soon as one finishes, ``finish(job, result)`` called for each).

Both run :func:`sdfrecon.bench.jobs.run_job` in a fresh worker process per job; the payloads
and results travel as plain bytes and dicts, so the driver alone writes files.
"""

from __future__ import annotations

import logging
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sdfrecon.bench.jobs import _error_text, _failure, _Job, run_job
from sdfrecon.errors import InputError

RAY_MISSING = "needs Ray, which is not installed: pip install 'sdfrecon[ray]'"

Prepared = tuple[_Job, dict | None, dict | None]
"""(job, payload, None), or (job, None, failure result) when its input could not be made."""
Finish = Callable[[_Job, dict], None]
"""Called in the driver with each job and its result ({'record', 'mesh', 'traceback'})."""


class Executor(ABC):
    """Jobs in flight somewhere. The refill loop sees ``slots``, ``in_flight``, ``submit``
    and ``wait``; a subclass says only how a payload starts (``_start``, returning a handle),
    how to block for finished handles (``_done``) and how to get a handle's result
    (``_result``; None when the job was *lost* with its worker and did not finish)."""

    _keeps_payloads = False
    """Whether jobs can be lost, so that the payloads in flight are kept to run them again
    (else the driver holds no copy of them: a payload holds a whole cloud file)."""

    def __init__(self, slots: int):
        self._slots = slots
        self._pending: dict[Any, tuple[_Job, dict]] = {}
        self.lost: list[tuple[_Job, dict]] = []
        """(job, payload) of the jobs lost with their worker, in the order they were lost."""

    @property
    def slots(self) -> int:
        """Jobs at most in flight at once (0: takes no more jobs)."""
        return self._slots

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def submit(self, job: _Job, payload: dict) -> None:
        self._pending[self._start(payload)] = (job, payload if self._keeps_payloads else {})

    def wait(self) -> list[tuple[_Job, dict]]:
        """Block until at least one job in flight ends; (job, result) of those that finished.
        A job whose result cannot be had (it raised there, or could not be sent) finishes
        with a failure result; a lost job goes to ``lost`` instead."""
        finished = []
        for handle in self._done():
            job, payload = self._pending.pop(handle)
            try:
                result = self._result(handle)
            except Exception as err:  # e.g. a payload that cannot be pickled, a task that died
                result = _failure(job, _error_text(err))
            if result is None:
                self.lost.append((job, payload))
            else:
                finished.append((job, result))
        return finished

    @abstractmethod
    def _start(self, payload: dict) -> Any: ...

    @abstractmethod
    def _done(self) -> list[Any]: ...

    @abstractmethod
    def _result(self, handle: Any) -> dict | None: ...


def _refill(items: Iterator[Prepared], executor: Executor, finish: Finish) -> None:
    """Run ``items`` on ``executor``: keep up to ``executor.slots`` jobs in flight, submit the
    next prepared job when one ends, and ``finish`` each finished job (and each job whose
    input failed, at once). Returns when the items are used up (or the executor takes no
    more) and nothing is in flight."""
    exhausted = False
    while True:
        while not exhausted and executor.in_flight < executor.slots:
            item = next(items, None)
            if item is None:
                exhausted = True
                break
            job, payload, failure = item
            if failure is not None:
                finish(job, failure)
                continue
            executor.submit(job, payload)
        if not executor.in_flight:
            return
        for job, result in executor.wait():
            finish(job, result)


# --- a local process pool -----------------------------------------------------------------------


class _PoolExecutor(Executor):
    """A ProcessPoolExecutor; when a worker dies the pool breaks, its jobs in flight are
    lost, and it takes no more jobs."""

    _keeps_payloads = True

    def __init__(self, pool: Any, slots: int, fn: Callable[[dict], dict]):
        super().__init__(slots)
        self._pool, self._fn = pool, fn

    @property
    def slots(self) -> int:
        return 0 if self.lost else self._slots

    def _start(self, payload: dict) -> Any:
        return self._pool.submit(self._fn, payload)

    def _done(self) -> list[Any]:
        from concurrent.futures import FIRST_COMPLETED, wait

        done, _ = wait(self._pending, return_when=FIRST_COMPLETED)
        return list(done)

    def _result(self, future: Any) -> dict | None:
        from concurrent.futures.process import BrokenProcessPool

        try:
            return future.result()
        except BrokenProcessPool:
            return None


@contextmanager
def _process_pool(slots: int, fn: Callable[[dict], dict]) -> Iterator[_PoolExecutor]:
    """A 'spawn' pool of ``slots`` processes, one fresh process per job."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    extra = {"max_tasks_per_child": 1} if sys.version_info >= (3, 11) else {}
    pool = ProcessPoolExecutor(max_workers=slots, mp_context=multiprocessing.get_context("spawn"), **extra)
    executor = _PoolExecutor(pool, slots, fn)
    try:
        yield executor
    except BaseException:  # Ctrl-C, or the driver failed: do not wait minutes for the workers
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()  # our own worker processes
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=not executor.lost, cancel_futures=True)


def _run_local(items: Iterator[Prepared], jobs: int, finish: Finish,
               fn: Callable[[dict], dict] = run_job) -> None:
    """A process pool ('spawn', one fresh process per job). If a worker dies (killed, out of
    memory) the pool breaks; the jobs then in flight are re-run one by one, each alone in a
    new pool, so that only the one that kills its worker is recorded as failed."""
    from concurrent.futures.process import BrokenProcessPool

    suspects: list[tuple[_Job, dict]] = []
    while True:
        broken = _pool_round(items, jobs, finish, fn)
        suspects.extend(broken)
        if not broken:
            break
    for job, payload in suspects:
        if _pool_round(iter([(job, payload, None)]), 1, finish, fn):
            finish(job, _failure(job, f"{BrokenProcessPool.__name__}: the worker process died "
                                      "(killed, or out of memory?)"))


def _pool_round(items: Iterator[Prepared], jobs: int, finish: Finish,
                fn: Callable[[dict], dict]) -> list[tuple[_Job, dict]]:
    """Run items in one pool until they run out ([]) or the pool breaks (the jobs in flight)."""
    with _process_pool(jobs, fn) as executor:
        _refill(items, executor, finish)
    return executor.lost


# --- a Ray cluster ------------------------------------------------------------------------------


class _RayExecutor(Executor):
    """Ray tasks of run_job (num_cpus=cpus, a fresh worker process per task); payloads and
    results travel through Ray's object store. A task that fails there finishes as failed."""

    def __init__(self, ray: Any, slots: int, cpus: int):
        super().__init__(slots)
        self._ray = ray
        self._task = ray.remote(num_cpus=cpus, max_calls=1, max_retries=1)(run_job)

    def _start(self, payload: dict) -> Any:
        return self._task.remote(payload)

    def _done(self) -> list[Any]:
        done, _ = self._ray.wait(list(self._pending), num_returns=1)
        return done

    def _result(self, ref: Any) -> dict:
        return self._ray.get(ref)  # raises when the worker died, or the task could not run there


@contextmanager
def _ray_executor(address: str | None, in_flight_max: int | None, cpus: int) -> Iterator[_RayExecutor]:
    """Connected to the Ray cluster at ``address`` (None: a local Ray) while in use;
    ``in_flight_max`` None: the cluster's CPUs / cpus."""
    try:
        import ray
    except ImportError:
        raise InputError("--executor ray", RAY_MISSING) from None
    try:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise InputError(f"--address {address}", f"could not connect to the Ray cluster ({_error_text(err)})") from None
    try:
        if in_flight_max is None:
            in_flight_max = max(1, int(ray.cluster_resources().get("CPU", 1) // cpus))
        yield _RayExecutor(ray, in_flight_max, cpus)
    finally:
        ray.shutdown()


def _run_ray(items: Iterator[Prepared], address: str | None, in_flight_max: int | None, cpus: int,
             finish: Finish) -> None:
    """The same job function as Ray tasks (num_cpus=cpus, a fresh worker process per task).
    Payloads and results travel through Ray's object store; the driver writes the files."""
    with _ray_executor(address, in_flight_max, cpus) as executor:
        _refill(items, executor, finish)
