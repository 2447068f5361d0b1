"""CTC forced alignment: the best (Viterbi) path of a label sequence through an emission matrix.

`forced_align(log_probs, targets, blank=0)` has the signature and the result of
torchaudio.functional.forced_align: one label per frame and that label's log-probability, for the path that
maximises the summed log-probability among the CTC paths that spell `targets` (a blank is optional between
different labels and required between equal ones). Ties are broken as torchaudio's kernel breaks them (stay
before step before skip; at the end the last label before the trailing blank), so the paths are identical,
not just equally good.

How it stays small for long inputs. The trellis has T frames x S = 2L+1 states (blank, l1, blank, l2, ...,
blank). Only a band of it is computed: at frame t, states reachable from the start (s < 2t+2) that can still
reach the end (s >= S-2 - 2(T-1-t)). No back-pointers are kept in the forward pass; instead the best score
of every band state is stored at every K-th frame (K ~ sqrt(T)). The path is then recovered backwards one
segment of K frames at a time: a path that is at state s at the end of a segment was at most 2K states lower
at its start, so the segment is recomputed from its checkpoint over that thin triangle only, keeping int8
choices for it. Memory is O(S * T / K + K^2) and the extra work O(T * K), small beside the forward T x S.
For one hour (T = 180,000) against 50,000 targets: ~70 MB of checkpoints instead of ~18 GB of
back-pointers.

The forward pass is a tight loop compiled by numba when numba is installed (CPU), else per-frame vectorised
torch over the band (CPU or CUDA; the same numbers, slower on CPU). Both accumulate in float32 (float64 for
float64 input), with the same operations in the same order, so both give the same path.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mms.errors import MMSError

try:  # optional: compiles the forward loop (pip install numba)
    import numba
except ImportError:  # pragma: no cover - exercised where numba is absent
    numba = None


class AlignmentError(MMSError):
    """Text that cannot be aligned to its audio (too many targets for the frames, nothing to align, bad ids);
    the message says why."""


def forced_align(log_probs, targets, input_lengths=None, target_lengths=None, blank: int = 0,
                 backend: str = "auto"):
    """Align `targets` to `log_probs` (as torchaudio.functional.forced_align).

    log_probs: [1, T, C] (or [T, C]) log-probabilities (tensor or numpy array), C including the blank.
    targets:   [1, L] (or [L]) label ids, none equal to `blank`.
    input_lengths / target_lengths: optional [1] tensors; as in torchaudio they must equal T and L.
    backend:   "auto" (numba on CPU when installed, else torch), "numba" or "torch".
    Returns (labels, scores): [1, T] labels (dtype of targets) and [1, T] log-probabilities of those labels
    (dtype of log_probs), on the device of log_probs; [T] each for unbatched inputs.
    Raises AlignmentError when the targets need more frames than there are (L + repeats > T), contain the
    blank or ids outside [0, C), or when log_probs holds NaN.
    """
    log_probs = torch.as_tensor(log_probs)
    targets = torch.as_tensor(targets)
    batched = log_probs.dim() == 3
    lp, tgt = _check(log_probs, targets, input_lengths, target_lengths, blank)
    path = viterbi_path(lp, tgt, blank, backend)  # int64 numpy [T]
    labels = torch.from_numpy(path).to(log_probs.device)
    scores = lp[torch.arange(lp.shape[0], device=lp.device), labels]
    labels = labels.to(targets.dtype if targets.dtype in (torch.int32, torch.int64) else torch.int64)
    return (labels[None], scores[None]) if batched else (labels, scores)


def _check(log_probs: torch.Tensor, targets: torch.Tensor, input_lengths, target_lengths, blank: int):
    if log_probs.dim() == 3:
        if log_probs.shape[0] != 1:
            raise AlignmentError(f"log_probs: batch size must be 1, got shape {tuple(log_probs.shape)}")
        log_probs = log_probs[0]
    if log_probs.dim() != 2:
        raise AlignmentError(f"log_probs must be [1, T, C] or [T, C], got shape {tuple(log_probs.shape)}")
    if not log_probs.is_floating_point():
        raise AlignmentError(f"log_probs must be floating point, got {log_probs.dtype}")
    if targets.dim() == 2:
        if targets.shape[0] != 1:
            raise AlignmentError(f"targets: batch size must be 1, got shape {tuple(targets.shape)}")
        targets = targets[0]
    if targets.dim() != 1:
        raise AlignmentError(f"targets must be [1, L] or [L], got shape {tuple(targets.shape)}")
    if targets.is_floating_point() or targets.is_complex():
        raise AlignmentError(f"targets must be integer label ids, got {targets.dtype}")
    n_frames, n_classes = log_probs.shape
    if not 0 <= blank < n_classes:
        raise AlignmentError(f"blank {blank} is not a class of log_probs (C = {n_classes})")
    if input_lengths is not None and int(torch.as_tensor(input_lengths).max()) != n_frames:
        raise AlignmentError(f"input_lengths {torch.as_tensor(input_lengths).tolist()} != T = {n_frames}")
    if target_lengths is not None and int(torch.as_tensor(target_lengths).max()) != targets.numel():
        raise AlignmentError(f"target_lengths {torch.as_tensor(target_lengths).tolist()} != L = {targets.numel()}")
    tgt = targets.to(torch.int64).cpu()
    if tgt.numel():
        if bool((tgt == blank).any()):
            where = int(torch.nonzero(tgt == blank)[0])
            raise AlignmentError(f"targets contain the blank id {blank} (at position {where})")
        if int(tgt.min()) < 0 or int(tgt.max()) >= n_classes:
            raise AlignmentError(f"targets must be ids in [0, {n_classes}), got values in "
                                 f"[{int(tgt.min())}, {int(tgt.max())}]")
    repeats = int((tgt[1:] == tgt[:-1]).sum()) if tgt.numel() > 1 else 0
    if n_frames < tgt.numel() + repeats or n_frames == 0:
        raise AlignmentError(f"transcript too long for the audio: its {tgt.numel()} units need at least "
                             f"{tgt.numel() + repeats} frames of output ({repeats} repeated units need a blank "
                             f"between them), the audio gives {n_frames}")
    if bool(torch.isnan(log_probs).any()):
        raise AlignmentError("log_probs contain NaN")
    return log_probs, tgt


# ---------------------------------------------------------------------------------------------------------
# The trellis over extended states: state s is the blank for even s, targets[s // 2] for odd s.
# Every state array is stored with 2 leading pad entries (-inf): index s + 2 holds state s.


def _band(t: int, n_frames: int, n_states: int) -> tuple[int, int]:
    """[lo, hi) of the states worth computing at frame t: reachable from the start, and able to reach one of
    the two final states (S-1, S-2) in the frames left (a path moves up at most 2 states per frame)."""
    lo = max(0, n_states - 2 - 2 * (n_frames - 1 - t))
    hi = min(n_states, 2 * t + 2)
    return lo, hi


def _extended(tgt: np.ndarray, blank: int) -> tuple[np.ndarray, np.ndarray]:
    """Label id of every state, and the additive bias of its skip move (0 where a label may follow the
    previous label directly, -inf for blanks, the first label and repeated labels)."""
    n_states = 2 * tgt.size + 1
    ext = np.full(n_states, blank, dtype=np.int64)
    ext[1::2] = tgt
    skip = np.full(n_states, -np.inf, dtype=np.float32)
    if tgt.size > 1:
        skip[3::2] = np.where(tgt[1:] != tgt[:-1], 0.0, -np.inf)
    return ext, skip


def checkpoint_interval(n_frames: int) -> int:
    return max(16, math.isqrt(n_frames))


def viterbi_path(lp: torch.Tensor, tgt: torch.Tensor, blank: int, backend: str = "auto") -> np.ndarray:
    """The best path's state label per frame (int64 numpy [T]). lp [T, C] checked, tgt [L] int64 on CPU."""
    n_frames = lp.shape[0]
    acc = torch.float64 if lp.dtype == torch.float64 else torch.float32
    ext, skip = _extended(tgt.numpy(), blank)
    n_states = ext.size
    if backend == "auto":
        backend = "numba" if numba is not None and lp.device.type == "cpu" else "torch"
    if backend == "numba":
        if numba is None:
            raise RuntimeError("backend 'numba' needs numba (pip install numba)")
        kernels = NumbaKernels(lp.to(acc).contiguous().numpy(), ext, skip.astype(acc_np(acc)))
    elif backend == "torch":
        kernels = TorchKernels(lp.to(acc), ext, skip)
    else:
        raise ValueError(f"unknown backend {backend!r} (auto, numba or torch)")

    every = checkpoint_interval(n_frames)
    checkpoints, last = kernels.forward(every)  # {frame: (lo, scores of states lo..)} and the last frame's row
    if n_states == 1:
        state = 0
    else:  # as torchaudio: the trailing blank only when strictly better than the last label
        state = n_states - 1 if last[n_states - 1] > last[n_states - 2] else n_states - 2
    states = np.empty(n_frames, dtype=np.int64)
    states[n_frames - 1] = state
    end = n_frames - 1
    while end > 0:
        start = ((end - 1) // every) * every
        lo, row = checkpoints[start]
        states[start:end + 1] = kernels.segment(start, end, state, lo, row)
        state = int(states[start])
        end = start
    return ext[states]


def acc_np(acc: torch.dtype):
    return np.float64 if acc == torch.float64 else np.float32


def _start_window(start: int, end: int, state: int, lo: int, row: np.ndarray, dtype) -> tuple[int, np.ndarray]:
    """Scores at frame `start` of the states a path at `state` at frame `end` can come from, -inf outside the
    checkpoint's band. Returns (first state of the window, window)."""
    base = max(0, state - 2 * (end - start))
    window = np.full(state + 1 - base, -np.inf, dtype=dtype)
    a, b = max(base, lo), min(state + 1, lo + row.size)
    if b > a:
        window[a - base:b - base] = row[a - lo:b - lo]
    return base, window


# ---------------------------------------------------------------------------------------------------------
# torch backend: per-frame vector operations over the band (CPU or CUDA)


class TorchKernels:
    def __init__(self, lp: torch.Tensor, ext: np.ndarray, skip: np.ndarray):
        self.lp, self.device, self.dtype = lp, lp.device, lp.dtype
        self.ext = torch.from_numpy(ext).to(self.device)
        self.skip = torch.from_numpy(skip).to(self.device, self.dtype)

    def forward(self, every: int):
        n_frames, n_states = self.lp.shape[0], self.ext.numel()
        neg = -math.inf
        rows = [torch.full((n_states + 4,), neg, dtype=self.dtype, device=self.device) for _ in range(2)]
        prev = rows[0]
        lo, hi = _band(0, n_frames, n_states)
        prev[2 + lo:2 + hi] = self.lp[0].index_select(0, self.ext[lo:hi])
        checkpoints = {0: (lo, prev[2 + lo:2 + hi].cpu().numpy().copy())}
        for t in range(1, n_frames):
            cur = rows[t % 2]
            lo, hi = _band(t, n_frames, n_states)
            best = torch.maximum(prev[2 + lo:2 + hi], prev[1 + lo:1 + hi])
            torch.maximum(best, prev[lo:hi] + self.skip[lo:hi], out=best)
            cur[2 + lo:2 + hi] = best + self.lp[t].index_select(0, self.ext[lo:hi])
            cur[lo:2 + lo] = neg  # stale entries the next frame may read
            cur[2 + hi:4 + hi] = neg
            if t % every == 0:
                checkpoints[t] = (lo, cur[2 + lo:2 + hi].cpu().numpy().copy())
            prev = cur
        return checkpoints, prev[2:2 + n_states].cpu().numpy()

    def segment(self, start: int, end: int, state: int, lo: int, row: np.ndarray) -> np.ndarray:
        """States of the best path at frames start..end, given its state at `end`."""
        base, window = _start_window(start, end, state, lo, row, row.dtype)
        width = window.size
        prev = torch.full((width + 2,), -math.inf, dtype=self.dtype, device=self.device)
        prev[2:] = torch.from_numpy(window).to(self.device)
        ext, skip = self.ext[base:state + 1], self.skip[base:state + 1]
        choices = torch.zeros((end - start, width), dtype=torch.int8, device=self.device)
        for t in range(start + 1, end + 1):
            stay, step, jump = prev[2:], prev[1:-1], prev[:-2] + skip
            best = torch.maximum(stay, step)
            choice = (step > stay).to(torch.int8)
            choice = torch.where(jump > best, 2, choice).to(torch.int8)
            cur = torch.full_like(prev, -math.inf)
            cur[2:] = torch.maximum(best, jump) + self.lp[t].index_select(0, ext)
            choices[t - start - 1] = choice
            prev = cur
        return _backtrack(choices.cpu().numpy(), start, end, state, base)


def _backtrack(choices: np.ndarray, start: int, end: int, state: int, base: int) -> np.ndarray:
    states = np.empty(end - start + 1, dtype=np.int64)
    states[-1] = state
    for t in range(end, start, -1):
        state -= int(choices[t - start - 1, state - base])
        states[t - start - 1] = state
    return states


# ---------------------------------------------------------------------------------------------------------
# numba backend: the same recurrences as compiled loops (CPU)


class NumbaKernels:
    def __init__(self, lp: np.ndarray, ext: np.ndarray, skip: np.ndarray):
        self.lp, self.ext, self.skip = lp, ext, skip

    def forward(self, every: int):
        n_frames, n_states = self.lp.shape[0], self.ext.size
        frames = list(range(0, n_frames, every))
        bands = np.array([_band(t, n_frames, n_states) for t in frames], dtype=np.int64).reshape(-1, 2)
        offsets = np.zeros(len(frames) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum(bands[:, 1] - bands[:, 0])
        store = np.empty(int(offsets[-1]), dtype=self.lp.dtype)
        labels = np.ascontiguousarray(self.ext[1::2])
        last = _nb_forward(self.lp, labels, int(self.ext[0]), np.ascontiguousarray(self.skip[1::2]), every, store,
                           offsets)
        checkpoints = {t: (int(bands[i, 0]), store[offsets[i]:offsets[i + 1]]) for i, t in enumerate(frames)}
        return checkpoints, last

    def segment(self, start: int, end: int, state: int, lo: int, row: np.ndarray) -> np.ndarray:
        base, window = _start_window(start, end, state, lo, row, self.lp.dtype)
        return _nb_segment(self.lp, self.ext, self.skip, start, end, state, base, window)


def _forward_loop(lp, tgt, blank, skip, every, store, offsets):
    """The forward pass over the band, blanks and labels in separate arrays (so that only the labels need a
    gather of their emission) and branch-free inner loops over slices (so that they vectorise). Values are
    the interleaved recurrence's, bit for bit: max is exact and the additions are the same."""
    n_frames, n_labels = lp.shape[0], tgt.size
    n_states = 2 * n_labels + 1
    neg = -np.inf
    # blanks[k]: blank state 2k; labels[k + 1]: label state 2k+1, labels[0] stays -inf (no label before 0)
    blanks = np.full((2, n_labels + 1), neg, dtype=lp.dtype)
    labels = np.full((2, n_labels + 1), neg, dtype=lp.dtype)
    emit = np.empty(n_labels, dtype=lp.dtype)
    k = 0
    for t in range(n_frames):
        lo = max(0, n_states - 2 - 2 * (n_frames - 1 - t))
        hi = min(n_states, 2 * t + 2)
        b_lo, b_hi = (lo + 1) // 2, (hi + 1) // 2  # blanks k with lo <= 2k < hi
        l_lo, l_hi = lo // 2, hi // 2  # labels k with lo <= 2k+1 < hi
        row = lp[t]
        new_b, new_l = blanks[t % 2], labels[t % 2]
        if t == 0:
            if b_hi > b_lo:
                new_b[0] = row[blank]
            if l_hi > l_lo:
                new_l[1] = row[tgt[0]]
        else:
            old_b, old_l = blanks[(t - 1) % 2], labels[(t - 1) % 2]
            n = l_hi - l_lo
            e, tk = emit[l_lo:l_hi], tgt[l_lo:l_hi]
            for i in range(n):
                e[i] = row[tk[i]]
            stay, step, jump = old_l[l_lo + 1:l_hi + 1], old_b[l_lo:l_hi], old_l[l_lo:l_hi]
            sk, out = skip[l_lo:l_hi], new_l[l_lo + 1:l_hi + 1]
            for i in range(n):
                out[i] = max(max(stay[i], step[i]), jump[i] + sk[i]) + e[i]
            n = b_hi - b_lo
            stay, step, out = old_b[b_lo:b_hi], old_l[b_lo:b_hi], new_b[b_lo:b_hi]
            e0 = row[blank]
            for i in range(n):
                out[i] = max(stay[i], step[i]) + e0
            # entries just outside the band, which the next frame may read, must not hold stale values
            new_l[l_lo] = neg  # (index 0 is the pad, -inf anyway)
            if l_hi + 1 <= n_labels:
                new_l[l_hi + 1] = neg
            if b_lo > 0:
                new_b[b_lo - 1] = neg
        if b_hi <= n_labels:
            new_b[b_hi] = neg
        if t % every == 0:
            o = offsets[k]
            for s in range(lo, hi):
                store[o + s - lo] = new_b[s // 2] if s % 2 == 0 else new_l[s // 2 + 1]
            k += 1
    last = np.full(n_states, neg, dtype=lp.dtype)
    final_b, final_l = blanks[(n_frames - 1) % 2], labels[(n_frames - 1) % 2]
    last[n_states - 1] = final_b[n_labels]
    if n_labels > 0:
        last[n_states - 2] = final_l[n_labels]
    return last


def _segment_loop(lp, ext, skip, start, end, state, base, window):
    width = window.size
    neg = -np.inf
    prev = np.full(width + 2, neg, dtype=lp.dtype)
    cur = np.full(width + 2, neg, dtype=lp.dtype)
    prev[2:] = window
    choices = np.zeros((end - start, width), dtype=np.int8)
    for t in range(start + 1, end + 1):
        for i in range(width):
            s = base + i
            best = prev[i + 2]
            choice = 0
            step = prev[i + 1]
            if step > best:
                best = step
                choice = 1
            jump = prev[i] + skip[s]
            if jump > best:
                best = jump
                choice = 2
            cur[i + 2] = best + lp[t, ext[s]]
            choices[t - start - 1, i] = choice
        prev, cur = cur, prev
    states = np.empty(end - start + 1, dtype=np.int64)
    states[end - start] = state
    for t in range(end, start, -1):
        state -= choices[t - start - 1, state - base]
        states[t - start - 1] = state
    return states


if numba is not None:
    _nb_forward = numba.njit(cache=True, nogil=True)(_forward_loop)
    _nb_segment = numba.njit(cache=True, nogil=True)(_segment_loop)
