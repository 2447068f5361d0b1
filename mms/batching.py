"""Batching helpers shared by every task: length-sorted batches under a padded budget, padding with lengths,
out-of-memory retry in halves, running an iterator ahead on a background thread, and display names of inputs.
No torch here: tensors are made by the model runners from the padded numpy arrays."""

from __future__ import annotations

import atexit
import os
import queue
import threading
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

import numpy as np

from mms.manifest import Item

T = TypeVar("T")


def make_batches(lengths: list[int], max_samples: int, same_length: bool = False) -> list[list[int]]:
    """Indices grouped into batches, longest first, each padded batch within `max_samples` (a single longer
    item still gets a batch of its own). `same_length` keeps only equal lengths together (GroupNorm models)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches, current = [], []
    for i in order:
        longest = lengths[current[0]] if current else lengths[i]
        fits = longest * (len(current) + 1) <= max_samples
        if current and (not fits or (same_length and lengths[i] != longest)):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def pad(sequences: Sequence[np.ndarray | Sequence], dtype=np.float32, value=0) -> tuple[np.ndarray, list[int]]:
    """Right-pad 1-d sequences (waveforms, id lists) into one [B, max length] array; returns it and the lengths."""
    lengths = [len(s) for s in sequences]
    batch = np.full((len(sequences), max(lengths, default=0)), value, dtype=dtype)
    for row, seq, n in zip(batch, sequences, lengths):
        row[:n] = seq
    return batch, lengths


def in_halves(batch: list[T], run: Callable[[list[T]], None], fail: Callable[[T, BaseException], None]) -> None:
    """run(batch); when it raises RuntimeError or MemoryError (out of memory, mostly), run each half again, down
    to single items, and give a single item that still fails to fail(item, error): one input that cannot be
    processed never takes its batch down with it."""
    if not batch:
        return
    try:
        run(batch)
    except (RuntimeError, MemoryError) as e:
        if len(batch) == 1:
            fail(batch[0], e)
            return
        half = len(batch) // 2
        in_halves(batch[:half], run, fail)
        in_halves(batch[half:], run, fail)


def failure(error: BaseException) -> str:
    """The one-line reason of a failed forward pass."""
    return f"model failed ({type(error).__name__}: {(str(error).splitlines() or [''])[0][:200]})"


class _Raised:
    def __init__(self, error: BaseException):
        self.error = error


_END = object()
# Producers still running, as (stop, thread). A daemon thread that is inside native code (a torch op, a decoder)
# when the interpreter finalises is torn down by pthread_exit, whose unwinding through C++ frames aborts the
# process ("terminate called without an active exception", status 134): seen on `mms asr ... | head -1`. So every
# producer is stopped and joined before that, when its consumer stops and at exit for one never closed.
_producers: set = set()
_JOIN_SECONDS = 60.0  # the item under way finishes (a long file's resampling); one blocked reading a pipe is let go


def _stop_producers() -> None:
    for stop, _ in list(_producers):
        stop.set()
    for _, thread in list(_producers):
        thread.join(_JOIN_SECONDS)


atexit.register(_stop_producers)


def run_ahead(items: Iterable[T], ahead: int, cost: Callable[[T], int] | None = None,
              budget: int = 0) -> Iterator[T]:
    """The items of an iterator, produced up to `ahead` items in advance on a background thread (reading and
    decoding audio overlaps the model's work), in order. An exception of the producer is raised here.
    With `cost` (e.g. an item's samples), the items waiting also stay within `budget` of it (one item always
    may wait): a count alone would let 16 long recordings sit in memory at once."""
    slots: queue.Queue = queue.Queue(maxsize=max(1, ahead))
    stop = threading.Event()
    waiting = [0]  # the cost of the items in `slots`
    room = threading.Condition()

    def put(item) -> bool:
        weight = cost(item) if cost is not None and not isinstance(item, _Raised) and item is not _END else 0
        with room:
            while weight and waiting[0] and waiting[0] + weight > budget and not stop.is_set():
                room.wait(0.1)
            waiting[0] += weight
        while not stop.is_set():
            try:
                slots.put((item, weight), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            put(_Raised(e))
            return
        put(_END)

    thread = threading.Thread(target=produce, daemon=True, name="mms-reader")
    producer = (stop, thread)
    _producers.add(producer)
    thread.start()
    try:
        while True:
            item, weight = slots.get()
            if weight:
                with room:
                    waiting[0] -= weight
                    room.notify()
            if item is _END:
                return
            if isinstance(item, _Raised):
                raise item.error
            yield item
    finally:
        stop.set()  # the producer stops after the item under way, which is awaited (see _producers)
        thread.join(_JOIN_SECONDS)
        _producers.discard(producer)


def prefetch(fn: Callable, items: Iterable, ahead: int, cost: Callable | None = None, budget: int = 0) -> Iterator:
    """map(fn, items), computed `ahead` items in advance on a background thread, in order (within `budget` of
    `cost`, as run_ahead)."""
    return run_ahead(map(fn, items), ahead, cost, budget)


def release_memory() -> None:
    """Hand freed heap memory back to the OS (glibc's malloc_trim). Waveforms are allocated on the reading thread
    and freed on the model's, which leaves glibc's per-thread arenas fragmented: without this, a long run's
    resident memory creeps up although nothing is kept (measured in benchmarks/memory.py). Called once per
    buffer; a no-op where there is no glibc."""
    global _malloc_trim
    if _malloc_trim is None:
        try:
            import ctypes

            _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim = None


def input_name(source, i: int) -> str:
    if isinstance(source, Item):
        return source.audio
    if isinstance(source, np.ndarray):
        return f"<array {i}>"
    if isinstance(source, bytes):
        return os.fsdecode(source)
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return f"<input {i}: {type(source).__name__}>"  # not an input: its error names it so


INPUT_TYPES = (str, bytes, os.PathLike, Item, np.ndarray)  # what the ASR and LID readers take as one input


def check_inputs(inputs) -> None:
    """A TypeError for one path given where an iterable of inputs is expected (it would be read as one input per
    character)."""
    if isinstance(inputs, (str, bytes, os.PathLike, np.ndarray)) and not (
            isinstance(inputs, np.ndarray) and inputs.dtype == object):
        raise TypeError(f"inputs: give an iterable of paths, Items or arrays, e.g. [{inputs!r}]"
                        if not isinstance(inputs, np.ndarray) else
                        "inputs: give an iterable of inputs, e.g. [array] for one waveform")
