"""run_ahead: the background reader every task uses to overlap decoding with the model."""

import subprocess
import sys
import threading
import time

import pytest

from mms.batching import run_ahead


def readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "mms-reader"]


def test_items_in_order_and_the_producers_error_reaches_the_consumer():
    def items():
        yield from range(5)
        raise ValueError("bad manifest line 6")

    got = []
    with pytest.raises(ValueError, match="line 6"):
        for item in run_ahead(items(), 2):
            got.append(item)
    assert got == list(range(5))


def test_a_consumer_that_stops_early_waits_for_the_item_under_way():
    def slow():
        for i in range(100):
            time.sleep(0.2)
            yield i

    before = set(readers())
    it = run_ahead(slow(), 2)
    assert next(it) == 0
    it.close()  # the reader is mid-item: it finishes that one and ends before close() returns
    assert not set(readers()) - before


def test_exiting_while_the_reader_is_inside_torch_is_a_clean_exit():
    # the reader's thread in native code at interpreter shutdown used to abort the process (status 134)
    script = """
import torch
from mms.batching import run_ahead

def items():
    while True:
        a = torch.randn(600, 600)
        for _ in range(30):
            a = a @ a / 25
        yield a

it = run_ahead(items(), 2)
next(it)
print("done", flush=True)
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert (run.returncode, run.stdout.strip()) == (0, "done"), run.stderr


def test_a_budget_bounds_what_waits_and_an_item_above_it_still_passes():
    produced = []

    def items():
        for size in (5, 5, 5, 50, 5, 5):
            produced.append(size)
            yield size

    it = run_ahead(items(), ahead=16, cost=lambda size: size, budget=10)
    assert next(it) == 5
    time.sleep(0.5)  # the reader has run as far as the budget lets it
    # waiting: 5 + 5 (the budget); the 50 in the reader's hand, not yet queued; nothing after it produced
    assert produced == [5, 5, 5, 50]
    assert list(it) == [5, 5, 50, 5, 5]  # the 50 alone exceeds the budget: it passes when nothing else waits
    unbounded = run_ahead(items(), ahead=16)
    assert next(unbounded) == 5
    time.sleep(0.5)
    assert len(produced) == 6 + 6  # without a cost, only the count (16) bounds it: all six are read at once
    unbounded.close()
