"""The training engine behind `mms train-adapter` and `mms train`: CTC on the canonical wav2vec2 model.

One loop for both modes:
  adapter  the base model is frozen; only the per-layer MMS adapters (`adapter_layer.*`) and a new output layer
           for one language, its vocabulary built from the training transcripts, are trained (the MMS recipe);
  full     every weight is trained (optionally not the conv feature encoder); one output layer per language
           of the manifests, and optionally a language-identification head on the same encoder.

AdamW with linear warm-up then linear decay, gradient accumulation, bf16 autocast (CPU too), dev CER/WER after
every epoch (the best epoch is exported), and a resumable state in the output directory: the trainable
weights, optimizer, position (epoch, batch, step), RNG states. Batch order depends only on (seed, epoch), and the
model has no dropout, so an interrupted run that resumes ends where an uninterrupted one does.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import threading
import time
import unicodedata
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mms.audio import SAMPLE_RATE
from mms.batching import prefetch, release_memory
from mms.checkpoints import Checkpoint
from mms.decoding.ctc import greedy_decode
from mms.models.wav2vec2 import Wav2Vec2Config, Wav2Vec2Model
from mms.runner import ModelRunner
from mms.text.vocab import Vocabulary
from mms.train.data import (READ_AHEAD, SPECIALS, Example, TrainError, build_vocabulary, check_language_code, collate,
                             encode, epoch_batches, read_examples)
from mms.train.export import (check_train_set, lock_out_folder, make_out_folder, read_state, restore_rng, rng_state,
                              train_set_identity, write_log, write_state)

log = logging.getLogger("mms.train")
STATE_FILE = "train_state.pt"
LOG_FILE = "train_log.jsonl"
REPORT_SECONDS = 60.0  # between progress lines in the log when no progress bar shows


@dataclass
class TrainOptions:
    mode: str = "adapter"  # "adapter" or "full"
    model: str | None = None  # base model: path or published name (see mms.hub)
    init_config: Wav2Vec2Config | None = None  # full mode without a base model: random weights of this shape
    lang: str | None = None  # language of manifest lines without a `lang` column
    train: list[str] = field(default_factory=list)
    dev: list[str] = field(default_factory=list)
    out: str = "train-out"
    epochs: int = 20
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    batch_seconds: float = 60.0  # padded audio per micro-batch
    accumulate: int = 1  # micro-batches per optimizer step
    precision: str = "fp32"  # "fp32" or "bf16" (autocast)
    device: str = "auto"
    seed: int = 0
    max_seconds: float | None = 30.0  # longer training utterances are skipped (None: none is)
    freeze_feature_encoder: bool = False  # full mode
    lid: bool = False  # full mode: also train a language-identification head
    lid_weight: float = 0.5
    lid_proj_size: int = 64
    delay_penalty: float = 0.0  # > 0: delay-penalised CTC (earlier emissions, better word times); see ctc_loss
    save_every: int = 50  # optimizer steps between resumable states (and at every epoch end)
    max_steps: int | None = None  # stop (resumably) after this many optimizer steps in total
    # stop after this many seconds of training in total (resumes included); the learning rate then decays to zero
    # by that time, and the epoch in progress ends there (dev pass, export if best), so the time is not wasted
    time_limit: float | None = None
    progress: bool = True
    threads: int | None = None  # torch CPU threads (None: torch's default); 1 is fastest on a busy machine

    def check(self) -> None:
        if self.mode not in ("adapter", "full"):
            raise TrainError(f"unknown mode {self.mode!r} (adapter or full)")
        if self.precision not in ("fp32", "bf16"):
            raise TrainError(f"--precision {self.precision}: use fp32 or bf16")
        if not self.train:
            raise TrainError("no training manifest (give --train)")
        if self.model is None and self.init_config is None:
            raise TrainError("no base model (give --model)")
        if self.mode == "adapter" and not self.lang:
            raise TrainError("train-adapter needs --lang, the code of the new language")
        if self.epochs < 1 or self.accumulate < 1 or self.batch_seconds <= 0:
            raise TrainError("--epochs, --accumulate and --batch-seconds must be positive")
        if self.time_limit is not None and not self.time_limit > 0:
            raise TrainError(f"time_limit {self.time_limit} s: must be positive")
        if not self.delay_penalty >= 0:
            raise TrainError(f"--delay-penalty {self.delay_penalty}: must be 0 (plain CTC) or positive")
        for name in ("lr", "weight_decay", "warmup_steps", "save_every", "max_steps", "max_seconds", "threads"):
            value = getattr(self, name)
            low = 0 if name in ("weight_decay", "warmup_steps") else 1e-300
            if value is not None and not (math.isfinite(value) and value >= low):
                raise TrainError(f"--{name.replace('_', '-')} {value}: must be {'0 or more' if low == 0 else 'positive'}")
        if self.lang is not None:
            check_language_code(self.lang, "--lang")


class TrainModel(nn.Module):
    """The canonical encoder with one CTC output layer per language and an optional LID head."""

    def __init__(self, encoder: Wav2Vec2Model, heads: dict[str, nn.Linear], lid_labels: list[str] | None = None,
                 lid_proj_size: int = 64):
        super().__init__()
        self.wav2vec2 = encoder
        self.heads = nn.ModuleDict(heads)
        self.lid_labels = lid_labels
        if lid_labels:
            self.projector = nn.Linear(encoder.cfg.hidden_size, lid_proj_size)
            self.classifier = nn.Linear(lid_proj_size, len(lid_labels))

    def forward(self, waves: torch.Tensor, lengths: torch.Tensor):
        """-> (hidden [B, T, D], frame lengths [B], LID logits [B, L] float32 or None)."""
        hidden, frame_mask = self.wav2vec2(waves, lengths)
        if frame_mask is None:
            frame_mask = torch.ones(hidden.shape[:2], dtype=torch.bool, device=hidden.device)
        lid = None
        if self.lid_labels:
            h = self.projector(hidden).masked_fill(~frame_mask[..., None], 0.0)
            pooled = h.sum(1) / frame_mask.sum(1, keepdim=True).to(h.dtype)
            lid = self.classifier(pooled).float()
        return hidden, frame_mask.sum(-1), lid

    def log_probs(self, hidden: torch.Tensor, lang: str) -> torch.Tensor:
        """CTC log-probabilities [B, T, V] in float32 from the language's output layer."""
        return self.heads[lang](hidden).float().log_softmax(-1)


