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

    def __init__(self, key: bytes, index_url: str | None = None) -> None:
        self.key = key
        #: With direct writes, the index the worker writes units into (it may carry a password:
        #: it travels as the key does).
        self.index_url = index_url

    def setup(self, worker: Any) -> None:
        from discover.scan import _WORKER, INDEX_URL_SLOT

        _WORKER[KEY_SLOT] = self.key
        if self.index_url is None:
            _WORKER.pop(INDEX_URL_SLOT, None)
        else:
            _WORKER[INDEX_URL_SLOT] = self.index_url

    def teardown(self, worker: Any) -> None:
        from discover.scan import _WORKER, INDEX_URL_SLOT

        _WORKER.pop(KEY_SLOT, None)
        _WORKER.pop(INDEX_URL_SLOT, None)
