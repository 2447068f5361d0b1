"""Options of `mms train-adapter`, `mms train` and `mms train-tts` (no torch here; mms.train.engine and
mms.train.tts are imported only to run)."""

from __future__ import annotations

import argparse
import sys

from mms.command import add_common_options, error, non_negative, positive, say, seed
from mms.options import MAX_DISCRIMINATOR_WIDTH

ADAPTER_EXAMPLES = """\
examples:
  mms train-adapter --model mms-1b-all --lang xyz --train train.jsonl --dev dev.jsonl --out xyz-adapter/
  mms asr --model mms-1b-all --adapter xyz-adapter/ --lang xyz recording.wav
  mms train-adapter --model demo --lang deu --train de.jsonl --dev de-dev.jsonl --out deu/ --precision bf16

data: JSON lines manifests, one utterance per line: {"audio_filepath": "a.wav", "text": "..."} (or "audio";
relative paths are relative to the manifest; an optional "lang" column must be --lang). Transcripts are
normalised as MMS does (lower case, punctuation on MMS's list removed; marks it keeps, such as dashes, are
warned of); the output layer's vocabulary is <pad> (the CTC
blank) <s> </s> <unk> | and every character of the normalised training transcripts.

output (in --out): adapter.<lang>.safetensors (every layer's adapter + the output layer) and vocab.json with
the language's entry: pass the directory to `mms asr --adapter`, or copy the file into a Hugging Face model
directory and add the vocab.json entry there. Also train_state.pt (rerun the same command after an
interruption: it resumes) and train_log.jsonl (loss, dev CER/WER, throughput per epoch).

exit status: 0 trained, 1 training failed (out of memory, disk full), 2 usage or data error, 3 a bug.
"""

TRAIN_EXAMPLES = """\
examples:
  mms train --model small-model/ --train train.jsonl --dev dev.jsonl --out finetuned/ --lr 1e-4
  mms train --model demo --train all.jsonl --dev dev.jsonl --out demo2/ --lid --epochs 30
  mms train --config mms/configs/demo/config.json --train all.jsonl --dev dev.jsonl --out new/ --lr 2e-3 --lid

Trains every weight (--freeze-feature-encoder keeps the conv encoder), from a model or, with --config, from
random weights (PyTorch's default initialisation; config keys mms does not use are ignored). Manifests may mix
languages (a "lang" column); each language gets its own output layer and vocabulary; --lid also trains a
language-identification head on the same encoder (written to <out>/lid/). Output: a Hugging Face model
directory (config.json, model.safetensors, adapter.<lang>.safetensors, vocab.json) that `mms asr --model <out>`
reads.

exit status: 0 trained, 1 training failed (out of memory, disk full), 2 usage or data error, 3 a bug.
"""


TTS_EXAMPLES = """\
examples:
  mms train-tts --model mms-tts-eng --train train.jsonl --dev dev.jsonl --out my-voice/   # fine-tune a voice
  mms train-tts --config tiny --train train.jsonl --out voice/                             # a new voice
  mms tts --model my-voice/ --txt "..." --wav out.wav

data: JSON lines manifests, one utterance per line: {"audio_filepath": "a.wav", "text": "..."} (or "audio";
relative paths are relative to the manifest). Audio is resampled to the voice's rate; text becomes ids exactly as
`mms tts` prepares it for that voice (uroman voices romanised, characters not in the voice's vocabulary dropped
with a warning). A new voice's vocabulary is every character of its lower-cased training transcripts.

fine-tuning: an original MMS-TTS directory with D_*.pth (the full_model downloads) starts the discriminators from
it; Hugging Face voices (mms-tts-*) carry none, the discriminators then start from random weights.

output (in --out): the voice in the Hugging Face layout (read by `mms tts --model OUT` and transformers'
VitsModel) and in the original layout in OUT/original/ (G_<step>.pth, D_<step>.pth, config.json, vocab.txt);
train_state.pt (rerun the same command after an interruption: it resumes exactly), train_log.jsonl (losses and
dev mel L1 per epoch) and samples/ (wavs every --sample-every steps).

exit status: 0 trained, 1 training failed (out of memory, disk full), 2 usage or data error, 3 a bug.
"""