class LanguageView(nn.Module):
    """The model being trained as ModelRunner runs a CTC model: the encoder and the output layer of `lang`,
    (waves, lengths) -> (logits [B, T, V], frame counts). The LID head's logits of the batch just run are kept in
    `lid` (None without a LID head), so that the dev pass runs the encoder once for both."""

    def __init__(self, model: TrainModel):
        super().__init__()
        self.model = model
        self.lang: str | None = None
        self.lid: torch.Tensor | None = None

    def forward(self, waves: torch.Tensor, lengths: torch.Tensor):
        hidden, frame_lengths, self.lid = self.model(waves, lengths)
        return self.model.heads[self.lang](hidden), frame_lengths


def new_head(hidden_size: int, vocab_size: int, generator: torch.Generator) -> nn.Linear:
    head = nn.Linear(hidden_size, vocab_size)
    with torch.no_grad():  # transformers' initialisation of a new lm_head: N(0, 0.02), zero bias
        head.weight.normal_(0.0, 0.02, generator=generator)
        head.bias.zero_()
    return head


def keep_base_heads(model: TrainModel, base, vocabs: dict[str, Vocabulary], base_heads: dict) -> None:
    """Full training from a base model continues what it learnt: a language's output layer starts from the base's
    rows (`base_heads`, base_head's per language) for every symbol both alphabets share (new symbols keep their
    fresh rows), and the LID head, where the base directory has one (<base>/lid), from its rows for the languages
    both know."""
    kept = []
    for lang, vocab in vocabs.items():
        found = base_heads.get(lang)
        if found is None:
            continue
        weight, bias, base_vocab = found
        head = model.heads[lang]
        if weight.shape[1] != head.in_features:
            continue
        index = {token: i for i, token in enumerate(base_vocab.tokens)}
        rows = [(i, index[token]) for i, token in enumerate(vocab.tokens) if token in index]
        copy_rows(head, weight, bias, rows)
        kept.append(f"{lang} ({len(rows)} of {len(vocab.tokens)} symbols)")
    lid_dir = Path(base.path) / "lid"
    if model.lid_labels and (lid_dir / "config.json").exists():
        from mms.checkpoints import load_checkpoint

        lid = load_checkpoint(lid_dir)
        state = lid.state_dict
        if lid.labels and state["projector.weight"].shape == model.projector.weight.shape:
            with torch.no_grad():
                model.projector.weight.copy_(state["projector.weight"].float())
                model.projector.bias.copy_(state["projector.bias"].float())
            index = {label: i for i, label in enumerate(lid.labels)}
            rows = [(i, index[label]) for i, label in enumerate(model.lid_labels) if label in index]
            copy_rows(model.classifier, state["classifier.weight"].float(), state["classifier.bias"].float(), rows)
            kept.append(f"LID ({len(rows)} of {len(model.lid_labels)} languages)")
    if kept:
        log.info(f"from {base.path}: output layers of {', '.join(kept)}")


def base_languages(base) -> list[str]:
    if base is None:
        return []
    return list(base.adapters.languages) if base.adapters is not None else [base.lang] if base.lang else []


def with_base_symbols(found, lang: str, vocab: Vocabulary) -> Vocabulary:
    """The alphabet to train for a language the base model already transcribes (`found`: base_head's answer): the
    base's symbols, in its order, and then the training text's new ones. Built from the training text alone, a
    fine-tuning corpus without a j or a z would have taken those letters out of the model."""
    if found is None or found[2].split_pieces or found[2].romanized:  # pieces or uroman: not extended by letters
        return vocab
    base_vocab = found[2]
    known = set(base_vocab.tokens) | set(SPECIALS) | {base_vocab.word_delimiter}
    new = [token for token in vocab.tokens if token not in known]
    if new:
        log.info(f"{lang}: {len(new)} symbols the base model lacks: {' '.join(new)}")
    return Vocabulary(tokens=list(base_vocab.tokens) + new, blank=base_vocab.blank,
                      word_delimiter=base_vocab.word_delimiter)


