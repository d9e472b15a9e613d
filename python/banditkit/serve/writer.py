"""Group commit: one writer thread appends, in one transaction per experiment, everything the
request threads queued meanwhile, so that 32 concurrent requests cost about one commit (and one
fsync) instead of 32. A request thread blocks in `append` until its rows are durable."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from banditkit.serve.errors import Unavailable
from banditkit.store import EventRow

log = logging.getLogger("banditkit.serve")

Observer = Callable[[str, str, float], None]
_STOP = object()


class EventWriter:
    """`append(name, rows)` returns once the rows are committed; a failed commit raises
    `Unavailable` in every request whose rows were in it (none of them was acknowledged)."""

    def __init__(self, store: Any, observe: Observer | None = None) -> None:
        self.store = store
        self.observe = observe
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self._gate = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="banditkit-writer", daemon=True)
        self._thread.start()

    def append(self, name: str, rows: list[EventRow]) -> None:
        done: Future[None] = Future()
        with self._gate:  # nothing can be queued behind the stop mark, to wait forever
            if self._closed:
                raise Unavailable("the server is shutting down")
            self._queue.put((name, rows, done))
        done.result()  # blocks without the GIL; re-raises the batch's error

    def close(self) -> None:
        """Commit what is queued, then stop the thread."""
        with self._gate:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join()

    def _run(self) -> None:
        stop = False
        while not stop:
            batch = [self._queue.get()]
            while True:  # everything queued meanwhile joins this commit
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            by_name: dict[str, list[tuple[list[EventRow], Future[None]]]] = {}
            for item in batch:
                if item is _STOP:
                    stop = True
                else:
                    by_name.setdefault(item[0], []).append((item[1], item[2]))
            for name, items in by_name.items():
                self._commit(name, items)

    def _commit(self, name: str, items: list[tuple[list[EventRow], Future[None]]]) -> None:
        # An id in two requests (a retried reward racing its original) is kept once, the
        # first: the store would do the same, this spares it the duplicate.
        seen: set[str] = set()
        rows = []
        for part, _ in items:
            for row in part:
                if row.id not in seen:
                    seen.add(row.id)
                    rows.append(row)
        start = time.perf_counter()
        try:
            self.store.append_rows(name, rows)
        except Exception as exc:  # noqa: BLE001 - every waiter gets the store's failure
            log.error("appending %d events to %r failed: %s", len(rows), name, exc)
            error = Unavailable(f"the store did not take the events: {exc}")
            for _, done in items:
                done.set_exception(error)
            return
        if self.observe is not None:
            self.observe("store", "append", time.perf_counter() - start)
        for _, done in items:
            done.set_result(None)
