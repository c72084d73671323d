"""Dynamic batching: concurrent requests' windows of one model grouped into one forward pass, off the event loop.

Like Triton's dynamic batcher or Ray Serve's `@serve.batch`: a bounded queue; a worker takes the first waiting item,
waits at most `max_wait_ms` for more of the same shape, up to `max_batch`, and runs them as one batch in a thread.
A full queue refuses new items at once (`Overloaded`, answered 503 with Retry-After) instead of growing memory.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from landsight.serve.config import Batching
from landsight.serve.errors import Overloaded
from landsight.serve.models import Infer

log = logging.getLogger(__name__)

_Item = tuple[np.ndarray, "asyncio.Future[np.ndarray]"]


class DynamicBatcher:
    """Groups `submit`ted arrays of equal shape into batches for `infer`; one worker and one inference thread.

    `on_batch(size)` and `on_queue(depth)` report to metrics.
    """

    def __init__(self, infer: Infer, settings: Batching, on_batch: Callable[[int], None] = lambda n: None,
                 on_queue: Callable[[int], None] = lambda n: None) -> None:
        self.infer, self.settings = infer, settings
        self.on_batch, self.on_queue = on_batch, on_queue
        self._waiting: collections.deque[_Item] = collections.deque()
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="landsight-infer")
        self._worker: asyncio.Task[None] | None = None

    @property
    def depth(self) -> int:
        """Items waiting for a forward pass."""
        return len(self._waiting)

    async def submit(self, item: np.ndarray) -> np.ndarray:
        """The model's output for one input array (without the batch axis); Overloaded when the queue is full."""
        if len(self._waiting) >= self.settings.max_queue:
            raise Overloaded(f"the inference queue is full ({self.settings.max_queue} windows waiting); retry later "
                             "or start the server with a larger `max_queue`")
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._run())
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        self.on_queue(len(self._waiting))
        self._wakeup.set()
        return await future

    async def close(self) -> None:
        """Stop the worker and fail anything still waiting."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None
        while self._waiting:
            _, future = self._waiting.popleft()
            if not future.done():
                future.set_exception(Overloaded("the server is shutting down"))
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._waiting:
                self._wakeup.clear()
                await self._wakeup.wait()
            batch = await self._collect()
            self.on_queue(len(self._waiting))
            live = [(x, f) for x, f in batch if not f.done()]  # cancelled requests (timeouts) are skipped
            if not live:
                continue
            self.on_batch(len(live))
            try:
                out = await loop.run_in_executor(self._executor, self.infer, np.stack([x for x, _ in live]))
            except Exception as exc:
                log.exception("inference failed on a batch of %d", len(live))
                for _, f in live:
                    if not f.done():
                        f.set_exception(exc)
                continue
            for (_, f), result in zip(live, out, strict=True):
                if not f.done():
                    f.set_result(result)

    async def _collect(self) -> list[_Item]:
        """The first waiting item and up to max_batch - 1 more of its shape, waiting at most max_wait_ms."""
        first = self._waiting.popleft()
        batch = [first]
        deadline = asyncio.get_running_loop().time() + self.settings.max_wait_ms / 1000
        while len(batch) < self.settings.max_batch:
            same = next((it for it in self._waiting if it[0].shape == first[0].shape), None)
            if same is not None:
                self._waiting.remove(same)
                batch.append(same)
                continue
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                break
        return batch
