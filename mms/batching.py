"""Batching helpers shared by the tasks: length-sorted batches under a padded-audio budget, background
prefetching, and display names of inputs."""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Iterator

import numpy as np

from mms.manifest import Item


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


def prefetch(fn, items: Iterable, ahead: int) -> Iterator:
    """map(fn, items) computed `ahead` items in advance on a background thread, in order."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) > ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def input_name(source, i: int) -> str:
    if isinstance(source, Item):
        return source.audio
    if isinstance(source, np.ndarray):
        return f"<array {i}>"
    return os.fspath(source)