def base_head(base, lang: str):
    """(weight, bias, vocabulary) of the base model's output layer for `lang`, or None."""
    if base.adapters is not None and lang in base.adapters.languages:
        state, vocab = base.adapters.load(lang)
    elif base.lang == lang and base.vocab is not None:
        state, vocab = base.state_dict, base.vocab
    else:
        return None
    if "lm_head.weight" not in state:
        return None
    return state["lm_head.weight"].float(), state["lm_head.bias"].float(), vocab


def copy_rows(layer: nn.Linear, weight: torch.Tensor, bias: torch.Tensor, rows: list[tuple[int, int]]) -> None:
    if not rows:
        return
    new, old = map(list, zip(*rows))
    with torch.no_grad():
        layer.weight[new] = weight[old]
        layer.bias[new] = bias[old]


class Reporter:
    """A progress line in the log every REPORT_SECONDS when no progress bar shows (a run logged to a file: an epoch
    of a large corpus takes an hour, and its only other line comes at its end)."""

    def __init__(self, active: bool):
        self.active, self.last, self.seen = active, time.monotonic(), 0

    def __call__(self, line) -> None:
        if self.active and time.monotonic() - self.last >= REPORT_SECONDS:
            log.info(line())
            self.last = time.monotonic()

    def mean(self, values: list[float]) -> float:
        """The mean of the values added since the last call (all of them at first)."""
        recent, self.seen = values[self.seen:] or values[-1:], len(values)
        return sum(recent) / max(len(recent), 1)


def nothing_left(state_path: Path, epoch: int, step: int, limits: str) -> str:
    return (f"nothing to train: {state_path.parent} holds a run that has reached its limit (epoch {epoch}, step "
            f"{step}; {state_path.name}); raise {limits} to train it on, or give another --out to start afresh")


class StopRequest:
    """Ctrl-C while training: the first one asks the loop to stop after the step under way, with its state saved,
    so that rerunning the command continues from that step (not from the last `--save-every` save, up to 1,000
    steps back); a second one interrupts at once. Only where Python's own Ctrl-C handler is in place, in the main
    thread."""

    def __init__(self):
        self.asked, self._previous = False, None

    def __enter__(self) -> "StopRequest":
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._ask)
        return self

    def _ask(self, signum, frame) -> None:
        self.asked = True
        signal.signal(signal.SIGINT, self._previous)
        log.warning("stopping after this step (its state saved); Ctrl-C again to stop at once")

    def __exit__(self, *exc) -> None:
        if self._previous is not None and signal.getsignal(signal.SIGINT) == self._ask:
            signal.signal(signal.SIGINT, self._previous)

    def stop_here(self, step: int, save, state_path) -> None:
        """At a step's end: if asked, save (save()) and raise KeyboardInterrupt."""
        if self.asked:
            save()
            log.warning(f"interrupted at step {step}: the state is saved in {state_path}; run the same command "
                        "again to continue")
            raise KeyboardInterrupt


def trainable_names(model: TrainModel, options: TrainOptions) -> list[str]:
    names = []
    for name, _ in model.named_parameters():
        if options.mode == "adapter":
            keep = ".adapter_layer." in name or name.startswith("heads.")
        else:
            keep = not (options.freeze_feature_encoder and name.startswith("wav2vec2.feature_extractor."))
        if keep:
            names.append(name)
    return names


def ctc_loss(log_probs: torch.Tensor, targets: torch.Tensor, frame_lengths: torch.Tensor,
             target_lengths: torch.Tensor, delay_penalty: float = 0.0) -> torch.Tensor:
    """CTC loss of (batch, frames, vocab) log-probabilities, each utterance's loss divided by its target length,
    mean over the batch (F.ctc_loss's "mean").

    delay_penalty > 0: delay-penalised CTC: every non-blank score at frame t gets -delay_penalty * t, so alignments
    that emit earlier weigh more and the model learns to emit letters at their onset instead of late (a CTC model is
    free to emit anywhere; small models trained from scratch lag by 100 ms and more). Unlike k2's transducer delay
    penalty, not centred on the middle frame: in CTC a token may last several frames, and a positive bonus in the
    first half would reward spreading word delimiters over silences. The scores are then no longer normalised, and
    F.ctc_loss's gradient is only right for log_softmax outputs, so the loss is computed on their log_softmax and
    corrected by the per-frame normalisers (every path crosses each frame once): loss(s) = loss(log_softmax(s)) -
    sum_t Z_t."""
    log_probs = log_probs.float()
    if delay_penalty > 0:
        frames = torch.arange(log_probs.shape[1], device=log_probs.device)
        bonus = -delay_penalty * frames[None, :].float()
        non_blank = torch.ones(log_probs.shape[-1], device=log_probs.device, dtype=torch.bool)
        non_blank[0] = False
        scores = log_probs + torch.where(non_blank, bonus[..., None], 0.0)
        normalizers = torch.logsumexp(scores, dim=-1)  # (batch, frames)
        valid = frames[None, :] < frame_lengths.to(log_probs.device)[:, None]
        log_probs = scores - normalizers[..., None]
    # an utterance with no alignment (fewer frames than letters + repeats) adds nothing: zero_infinity's rule
    losses = F.ctc_loss(log_probs.transpose(0, 1), targets, frame_lengths, target_lengths, blank=0, reduction="none",
                        zero_infinity=True)
    if delay_penalty > 0:
        has_path = alignable(targets, target_lengths, frame_lengths).to(losses.device)
        losses = losses - (normalizers * valid).sum(1) * has_path
    return (losses / target_lengths.clamp(min=1)).mean()


