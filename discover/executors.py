"""Where scan units run: the local process pool, or a Dask distributed cluster.

The scan's runner (``discover.scan``) submits plain-data ``UnitTask`` s and collects
``UnitResult`` s in any order; it writes containers in order itself. An executor only has to
submit, wait for the first finished future, and shut down.

Dask is imported lazily: only ``--executor dask`` needs it (``pip install 'piiport[dask]'``).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from connectors.errors import ConfigError
from connectors.options import SourceOptions

EXECUTORS = ("local", "dask")
#: Retries of a unit on Dask: a worker that died or a task that raised runs again elsewhere.
DEFAULT_RETRIES = 2


class ExecutorError(ConfigError):
    """The executor could not start (Dask missing, scheduler unreachable): exit code 2."""


def check_executor(executor: str, scheduler: str | None) -> None:
    """Raise ``ConfigError`` for an unknown executor, or a scheduler without ``dask``."""
    if executor not in EXECUTORS:
        raise ConfigError(f"executor {executor!r} is not one of: {', '.join(EXECUTORS)}", setting="executor")
    if scheduler is not None:
        if executor != "dask":
            raise ConfigError("a scheduler address needs executor dask", setting="executor")
        if "://" not in scheduler:
            raise ConfigError(
                f"scheduler {scheduler!r} is not an address such as tcp://host:8786 or tls://host:8786",
                setting="scheduler",
            )


def max_concurrency(options: SourceOptions) -> int | None:
    """The per-source cap on units that run at once (``max_concurrency`` in a source's config)."""
    return options.max_concurrency


class LocalExecutor:
    """Today's process pool: one Presidio engine per worker process, forked from the parent."""

    def __init__(self, workers: int, *, index_url: str | None = None) -> None:
        from concurrent.futures import ProcessPoolExecutor

        self.slots = workers
        self._pool = ProcessPoolExecutor(
            max_workers=workers, initializer=_start_local_worker, initargs=(os.getpid(), index_url)
        )

    def submit(self, fn: Callable[[Any], Any], task: Any) -> Any:
        return self._pool.submit(fn, task)

    def wait_first(self, futures: Sequence[Any]) -> set[Any]:
        from concurrent.futures import FIRST_COMPLETED, wait

        done, _ = wait(futures, return_when=FIRST_COMPLETED)
        return done

    def shutdown(self, pending: Sequence[Any]) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        # Units that finished but were never written (the scan stopped early): remove their spill files.
        for future in pending:
            if not future.cancelled() and future.exception() is None:
                future.result().discard()


def _start_local_worker(parent: int, index_url: str | None) -> None:
    """A pool worker: it dies with the scan, and knows the index it writes units into (direct writes)."""
    from discover.lifeline import die_with_parent
    from discover.scan import _WORKER, INDEX_URL_SLOT

    die_with_parent(parent)
    if index_url is not None:
        _WORKER[INDEX_URL_SLOT] = index_url


def _run_on_worker(fn: Callable[[Any], Any], task: Any, semaphore: Any) -> Any:
    """A unit on a Dask worker: the index key comes from the worker (set once by a plugin)."""
    from discover.dask_plugin import KEY_SLOT
    from discover.scan import _WORKER

    key = _WORKER.get(KEY_SLOT)
    if key is None:
        raise ExecutorError(
            "this Dask worker has no index key; restart the scan so its plugin registers again", setting="scheduler"
        )
    task = dataclasses.replace(task, key=key)
    if semaphore is None:
        return fn(task)
    with semaphore:
        return fn(task)


def start_dask(workers: int, scheduler: str | None) -> tuple[Any, Any]:
    """A Dask client, and the LocalCluster started for it (None with a scheduler address)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise ExecutorError(
            "the dask executor needs Dask distributed; install it with: pip install 'piiport[dask]'",
            setting="executor",
        ) from exc
    cluster: Any = None
    try:
        if scheduler is None:
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                # Each worker imports the scan code as it starts, not on its first unit: with the
                # cluster started beside listing and profiling (``OpeningExecutor``), in parallel.
                preload=["discover.scan"],
            )
            return cluster, Client(cluster)
        return None, Client(scheduler, timeout="20s")
    except (OSError, TimeoutError) as exc:
        if cluster is not None:
            cluster.close()
        where = scheduler or "a LocalCluster"
        raise ExecutorError(
            f"cannot start Dask on {where}: {exc}; check the address and that the scheduler runs",
            setting="scheduler",
        ) from exc


class DaskExecutor:
    """Units as Dask tasks: on a LocalCluster started here, or on the cluster of ``scheduler``.

    Each task is submitted with ``pure=False`` (Dask would otherwise merge identical units)
    and ``retries``. A unit's findings come back in its result (unless it writes them into the
    index itself): spilling to a worker's local disk is turned off, since the driver could not
    read that file.
    """

    def __init__(
        self,
        *,
        workers: int,
        scheduler: str | None,
        key: bytes,
        retries: int = DEFAULT_RETRIES,
        started: tuple[Any, Any] | None = None,
        index_url: str | None = None,
    ) -> None:
        self.retries = retries
        self._semaphores: dict[str, Any] = {}
        self._cluster, self._client = started or start_dask(workers, scheduler)
        from discover.dask_plugin import IndexKeyPlugin

        self.slots = max(1, sum(self._client.nthreads().values()))
        # The index key (and, for direct writes, its URL) reaches each worker once; a worker
        # that joins later gets them too.
        self._client.register_plugin(IndexKeyPlugin(key, index_url), name=IndexKeyPlugin.name)

    def _semaphore(self, source: str, leases: int | None) -> Any:
        if leases is None:
            return None
        if source not in self._semaphores:
            from distributed import Semaphore

            self._semaphores[source] = Semaphore(max_leases=leases, name=f"piiport-{os.getpid()}-{source}")
        return self._semaphores[source]

    def submit(self, fn: Callable[[Any], Any], task: Any) -> Any:
        # The key is on the workers already; the task carries none. Findings come back whole,
        # unless the unit writes them into the index itself (direct writes): no spill file either way.
        in_memory = task.in_memory if task.target is not None else sys.maxsize
        light = dataclasses.replace(task, key=b"", in_memory=in_memory, spill_dir=None)
        semaphore = self._semaphore(task.spec.name, max_concurrency(task.spec.options))
        return self._client.submit(_run_on_worker, fn, light, semaphore, pure=False, retries=self.retries)

    def wait_first(self, futures: Sequence[Any]) -> set[Any]:
        from distributed import wait

        done, _ = wait(list(futures), return_when="FIRST_COMPLETED")
        return set(done)

    def shutdown(self, pending: Sequence[Any]) -> None:
        if pending:
            self._client.cancel(list(pending))
        self.close()

    def close(self) -> None:
        client = getattr(self, "_client", None)
        if client is not None:
            client.close()
        if self._cluster is not None:
            self._cluster.close()


def open_executor(
    executor: str, *, workers: int, scheduler: str | None, key: bytes, index_url: str | None = None
) -> LocalExecutor | DaskExecutor:
    """``index_url``: the index workers write units into themselves (direct writes), if any."""
    if executor == "dask":
        return DaskExecutor(workers=workers, scheduler=scheduler, key=key, index_url=index_url)
    return LocalExecutor(workers, index_url=index_url)


class OpeningExecutor:
    """A Dask cluster (or the connection to one) starting in a thread while the scan lists and
    profiles its first containers: the start-up (seconds: a scheduler, worker processes that
    import Dask and the scan code) overlaps work the scan does anyway.

    The local pool is not started early: it forks from the parent once the parent has loaded
    what its workers share (the spaCy model).
    """

    def __init__(self, executor: str, *, workers: int, scheduler: str | None) -> None:
        self.executor, self.workers, self.scheduler = executor, workers, scheduler
        self._thread: Any = None
        self._started: tuple[Any, Any] | None = None
        self._error: BaseException | None = None
        if executor == "dask":
            import threading

            self._thread = threading.Thread(target=self._start, name="piiport-dask-start", daemon=True)
            self._thread.start()

    def _start(self) -> None:
        try:
            self._started = start_dask(self.workers, self.scheduler)
        except BaseException as exc:  # raised again in open(), in the scan's own thread
            self._error = exc

    def open(self, key: bytes, *, index_url: str | None = None) -> LocalExecutor | DaskExecutor:
        """The executor, once started; the start's error (no Dask, no scheduler) raised here.
        ``index_url``: the index workers write units into themselves (direct writes), if any."""
        if self._thread is None:
            return open_executor(
                self.executor, workers=self.workers, scheduler=self.scheduler, key=key, index_url=index_url
            )
        self._thread.join()
        self._thread = None
        if self._error is not None:
            raise self._error
        started, self._started = self._started, None
        return DaskExecutor(
            workers=self.workers, scheduler=self.scheduler, key=key, started=started, index_url=index_url
        )

    def close(self) -> None:
        """Stop a cluster started for a scan that never needed it."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._started is not None:
            cluster, client = self._started
            self._started = None
            client.close()
            if cluster is not None:
                cluster.close()
