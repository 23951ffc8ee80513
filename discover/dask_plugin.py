"""The Dask worker plugin that hands the index key to each worker once (``discover.executors``).

A module of its own because it imports ``distributed`` at the top: only the dask executor loads it.
"""

from __future__ import annotations

from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

#: Where the index key lives in a Dask worker process.
KEY_SLOT = "index_key"


class IndexKeyPlugin(WorkerPlugin):
    """Sets the index key in the worker's per-process cache when the worker starts or joins.

    The key travels to the workers as the plugin is registered: on a cluster beyond this
    machine, use a ``tls://`` scheduler (see the README) so it never crosses a network in clear.
    """

    name = "piiport-index-key"

    def __init__(self, key: bytes) -> None:
        self.key = key

    def setup(self, worker: Any) -> None:
        from discover.scan import _WORKER

        _WORKER[KEY_SLOT] = self.key

    def teardown(self, worker: Any) -> None:
        from discover.scan import _WORKER

        _WORKER.pop(KEY_SLOT, None)
