"""forced_align against an independent full-trellis Viterbi and against exhaustive enumeration of CTC paths."""

import itertools

import numpy as np
import pytest
import torch

from mms.align import viterbi
from mms.align.viterbi import AlignmentError, forced_align

BACKENDS = ["torch"] + (["numba"] if viterbi.numba is not None else [])


def full_trellis(lp: np.ndarray, targets: list[int], blank: int) -> np.ndarray:
    """The whole T x (2L+1) trellis with back-pointers, ties broken as torchaudio documents its kernel:
    skip only if strictly better than both, step if strictly better than stay; trailing blank only if
    strictly better than the last label."""
    n_frames, n_states = lp.shape[0], 2 * len(targets) + 1
    ext = [blank if s % 2 == 0 else targets[s // 2] for s in range(n_states)]
    alpha = np.full((n_frames, n_states), -np.inf, dtype=lp.dtype)
    back = np.zeros((n_frames, n_states), dtype=np.int64)
    alpha[0, :2] = [lp[0, e] for e in ext[:2]]
    for t in range(1, n_frames):
        for s in range(n_states):
            stay = alpha[t - 1, s]
            step = alpha[t - 1, s - 1] if s >= 1 else -np.inf
            skip = alpha[t - 1, s - 2] if s % 2 and s >= 3 and ext[s] != ext[s - 2] else -np.inf
            choice, best = (2, skip) if skip > step and skip > stay else (1, step) if step > stay else (0, stay)
            alpha[t, s], back[t, s] = best + lp[t, ext[s]], choice
    s = 0 if n_states == 1 else n_states - 1 if alpha[-1, -1] > alpha[-1, -2] else n_states - 2
    path = np.zeros(n_frames, dtype=np.int64)
    for t in range(n_frames - 1, -1, -1):
        path[t] = ext[s]
        s -= back[t, s]
    return path


def enumerate_best(lp: np.ndarray, targets: list[int], blank: int) -> float:
    """Best score over every label sequence of length T that collapses to `targets` (tiny cases only)."""
    best = -np.inf
    for labels in itertools.product(range(lp.shape[1]), repeat=lp.shape[0]):
        collapsed = [k for k, _ in itertools.groupby(labels) if k != blank]
        if collapsed == targets:
            best = max(best, float(sum(lp[t, k] for t, k in enumerate(labels))))
    return best


def is_valid(path: np.ndarray, targets: list[int], blank: int) -> bool:
    return [k for k, _ in itertools.groupby(path.tolist()) if k != blank] == list(targets)


def random_case(rng, ties: bool):
    n_frames = int(rng.integers(1, 60))
    n_classes = int(rng.integers(2, 7))
    while True:
        targets = rng.integers(1, n_classes, int(rng.integers(0, n_frames + 1)))
        if targets.size + int((targets[1:] == targets[:-1]).sum()) <= n_frames:
            break
    lp = rng.standard_normal((n_frames, n_classes)).astype(np.float32)
    # rounded scores make many equal paths, so that the tie rules are exercised
    lp = np.round(lp) if ties else torch.from_numpy(lp).log_softmax(-1).numpy()
    return lp, targets.tolist()


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_path_as_full_trellis(backend):
    rng = np.random.default_rng(0)
    for case in range(200):
        lp, targets = random_case(rng, ties=case % 2 == 1)
        blank = 0
        labels, scores = forced_align(torch.from_numpy(lp)[None], torch.tensor([targets], dtype=torch.int32),
                                      blank=blank, backend=backend)
        assert labels.shape == scores.shape == (1, lp.shape[0]) and labels.dtype == torch.int32
        expected = full_trellis(lp, targets, blank)
        np.testing.assert_array_equal(labels[0].numpy(), expected)
        assert torch.equal(scores[0], torch.from_numpy(lp)[torch.arange(lp.shape[0]), labels[0].long()])


@pytest.mark.parametrize("backend", BACKENDS)
def test_long_input_crosses_many_checkpoints(backend):
    # T = 700 gives checkpoints every 26 frames: the path is recovered segment by segment
    rng = np.random.default_rng(1)
    lp = torch.randn(700, 8, generator=torch.Generator().manual_seed(1)).log_softmax(-1)
    targets = rng.integers(1, 8, 250).tolist()
    labels, _ = forced_align(lp, torch.tensor(targets), blank=0, backend=backend)
    np.testing.assert_array_equal(labels.numpy(), full_trellis(lp.numpy(), targets, 0))


def test_backends_agree_and_blank_elsewhere():
    rng = np.random.default_rng(2)
    torch.manual_seed(2)  # the same data whatever ran before: a failure can be rerun
    lp = torch.randn(300, 6, dtype=torch.float64).log_softmax(-1)
    targets = torch.from_numpy(rng.integers(0, 5, 120))  # blank = 5, the last class
    a = forced_align(lp, targets, blank=5, backend="torch")
    b = forced_align(lp, targets, blank=5, backend="auto")
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[1].dtype == torch.float64
    np.testing.assert_array_equal(a[0].numpy(), full_trellis(lp.numpy(), targets.tolist(), 5))


def test_best_score_equals_exhaustive_search():
    rng = np.random.default_rng(3)
    torch.manual_seed(3)
    for _ in range(40):
        n_frames, n_classes = int(rng.integers(1, 7)), 3
        targets = [int(k) for k in rng.integers(1, n_classes, int(rng.integers(0, 4)))]
        if len(targets) + sum(a == b for a, b in zip(targets, targets[1:])) > n_frames:
            continue
        lp = torch.randn(n_frames, n_classes, dtype=torch.float64).log_softmax(-1)
        labels, scores = forced_align(lp, torch.tensor(targets, dtype=torch.long))
        assert is_valid(labels.numpy(), targets, 0)
        assert abs(float(scores.sum()) - enumerate_best(lp.numpy(), targets, 0)) < 1e-9


def test_repeated_tokens_need_a_blank_between_them():
    # the model says "a a" without a blank; the alignment of [a, a] must put a blank between them
    lp = torch.full((4, 3), -10.0)
    lp[:, 1] = -0.01
    labels, _ = forced_align(lp, torch.tensor([1, 1]))
    assert labels.tolist() in ([1, 0, 1, 1], [1, 1, 0, 1], [1, 0, 0, 1])  # never a run that merges the two
    assert is_valid(labels.numpy(), [1, 1], 0)
    # exactly L + repeats frames: the only path is a, blank, a
    assert forced_align(lp[:3], torch.tensor([1, 1]))[0].tolist() == [1, 0, 1]


def test_impossible_and_bad_inputs_raise_clear_errors():
    lp = torch.randn(5, 4).log_softmax(-1)
    with pytest.raises(AlignmentError, match="need at least 6 frames"):
        forced_align(lp, torch.tensor([1, 1, 2, 2]))  # 4 targets + 2 repeats > 5 frames
    with pytest.raises(AlignmentError, match="blank id 0"):
        forced_align(lp, torch.tensor([1, 0]))
    with pytest.raises(AlignmentError, match=r"ids in \[0, 4\)"):
        forced_align(lp, torch.tensor([1, 7]))
    with pytest.raises(AlignmentError, match="batch size must be 1"):
        forced_align(lp[None].expand(2, -1, -1), torch.tensor([[1], [2]]))
    with pytest.raises(AlignmentError, match="NaN"):
        forced_align(torch.full((3, 4), float("nan")), torch.tensor([1]))
    with pytest.raises(AlignmentError, match="input_lengths"):
        forced_align(lp[None], torch.tensor([[1]]), input_lengths=torch.tensor([4]))


def test_empty_targets_give_all_blank():
    labels, scores = forced_align(torch.randn(7, 3).log_softmax(-1)[None], torch.zeros((1, 0), dtype=torch.long))
    assert labels.tolist() == [[0] * 7] and scores.shape == (1, 7)


def test_star_column_absorbs_untranscribed_audio():
    # frames 0-9: audio that no target explains (the model says blank/b there); then "a" "b"
    lp = torch.full((14, 3), -8.0)
    lp[:10, 2] = -0.1
    lp[10:12, 1], lp[12:, 2] = -0.05, -0.05
    with_star = torch.cat([lp, torch.zeros(14, 1)], dim=1)  # <star> = class 3, log-prob 0 everywhere
    labels, scores = forced_align(with_star, torch.tensor([3, 1, 2]))
    # probability 1 beats everything: <star> takes every frame it can, down to the single "a" frame
    assert labels.tolist() == [3] * 11 + [1, 2, 2] and scores[:11].eq(0).all()
