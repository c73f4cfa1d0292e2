"""Runs blocking calls in OS threads while only the calling tasklet waits."""
import os
import queue
import threading
import weakref

from ._syncless import coio_module as _coio


class _Job:
    __slots__ = ("func", "args", "kwargs", "waker", "result", "error", "cancelled")

    def __init__(self, func, args, kwargs):
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.waker = _coio.Waker()
        self.result = None
        self.error = None
        self.cancelled = False


class ThreadPool:
    """``pool(func, *args, **kwargs)`` runs func in one of at most
    ``max_threads`` worker threads (started on demand, daemons) and returns
    its result or raises its exception in the caller; other tasklets run
    meanwhile. A caller killed while waiting leaves the call to finish and
    drops its result.
    """

    def __init__(self, max_threads=10):
        if max_threads < 1:
            raise ValueError("a thread pool needs at least one thread")
        self.max_threads = max_threads
        self._start_afresh()
        _pools.add(self)

    def _start_afresh(self):
        """No workers yet; also in a forked child, where the parent's
        threads (and maybe a held lock) are gone."""
        self._jobs = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = []
        self._idle = 0     # workers waiting for a job
        self._queued = 0   # jobs no worker has taken yet

    def __call__(self, func, *args, **kwargs):
        job = _Job(func, args, kwargs)
        self._jobs.put(job)
        with self._lock:
            self._queued += 1
            # A burst of calls gets as many threads as it has jobs waiting.
            if self._queued > self._idle and len(self._threads) < self.max_threads:
                worker = threading.Thread(target=self._work, name="syncless-pool", daemon=True)
                self._threads.append(worker)
                worker.start()
        try:
            job.waker.wait()
        except BaseException:
            job.cancelled = True
            raise
        if job.error is not None:
            error, job.error = job.error, None
            raise error
        return job.result

    def _work(self):
        while True:
            with self._lock:
                self._idle += 1
            job = self._jobs.get()
            with self._lock:
                self._idle -= 1
                self._queued -= 1
            if not job.cancelled:
                try:
                    job.result = job.func(*job.args, **job.kwargs)
                except BaseException as exc:
                    job.error = exc
                job.waker.fire()

    @property
    def thread_count(self):
        return len(self._threads)


_pools = weakref.WeakSet()


def _after_fork_in_child():
    for pool in list(_pools):
        pool._start_afresh()


os.register_at_fork(after_in_child=_after_fork_in_child)

_default = None


def default_pool():
    """The process-wide pool that coio's blocking helpers share."""
    global _default
    if _default is None:
        _default = ThreadPool()
    return _default