def alignable(targets: torch.Tensor, target_lengths: torch.Tensor, frame_lengths: torch.Tensor) -> torch.Tensor:
    """Per utterance: has a CTC alignment, i.e. frames >= letters + repeated neighbours (a blank between)."""
    needed, at = [], 0
    for n in target_lengths.tolist():
        letters = targets[at:at + n]
        needed.append(n + int((letters[1:] == letters[:-1]).sum()))
        at += n
    return frame_lengths.cpu() >= torch.tensor(needed)


def lr_factor(step: int, warmup: int, total: int, elapsed: float = 0.0, time_limit: float | None = None) -> float:
    """Linear warm-up to the peak, then linear decay to zero at the last step (transformers' linear schedule), or
    at `time_limit` seconds of training if that comes first."""
    if step < warmup:
        return (step + 1) / warmup
    factor = (total - step) / max(1, total - warmup)
    if time_limit:
        factor = min(factor, 1.0 - elapsed / time_limit)
    return max(0.0, factor)


# ---------------------------------------------------------------------------------------------------------


class Trainer:
    def __init__(self, options: TrainOptions):
        options.check()
        self.options = options
        self.out = make_out_folder(options.out, create=False, hint=" (to add an adapter to a model, copy it in as "
                                                                  "docs/train.md shows)")
        from mms.device import resolve_device

        self.device = resolve_device(options.device)
        if options.threads:
            torch.set_num_threads(options.threads)
        torch.manual_seed(options.seed)
        self.base = self._load_base()
        cfg = self.base_config
        normalize = self.base.normalize if self.base is not None else True
        eps = self.base.normalize_eps if self.base is not None else 1e-7
        self.train_set, problems = read_examples(options.train, options.lang, normalize, eps, options.max_seconds)
        self.dev_set, dev_problems = read_examples(options.dev, options.lang, normalize, eps, None)
        for problem in problems + dev_problems:
            log.warning(problem)
        if not self.train_set:
            raise TrainError(f"{', '.join(options.train)}: no usable training utterances")
        self.languages = sorted({e.lang for e in self.train_set})
        if options.mode == "adapter" and self.languages != [options.lang]:
            raise TrainError(f"train-adapter trains one language ({options.lang}); the manifests hold "
                             f"{', '.join(self.languages)}")
        self._check_base_languages()
        self.vocabs: dict[str, Vocabulary] = {
            lang: build_vocabulary([e.text for e in self.train_set if e.lang == lang]) for lang in self.languages}
        for lang, vocab in self.vocabs.items():  # marks MMS normalisation keeps (its list has no dashes: — –)
            marks = [t for t in vocab.tokens[len(SPECIALS):] if unicodedata.category(t)[0] in "PS" and t not in "-'"]
            if marks:
                log.warning(f"{lang}: the transcripts keep {' '.join(marks)} after MMS normalisation (not on its "
                            f"punctuation list): the output layer learns them as letters; remove them from the "
                            f"transcripts if they are not spoken")
        # the base's output layers of these languages, read once: their alphabets here, their rows below
        base_heads = ({lang: base_head(self.base, lang) for lang in self.languages}
                      if self.base is not None and options.mode == "full" else {})
        if base_heads:
            self.vocabs = {lang: with_base_symbols(base_heads[lang], lang, vocab)
                           for lang, vocab in self.vocabs.items()}
            if self.base.language_free and self.base.vocab is not None:
                # (an Omnilingual ASR or zero-shot base: its one output layer of pieces or uroman letters is left)
                log.warning(f"the base model has one output layer for every language ({len(self.base.vocab)} "
                            f"symbols), not per language: {', '.join(self.languages)} get new character output "
                            f"layers, trained from scratch")
        for example in self.train_set + self.dev_set:
            if example.lang in self.vocabs:
                example.labels = encode(example.text, self.vocabs[example.lang])
        symbols = {lang: set(vocab.tokens) for lang, vocab in self.vocabs.items()}
        unseen = sorted({c for e in self.dev_set if e.lang in symbols for c in e.text
                         if not c.isspace() and c not in symbols[e.lang]})
        if unseen:  # (train-tts says the same of its voices)
            log.warning(f"dev transcripts hold characters no training transcript has ({' '.join(unseen[:12])}): the "
                        f"model cannot write them, and the dev CER counts each as an error")
        too_short = [e for e in self.train_set if self.frames(e) < e.labels.size]
        if too_short:
            log.warning(f"{len(too_short)} training utterances are too short for their transcripts, skipped "
                        f"(e.g. {too_short[0].audio})")
            self.train_set = [e for e in self.train_set if self.frames(e) >= e.labels.size]
            if not self.train_set:
                raise TrainError(f"{', '.join(options.train)}: no usable training utterances (every one read is too "
                                 f"short for its transcript; the others were skipped, as said above)")
        other = sorted({e.lang for e in self.dev_set} - set(self.vocabs))
        if other:
            log.warning(f"dev utterances in {', '.join(other)} left out: no language of the training data")
        self.dev_set = [e for e in self.dev_set if e.lang in self.vocabs]
        silent = [e for e in self.dev_set if self.frames(e) < 1]
        if silent:  # shorter than the feature encoder's window: no frame to decode, scored as an empty transcript
            log.warning(f"{len(silent)} dev utterances are too short for the model (no output frame), scored as "
                        f"empty (e.g. {silent[0].audio})")

        generator = torch.Generator().manual_seed(options.seed)
        encoder = self._encoder()
        heads = {lang: new_head(cfg.hidden_size, len(v), generator) for lang, v in self.vocabs.items()}
        lid = self.languages if options.lid and options.mode == "full" else None
        model = TrainModel(encoder, heads, lid, options.lid_proj_size)
        if self.base is not None and options.mode == "full":
            keep_base_heads(model, self.base, self.vocabs, base_heads)
        self.model = model.to(self.device)
        # the dev pass runs the model being trained as inference runs a model (float32 inputs; bf16 by autocast)
        described = Checkpoint("train", str(self.out), cfg, {}, normalize=normalize, normalize_eps=eps)
        self.dev_view = LanguageView(self.model)
        self.runner = ModelRunner(described, self.device, torch.float32, model=self.dev_view)
        self.trainable = trainable_names(self.model, options)
        params = dict(self.model.named_parameters())
        for name, p in params.items():
            p.requires_grad_(name in self.trainable)
        decay = [params[n] for n in self.trainable if params[n].dim() >= 2]
        no_decay = [params[n] for n in self.trainable if params[n].dim() < 2]
        self.optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": options.weight_decay},
                                            {"params": no_decay, "weight_decay": 0.0}], lr=options.lr)
        # batches mix languages when a LID head trains (one-language batches would swing its bias back and forth)
        self.mixed = bool(lid)
        batch_samples = int(options.batch_seconds * SAMPLE_RATE)
        self.batch_samples = batch_samples
        n_batches = len(epoch_batches(self.train_set, batch_samples, options.seed, 0, self.mixed))
        self.steps_per_epoch = math.ceil(n_batches / options.accumulate)
        self.total_steps = self.steps_per_epoch * options.epochs
        steps = min(self.total_steps, options.max_steps or self.total_steps)
        if options.warmup_steps > steps:  # (the rate never reaches --lr: a short run learnt nothing, silently)
            log.warning(f"--warmup-steps {options.warmup_steps} is more than the run's {steps} steps: the learning "
                        f"rate never reaches --lr {options.lr:g}; give --warmup-steps {steps // 10} or so")
        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0
        self.best: float | None = None
        self.history: list[dict] = []
        self.audio_seconds, self.train_seconds = 0.0, 0.0
        self.epoch_losses: list[float] = []  # this epoch's batch losses so far, for its logged mean
        make_out_folder(self.out)

    # -- setup ---------------------------------------------------------------------------------------------
    def _load_base(self):
        if self.options.model is None:
            self.base_config = self.options.init_config
            return None
        from mms.checkpoints import load_checkpoint
        from mms.hub import resolve_model

        try:
            checkpoint = load_checkpoint(resolve_model(self.options.model, task="asr", lang=[]))
        except ValueError as e:
            raise TrainError(str(e)) from None
        self.base_config = checkpoint.config
        if self.options.mode == "adapter" and not checkpoint.config.adapter_attn_dim:
            raise TrainError(f"{checkpoint.path}: this model has no adapter layers (adapter_attn_dim); "
                             f"train all weights with `mms train` instead")
        if checkpoint.config.feat_extract_norm == "group":
            log.warning("a GroupNorm feature encoder sees padding: batches mix lengths, results may suffer")
        return checkpoint

    def _encoder(self) -> Wav2Vec2Model:
        cfg = Wav2Vec2Config.from_dict(self.base_config.to_dict())
        cfg.vocab_size, cfg.num_labels, cfg.blank_weight = None, None, 0.0
        encoder = Wav2Vec2Model(cfg)
        if self.base is not None:
            prefix = "wav2vec2."
            state = {k[len(prefix):]: v.float() for k, v in self.base.state_dict.items() if k.startswith(prefix)}
            encoder.load_state_dict(state, strict=True)
        return encoder

    def base_identity(self) -> str:
        """What the run starts from, as a resumed run must find it again: the base model's path, or the
        architecture's digest (--config)."""
        if self.base is not None:
            return os.path.realpath(self.base.path)
        import hashlib

        config = json.dumps(self.base_config.to_dict(), sort_keys=True, default=str)
        return f"a new model (architecture {hashlib.sha256(config.encode()).hexdigest()[:12]})"

    def _check_base_languages(self) -> None:
        """A language the base model has under its ISO 639-3 code, asked for by another form of it (en, eng_Latn
        for eng), is refused: it would start a new output layer beside the one the user meant to continue. In full
        training, the base's languages left out of the training data are said to be dropped from the export."""
        from mms.hub.languages import parse, script_code, to_iso639_3

        def same_language(code: str, lang: str) -> bool:  # another spelling of the code, not a new script or dialect
            scripts = {script_code(code), script_code(lang)} - {None}  # (an unnamed script: the usual one)
            return (to_iso639_3(code) == to_iso639_3(lang) and len(scripts) < 2
                    and parse(code).dialect == parse(lang).dialect)

        known = base_languages(self.base)
        for lang in self.languages:
            if lang in known:
                continue
            iso = to_iso639_3(lang)
            same = [code for code in known if iso is not None and same_language(code, lang)]
            if same:
                raise TrainError(f"language {lang!r}: the base model has it as {same[0]!r}; give that code to "
                                 f"continue its output layer (another code starts a new one)")
            if iso is None:
                log.warning(f"language {lang!r} is not an ISO 639 code: trained as a new language of that name")
        dropped = sorted(set(known) - set(self.languages))
        if self.options.mode == "full" and dropped:
            log.warning(f"the exported model transcribes {', '.join(self.languages)} only: the base's other "
                        f"languages ({', '.join(dropped[:8])}{', ...' if len(dropped) > 8 else ''}) are not carried over")

    def frames(self, example: Example) -> int:
        from mms.models.wav2vec2 import conv_output_lengths

        return conv_output_lengths(example.samples, self.base_config.conv_kernel, self.base_config.conv_stride)

    # -- resumable state -----------------------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.out / STATE_FILE

    def train_identity(self) -> str:
        """A digest of the training set as the batch plan indexes it (mms.train.export.train_set_identity)."""
        return train_set_identity((os.path.basename(e.audio), e.lang, e.text, e.samples) for e in self.train_set)

    def save_state(self) -> None:
        params = dict(self.model.named_parameters())
        state = {
            "options": {k: v for k, v in asdict(self.options).items() if k != "init_config"},
            "weights": {n: params[n].detach().cpu() for n in self.trainable},
            "optimizer": self.optimizer.state_dict(),
            "step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
            "best": self.best, "history": self.history,
            "vocabs": {lang: v.tokens for lang, v in self.vocabs.items()},
            "base": self.base_identity(),
            "train_set": self.train_identity(),
            "epoch_losses": list(self.epoch_losses),
            "audio_seconds": self.audio_seconds, "train_seconds": self.train_seconds,
            "rng": rng_state(),
        }
        write_state(self.state_path, state)

    def load_state(self) -> bool:
        if not self.state_path.exists():
            return False
        state = read_state(self.state_path)
        mode = state.get("options", {}).get("mode")
        if mode != self.options.mode:  # the optimizer's parameters differ: the state cannot be continued
            saved_by = {"full": "`mms train`", "adapter": "`mms train-adapter`"}.get(mode, "another command")
            raise TrainError(f"{self.state_path}: saved by {saved_by}, not this command; use another --out or "
                             f"delete it to start over")
        for key in ("lid", "freeze_feature_encoder"):  # which weights train: the optimizer's state is theirs
            before, now = bool(state.get("options", {}).get(key)), bool(getattr(self.options, key, False))
            if before != now:
                flag = "--" + key.replace("_", "-")
                raise TrainError(f"{flag}: the run in {self.out} was started {'with' if before else 'without'} "
                                 f"it (its optimizer holds other weights); resume {'with' if before else 'without'} "
                                 f"it, or give another --out")
        if state.get("base", self.base_identity()) != self.base_identity():  # (states before 2026-12-07 lack it)
            raise TrainError(f"{self.state_path}: saved when training from {state['base']}, not "
                             f"{self.base_identity()}; use another --out or delete it to start over")
        saved = {lang: tokens for lang, tokens in state["vocabs"].items()}
        if sorted(saved) != sorted(self.vocabs):
            raise TrainError(f"{self.state_path}: saved for the language(s) {', '.join(sorted(saved))}, not "
                             f"{', '.join(sorted(self.vocabs))}; use another --out or delete it to start over")
        if saved != {lang: v.tokens for lang, v in self.vocabs.items()}:
            raise TrainError(f"{self.state_path}: saved for other training data (vocabularies differ); "
                             f"use another --out or delete it to start over")
        if state["batch_in_epoch"]:  # mid-epoch: its remaining batches are those of the plan it started with
            check_train_set(state, self.train_identity(), self.out)
            for key in ("batch_seconds", "seed", "accumulate"):
                value = state["options"].get(key, getattr(self.options, key))
                if value != getattr(self.options, key):
                    raise TrainError(f"--{key.replace('_', '-')} {getattr(self.options, key)}: the run in "
                                     f"{self.out} stopped mid-epoch with {value}, whose batches it has to finish; "
                                     "resume with the same, or give another --out")
        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, value in state["weights"].items():
                params[name].copy_(value)
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.epoch, self.batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        self.best, self.history = state["best"], state["history"]
        if sorted(map(os.path.realpath, state["options"].get("dev") or [])) != sorted(map(os.path.realpath,
                                                                                          self.options.dev)):
            # another dev set: its CER is not comparable with the saved best, the next epoch starts afresh
            log.info("the dev manifests changed since the saved state: the best epoch is chosen anew")
            self.best = None
        self.audio_seconds, self.train_seconds = state["audio_seconds"], state["train_seconds"]
        self.epoch_losses = list(state.get("epoch_losses", []))
        restore_rng(state["rng"])
        return True

    # -- training ------------------------------------------------------------------------------------------
    def autocast(self):
        if self.options.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def loss(self, batch: list[Example], waves: list[np.ndarray]) -> tuple[torch.Tensor, float]:
        """CTC loss (each utterance through its language's output layer; mean over the batch) plus, with a LID
        head, lid_weight x its cross-entropy. Returns (loss to minimise, CTC part as a number)."""
        waves, lengths, targets, target_lengths = collate(batch, waves)
        offsets = np.concatenate([[0], np.cumsum(target_lengths.numpy())])
        with self.autocast():
            hidden, frame_lengths, lid = self.model(waves.to(self.device), lengths.to(self.device))
        ctc = 0.0
        for lang in sorted({e.lang for e in batch}):
            rows = [i for i, e in enumerate(batch) if e.lang == lang]
            with self.autocast():
                log_probs = self.model.log_probs(hidden[rows], lang)
            group_targets = torch.cat([targets[offsets[i]:offsets[i + 1]] for i in rows]).to(self.device)
            ctc = ctc + ctc_loss(log_probs, group_targets, frame_lengths[rows], target_lengths[rows].to(self.device),
                                 self.options.delay_penalty) * (len(rows) / len(batch))
        loss = ctc
        if lid is not None:
            labels = torch.tensor([self.model.lid_labels.index(e.lang) for e in batch], device=self.device)
            loss = loss + self.options.lid_weight * F.cross_entropy(lid, labels)
        return loss, float(ctc.detach())

    def optimizer_step(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.options.lr * lr_factor(self.step, self.options.warmup_steps, self.total_steps,
                                                      self.train_seconds, self.options.time_limit)
        # clipped apart: the CTC gradients of the first steps are large and would leave the LID head none
        lid_head = [p for n, p in self.model.named_parameters() if n.startswith(("projector.", "classifier."))]
        params = [p for n, p in self.model.named_parameters()
                  if p.requires_grad and not n.startswith(("projector.", "classifier."))]
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        if lid_head:
            torch.nn.utils.clip_grad_norm_(lid_head, 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1

    def run(self) -> dict:
        with lock_out_folder(self.out):
            return self._run()

    def _run(self) -> dict:
        """Train (or resume) until the last epoch, max_steps or time_limit; returns the summary written to
        train_log."""
        options = self.options
        resumed = self.load_state()
        if resumed:
            log.info(f"resuming from {self.state_path}: epoch {self.epoch + 1}, step {self.step}")
        self.model.train()
        stopped = out_of_time = False
        if options.time_limit is not None and self.train_seconds >= options.time_limit:
            stopped = True  # resumed after the time limit: nothing left to do
        if resumed and (stopped or self.epoch >= options.epochs
                        or (options.max_steps is not None and self.step >= options.max_steps)):
            log.warning(nothing_left(self.state_path, self.epoch, self.step, "--epochs, --max-steps or --time-limit"))
        with StopRequest() as stop:
            while self.epoch < options.epochs and not stopped:
                batches = epoch_batches(self.train_set, self.batch_samples, options.seed, self.epoch, self.mixed)
                bar = self._progress(len(batches))
                if self.batch_in_epoch == 0:
                    self.epoch_losses = []
                losses = self.epoch_losses  # (resumed mid-epoch: those of the steps before, from the state)
                pending = 0
                # the next batches' audio is read on a thread while this one trains
                read = prefetch(lambda index: [self.train_set[i].wave for i in batches[index]],
                                range(self.batch_in_epoch, len(batches)), READ_AHEAD)
                report = Reporter(bar is None)
                for index in range(self.batch_in_epoch, len(batches)):
                    if pending == 0 and options.max_steps is not None and self.step >= options.max_steps:
                        stopped = True  # (resumed at the limit: not one step more)
                        break
                    started = time.perf_counter()  # (waiting for the audio counts as training time)
                    batch = [self.train_set[i] for i in batches[index]]
                    loss, ctc = self.loss(batch, next(read))
                    (loss / options.accumulate).backward()
                    losses.append(ctc)
                    pending += 1
                    if pending == options.accumulate or index == len(batches) - 1:
                        self.optimizer_step()
                        pending = 0
                    self.train_seconds += time.perf_counter() - started
                    self.audio_seconds += sum(e.seconds for e in batch)
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(loss=f"{ctc:.3f}", cer=self._last_cer(), refresh=False)
                    report(lambda: f"epoch {self.epoch + 1}, batch {index + 1}/{len(batches)}, step {self.step}: "
                                   f"loss {report.mean(losses):.3f}, "
                                   f"{self.audio_seconds / max(self.train_seconds, 1e-9):.1f} audio s/s")
                    if pending == 0:
                        self.batch_in_epoch = index + 1
                        if options.max_steps is not None and self.step >= options.max_steps:
                            stopped = True
                            break
                        if options.time_limit is not None and self.train_seconds >= options.time_limit:
                            stopped = out_of_time = True
                            break
                        if self.step % options.save_every == 0:
                            self.save_state()
                        stop.stop_here(self.step, self.save_state, self.state_path)
                read.close()  # (stops the reading thread of an epoch left early)
                release_memory()  # the waveforms were allocated on that thread (see release_memory)
                if bar is not None:
                    bar.close()
                if stopped and not out_of_time and self.batch_in_epoch < len(batches):
                    self.save_state()  # mid-epoch: the epoch ends (dev pass, export) when a rerun finishes it
                    break
                self.end_epoch(losses)  # also at the time limit: the last steps are the best trained, keep them
        if stopped:
            self.stop_reason = "time_limit" if out_of_time or (
                options.time_limit is not None and self.train_seconds >= options.time_limit) else "max_steps"
        return self.summary(stopped)

    def _progress(self, total: int):
        if not self.options.progress:
            return None
        from tqdm import tqdm

        return tqdm(total=total, initial=self.batch_in_epoch, desc=f"epoch {self.epoch + 1}/{self.options.epochs}",
                    unit="batch", dynamic_ncols=True, leave=False)

    def _last_cer(self) -> str:
        cer = self.history[-1].get("dev_cer") if self.history else None
        return "-" if cer is None else f"{cer:.1f}%"

    def end_epoch(self, losses: list[float]) -> None:
        record = {"epoch": self.epoch + 1, "step": self.step,
                  "train_loss": round(float(np.mean(losses)), 4) if losses else None,
                  "audio_seconds": round(self.audio_seconds, 1), "train_seconds": round(self.train_seconds, 1),
                  "throughput": round(self.audio_seconds / max(self.train_seconds, 1e-9), 2)}
        if self.dev_set:
            record.update(self.evaluate(self.dev_set))
            metric = record["dev_cer"]
        else:
            metric = record["train_loss"]
        improved = self.best is None or (metric is not None and metric <= self.best)
        if improved:
            self.best = metric
            self.export()
        record["best"] = improved
        self.history.append(record)
        write_log(self.out / LOG_FILE, self.history)
        cer = f", dev CER {record['dev_cer']:.2f}% WER {record['dev_wer']:.2f}%" if self.dev_set else ""
        lid = f", LID {record['dev_lid_accuracy']:.1f}%" if "dev_lid_accuracy" in record else ""
        log.info(f"epoch {record['epoch']}: loss {record['train_loss']}{cer}{lid}"
                 f"{' (best, exported)' if improved else ''}; {record['throughput']} audio s/s")
        self.epoch += 1
        self.batch_in_epoch = 0
        self.save_state()

    def evaluate(self, examples: list[Example]) -> dict:
        """Greedy CTC decoding of `examples`: corpus CER/WER (percent) over all and per language, LID accuracy.
        The forward passes are ModelRunner's (length-sorted padded batches, inference mode, out-of-memory halving),
        one language at a time through LanguageView."""
        from mms.scoring import score

        hyps: list[str] = [""] * len(examples)
        lid_hits = 0

        def use(batch: list[int], logits: torch.Tensor, frames: list[int]) -> None:
            nonlocal lid_hits
            ids = logits.log_softmax(-1).argmax(-1).cpu().numpy()
            for row, i in enumerate(batch):
                hyps[i] = greedy_decode(ids[row, :frames[row]], self.vocabs[examples[i].lang]).text
            if self.dev_view.lid is not None:
                label = self.model.lid_labels.index(self.dev_view.lang)
                lid_hits += int((self.dev_view.lid.argmax(-1).cpu() == label).sum())

        def fail(i: int, reason: str) -> None:  # even alone: the dev set is part of the run, which fails
            raise RuntimeError(f"{examples[i].audio}: {reason}")

        self.model.eval()
        try:
            for lang in sorted({e.lang for e in examples}):
                self.dev_view.lang = lang
                members = [i for i, e in enumerate(examples) if e.lang == lang and self.frames(e) > 0]
                with self.autocast():
                    self.runner.run(members, lambda i: examples[i].wave, use, fail, self.batch_samples)
        finally:
            self.dev_view.lid = None
            self.model.train()
        overall = score([e.text for e in examples], hyps, per_utterance=False)
        record = {"dev_cer": overall["cer"], "dev_wer": overall["wer"], "dev_per_language": {}}
        for lang in sorted({e.lang for e in examples}):
            chosen = [i for i, e in enumerate(examples) if e.lang == lang]
            result = score([examples[i].text for i in chosen], [hyps[i] for i in chosen], per_utterance=False)
            record["dev_per_language"][lang] = {"cer": result["cer"], "wer": result["wer"], "utterances": len(chosen)}
        if self.model.lid_labels:
            record["dev_lid_accuracy"] = 100.0 * lid_hits / len(examples)
        record["dev_examples"] = [{"ref": examples[i].text, "hyp": hyps[i]} for i in range(min(3, len(examples)))]
        return record

    def export(self) -> None:
        from mms.train.export import export

        export(self)

    def summary(self, stopped: bool) -> dict:
        return {"out": str(self.out), "epochs_done": self.epoch, "step": self.step, "stopped_early": stopped,
                "stop_reason": getattr(self, "stop_reason", None) if stopped else None,
                "exported": (self.out / "config.json").exists() or any(self.out.glob("adapter.*.safetensors")),
                "best_dev_cer" if self.dev_set else "best_train_loss": self.best,
                "audio_seconds": round(self.audio_seconds, 1), "train_seconds": round(self.train_seconds, 1),
                "throughput": round(self.audio_seconds / max(self.train_seconds, 1e-9), 2),
                "last": self.history[-1] if self.history else None}


def train(options: TrainOptions) -> dict:
    """Train (resuming from `options.out` when a state is there); see TrainOptions. torch's CPU thread count
    (options.threads) is restored afterwards."""
    threads = torch.get_num_threads()
    try:
        return Trainer(options).run()
    finally:
        torch.set_num_threads(threads)
