"""Free-text detection on a process pool, in input order, in bounded memory.

spaCy's NER holds the GIL, so threads do not help: texts go in batches to worker processes,
each with its own Presidio engine. The parent builds the engine for the language before the
pool starts, so forked workers share the loaded model rather than each loading their own,
and a missing model is one error in the parent, not one per worker.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from discover.detector import Detector, Entity
from discover.errors import DetectorCrashedError
from discover.settings import DetectionSettings

_WORKER: dict[str, Any] = {}
#: Texts per task on the pool: small enough that workers finish close together, large enough
#: that a task's overhead (pickling, about a millisecond) is small beside its NER.
POOL_BATCH = 64


def _batches(texts: Iterable[str], size: int) -> Iterator[list[str]]:
    """Batches of ``size`` texts; if reading fails, the texts read so far come first, then the error."""
    batch: list[str] = []
    try:
        for text in texts:
            batch.append(text)
            if len(batch) >= size:
                yield batch
                batch = []
    except Exception:
        if batch:
            yield batch
        raise
    if batch:
        yield batch


def _analyze_batch(settings: DetectionSettings, language: str | None, texts: list[str]) -> list[list[Entity]]:
    """Runs in a worker: its engine is the forked parent's, or built once on first use."""
    detector = _WORKER.get("detector")
    if detector is None or detector.settings != settings:
        detector = _WORKER["detector"] = Detector(settings)
    return detector.analyze(texts, language=language)


def detect_stream(
    texts: Iterable[str],
    *,
    detector: Detector,
    language: str | None = None,
    workers: int = 1,
    batch_size: int = 256,
) -> Iterator[list[Entity]]:
    """Entities in each text, yielded in input order, with ``workers`` processes.

    Memory: with one worker, one batch of ``batch_size`` texts and their entities; with more,
    at most ``4 * workers + 1`` batches of ``min(batch_size, POOL_BATCH)`` texts, whatever the
    input's length: the input is read only as fast as results are taken.

    If reading the input fails (a bad line), the entities of every text read before it are
    yielded first, then the error is raised.
    """
    batches = _batches(texts, batch_size if workers <= 1 else min(batch_size, POOL_BATCH))
    if workers <= 1:
        for batch in batches:
            yield from detector.analyze(batch, language=language)
        return

    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from discover.lifeline import die_with_parent

    detector.engine(language)  # load (or fail) here, before forking: workers share the model
    _WORKER["detector"] = detector
    window = 4 * workers
    pending: deque[Any] = deque()
    failed: Exception | None = None
    pool = ProcessPoolExecutor(max_workers=workers, initializer=die_with_parent, initargs=(os.getpid(),))
    try:
        while failed is None:
            try:
                batch = next(batches)
            except StopIteration:
                break
            except Exception as exc:  # reading the input failed: answer what was read, then say why
                failed = exc
                break
            pending.append(pool.submit(_analyze_batch, detector.settings, language, batch))
            if len(pending) >= window:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()
    except BrokenProcessPool as exc:
        raise DetectorCrashedError("a detection worker process died (out of memory, or killed)") from exc
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    if failed is not None:
        raise failed