def common_options(p: argparse.ArgumentParser, lr: float, epochs: int, from_scratch: bool = False) -> None:
    base = p.add_mutually_exclusive_group(required=True) if from_scratch else p
    base.add_argument("--model", "-m", required=not from_scratch,
                      help="base model: published name (e.g. mms-1b-all, demo), Hugging Face directory or fairseq .pt")
    if from_scratch:
        base.add_argument("--config", metavar="CONFIG_JSON",
                          help="instead of --model: start from random weights of this architecture (a Hugging Face "
                               "wav2vec2 config.json: hidden_size, num_hidden_layers, conv_dim, adapter_attn_dim, ...)")
    p.add_argument("--lang", "-l", help="language code of manifest lines without a `lang` column")
    p.add_argument("--train", action="append", required=True, metavar="JSONL", help="training manifest (repeatable)")
    p.add_argument("--dev", action="append", default=[], metavar="JSONL",
                   help="dev manifest (repeatable): CER/WER after every epoch; the best epoch is kept")
    p.add_argument("--out", "-o", required=True, help="output directory (also holds the resumable state)")
    p.add_argument("--epochs", type=positive(int), default=epochs, help="passes over the training data (default: %(default)s)")
    p.add_argument("--lr", type=positive(float), default=lr, help="peak learning rate of AdamW (default: %(default)s)")
    p.add_argument("--weight-decay", type=non_negative(float), default=0.01, help="AdamW weight decay (default: %(default)s)")
    p.add_argument("--warmup-steps", type=non_negative(int), default=100, help="linear warm-up steps (default: %(default)s)")
    p.add_argument("--batch-seconds", type=positive(float), default=60.0,
                   help="padded audio seconds per micro-batch (default: %(default)s)")
    p.add_argument("--accumulate", type=positive(int), default=1,
                   help="micro-batches per optimizer step (gradient accumulation; default: %(default)s)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="bf16: autocast to bfloat16, on CPU too (default: %(default)s)")
    # not mms.command.add_device_options: training's precision is --precision (autocast), not a model --dtype
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: %(default)s)")
    p.add_argument("--threads", type=positive(int), help="CPU threads for torch (default: torch's choice; 1 is often "
                                               "fastest on a busy machine)")
    p.add_argument("--seed", type=seed, default=0, help="seed of initialisation and batch order (default: 0)")
    p.add_argument("--max-seconds", type=non_negative(float), default=30.0,
                   help="skip training utterances longer than this (default: %(default)s; 0: keep every one)")
    p.add_argument("--save-every", type=positive(int), default=50,
                   help="optimizer steps between resumable states (default: %(default)s; also every epoch)")
    p.add_argument("--max-steps", type=positive(int), help="stop after this many optimizer steps in all (resumable)")
    p.add_argument("--time-limit", type=positive(float), metavar="MINUTES",
                   help="minutes of training steps in all (resumes included; loading and dev passes are not counted): "
                        "the learning rate decays to zero by then, and the epoch in progress ends there with a dev pass")
    p.add_argument("--delay-penalty", type=non_negative(float), default=0.0,
                   help="delay-penalised CTC: favour alignments that emit letters early, for accurate word times "
                        "(e.g. 0.02 per 20 ms frame; default: 0, plain CTC)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_common_options(p)  # --offline (a published base model from the cache only), --verbose (every epoch's numbers)


def add_parser(commands) -> None:
    p = commands.add_parser(
        "train-adapter", help="train a language adapter and output layer on a frozen MMS model",
        description="Add a language to an MMS model: train the per-layer adapters and a new CTC output layer "
                    "(vocabulary from the transcripts) while the base model stays frozen.",
        epilog=ADAPTER_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_options(p, lr=1e-3, epochs=20)
    p.set_defaults(run=run, mode="adapter")

    p = commands.add_parser(
        "train", help="fine-tune every weight of a (small) CTC model",
        description="Full CTC fine-tuning with the engine of train-adapter.",
        epilog=TRAIN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_options(p, lr=1e-4, epochs=20, from_scratch=True)
    p.add_argument("--freeze-feature-encoder", action="store_true", help="do not train the conv feature encoder")
    p.add_argument("--lid", action="store_true", help="also train a language-identification head")
    p.set_defaults(run=run, mode="full")

    p = commands.add_parser(
        "train-tts", help="train an MMS-TTS (VITS) voice: fine-tune a published one, or a new one from scratch",
        description="VITS training as the paper and the original code define it (posterior encoder, flows, "
                    "monotonic alignment search, stochastic duration predictor, HiFi-GAN with multi-period and "
                    "scale discriminators); writes a voice that `mms tts` and transformers read.",
        epilog=TTS_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    tts_options(p)
    p.set_defaults(run=run_tts)


def tts_options(p: argparse.ArgumentParser) -> None:
    base = p.add_mutually_exclusive_group(required=True)
    base.add_argument("--model", "-m", help="voice to fine-tune: published name (mms-tts-<lang>), Hugging Face "
                                            "directory, original directory (G_*.pth, config.json, vocab.txt)")
    base.add_argument("--config", metavar="NAME_OR_JSON",
                      help="instead of --model: a new voice of this architecture: tiny (a very small VITS for tests "
                           "and CPU demos), mms (every MMS-TTS voice's), or a VITS config.json (Hugging Face "
                           "VitsConfig or original hyper-parameters)")
    p.add_argument("--lang", "-l", help="ISO 639-3 code of the voice (picks one in a folder of voices; written in "
                                        "the tokenizer config)")
    p.add_argument("--uroman", action="store_true",
                   help="new voice: romanise the transcripts with uroman (as MMS's uroman voices; inputs too)")
    p.add_argument("--train", action="append", required=True, metavar="JSONL", help="training manifest (repeatable)")
    p.add_argument("--dev", action="append", default=[], metavar="JSONL",
                   help="dev manifest (repeatable): mel L1 after every epoch")
    p.add_argument("--out", "-o", required=True, help="output directory (also holds the resumable state)")
    p.add_argument("--epochs", type=positive(int), default=100, help="passes over the training data (default: %(default)s)")
    p.add_argument("--max-steps", type=positive(int), help="stop after this many steps in all (resumable)")
    p.add_argument("--batch-size", type=positive(int), default=16, help="utterances per step (default: %(default)s)")
    p.add_argument("--lr", type=positive(float), default=2e-4, help="AdamW learning rate (default: %(default)s, VITS's)")
    p.add_argument("--lr-decay", type=positive(float), default=0.999875,
                   help="learning-rate factor after every epoch (default: %(default)s)")
    p.add_argument("--segment-frames", type=positive(int), default=32,
                   help="latent frames decoded per utterance and step (default: %(default)s = 8192 samples at "
                        "MMS's hop 256)")
    p.add_argument("--max-grad-norm", type=positive(float),
                   help="clip the gradient norm of the generator and of the discriminators (default: no clipping, "
                        "as VITS)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="bf16: autocast to bfloat16 (auto: on GPUs that compute it; default: %(default)s)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: %(default)s)")
    p.add_argument("--threads", type=positive(int), help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--seed", type=seed, default=1234, help="seed of initialisation, batches and noise (default: "
                                                          "%(default)s)")
    p.add_argument("--max-seconds", type=non_negative(float), default=20.0,
                   help="skip training utterances longer than this (default: %(default)s; 0: keep every one)")
    p.add_argument("--save-every", type=positive(int), default=1000,
                   help="steps between resumable states and voice exports (default: %(default)s; also at the end)")
    p.add_argument("--sample-every", type=non_negative(int), default=1000,
                   help="steps between sample wavs in OUT/samples/ (default: %(default)s; 0: none)")
    p.add_argument("--sample-text", action="append", default=[], metavar="TEXT",
                   help="text of the sample wavs (repeatable; default: the first two dev transcripts)")
    p.add_argument("--discriminator", metavar="D_PTH",
                   help="start the discriminators from this VITS D_*.pth (default: the voice's own when it has one)")
    p.add_argument("--discriminator-width", type=positive(float),
                   help="new discriminators: factor on VITS's channel counts, at most "
                        f"{MAX_DISCRIMINATOR_WIDTH:g} (default: 1; 1/16 with --config tiny)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_common_options(p)


def run_tts(args: argparse.Namespace) -> int:
    """Usage and data errors are raised (exit 2); a run that fails while training (out of memory, a full disk) is
    exit 1."""
    import logging

    from mms.train.tts import TTSTrainOptions, train_tts

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="mms train-tts: %(message)s")
    options = TTSTrainOptions(
        model=args.model, config=args.config, lang=args.lang, uroman=args.uroman, train=args.train, dev=args.dev,
        out=args.out, epochs=args.epochs, max_steps=args.max_steps, batch_size=args.batch_size, lr=args.lr,
        lr_decay=args.lr_decay, segment_frames=args.segment_frames, max_grad_norm=args.max_grad_norm,
        precision=args.precision, device=args.device, threads=args.threads, seed=args.seed,
        max_seconds=args.max_seconds or None, save_every=args.save_every, sample_every=args.sample_every,
        sample_texts=args.sample_text, discriminator=args.discriminator,
        discriminator_width=args.discriminator_width, progress=not args.no_progress and sys.stderr.isatty())
    try:
        summary = train_tts(options)
    except (OSError, RuntimeError) as e:
        error("mms train-tts", f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}")
        return 1
    last = summary["last"] or {}
    mel = f", mel L1 {last['mel']:.3f}" if last.get("mel") is not None else ""
    dev = f", dev mel L1 {last['dev_mel']:.3f}" if last.get("dev_mel") is not None else ""
    if dev and last.get("step") not in (None, summary["step"]):  # stopped mid-epoch: the last dev pass is older
        dev += f" (at step {last['step']}, the last epoch's end)"
    stop = " (stopped at --max-steps: rerun with a higher one to continue)" if summary["stopped_early"] else ""
    say("mms train-tts", f"{summary['epochs_done']} epochs, {summary['step']} steps{mel}{dev}; "
                         f"{summary['steps_per_second']} steps/s; voice in {summary['out']} (original layout in "
                         f"{summary['out']}/original){stop}")
    return 0


def read_architecture(path: str):
    """A Wav2Vec2Config from a config.json (the model_type must be wav2vec2; the heads come from the data).
    Raises OSError, ValueError or TypeError; run() turns them into one-line usage errors."""
    import json

    from mms.models.wav2vec2 import Wav2Vec2Config
    from mms.train.data import check_settings

    with open(path, encoding="utf-8") as f:
        values = json.load(f)
    if not isinstance(values, dict):
        raise ValueError("not a JSON object of wav2vec2 settings")
    if values.get("model_type", "wav2vec2") != "wav2vec2":
        raise ValueError(f"model_type {values['model_type']!r} is not wav2vec2")
    drop = ("vocab_size", "num_labels", "classifier_proj_size", "classifier_activation", "blank_weight")
    values = {k: v for k, v in values.items() if k not in drop}
    cfg = Wav2Vec2Config.from_dict(values)
    check_settings(values, cfg)  # positive sizes, finite numbers, no misspelt setting
    if cfg.hidden_size % cfg.num_attention_heads:
        raise ValueError(f"hidden_size {cfg.hidden_size} is not a multiple of num_attention_heads "
                         f"{cfg.num_attention_heads}")
    if not len(cfg.conv_dim) == len(cfg.conv_kernel) == len(cfg.conv_stride) or not cfg.conv_dim:
        raise ValueError("conv_dim, conv_kernel and conv_stride must have the same (non-zero) length")
    if cfg.feat_extract_norm not in ("layer", "group"):
        raise ValueError(f"feat_extract_norm {cfg.feat_extract_norm!r}: layer or group")
    return cfg


def run(args: argparse.Namespace) -> int:
    """Usage and data errors are raised (TrainError, DataError: mms.command.execute makes them exit 2); a run that
    fails while training (out of memory, a full disk) is exit 1."""
    import logging

    from mms.train.engine import TrainError, TrainOptions, train

    command = "train-adapter" if args.mode == "adapter" else "train"
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format=f"mms {command}: %(message)s")
    init_config = None
    if getattr(args, "config", None):
        try:
            init_config = read_architecture(args.config)
        except (OSError, ValueError, TypeError) as e:
            raise TrainError(f"{args.config}: {e}") from None
    options = TrainOptions(
        mode=args.mode, model=args.model, init_config=init_config, lang=args.lang, train=args.train, dev=args.dev,
        out=args.out,
        epochs=args.epochs, lr=args.lr, weight_decay=args.weight_decay, warmup_steps=args.warmup_steps,
        batch_seconds=args.batch_seconds, accumulate=args.accumulate, precision=args.precision, device=args.device,
        seed=args.seed, max_seconds=args.max_seconds or None, save_every=args.save_every, max_steps=args.max_steps,
        time_limit=args.time_limit * 60 if args.time_limit else None, delay_penalty=args.delay_penalty,
        progress=not args.no_progress and sys.stderr.isatty(), threads=args.threads,
        freeze_feature_encoder=getattr(args, "freeze_feature_encoder", False), lid=getattr(args, "lid", False))
    try:
        summary = train(options)
    except (OSError, RuntimeError) as e:
        error(f"mms {command}", f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}")
        return 1
    last = summary["last"] or {}
    cer = f", last dev CER {last['dev_cer']:.2f}% WER {last['dev_wer']:.2f}%" if last.get("dev_cer") is not None else ""
    if summary.get("best_dev_cer") is not None and summary["exported"]:  # what --out holds: the best epoch's model
        cer += f" (exported: the best epoch's, CER {summary['best_dev_cer']:.2f}%)"
    stop = {"max_steps": " (stopped at --max-steps: rerun with a higher one to continue)",
            "time_limit": " (stopped at --time-limit: rerun with a longer one to continue)"}.get(summary["stop_reason"], "")
    output = (f"output in {summary['out']}" if summary["exported"] else
              f"no model written yet (it is at the end of an epoch); the resumable state is in {summary['out']}")
    say(f"mms {command}", f"{summary['epochs_done']} epochs, {summary['step']} steps{cer}; "
                          f"{summary['throughput']} audio s/s; {output}{stop}")
    return 0
