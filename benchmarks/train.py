"""Adapter-training throughput: `mms train-adapter`'s engine against the transformers recipe, same model and data.

    python benchmarks/train.py [--layers 2] [--utterances 24] [--epochs 1] [--device cpu] [--quick]

The reference is the recipe of Hugging Face's MMS adapter blog post, as a plain loop: Wav2Vec2ForCTC from the
same directory with a new output layer (ignore_mismatched_sizes), init_adapter_layers(), freeze_base_model(),
the adapter weights and lm_head trainable, AdamW, batches of --hf-batch utterances padded with an attention
mask, batches of similar lengths (the blog's group_by_length=True), CTC loss "mean"; and the same with
freeze_feature_encoder() added (freeze_base_model() alone leaves transformers' feature encoder asking for the
input's gradient, so the recipe backpropagates through the conv encoder to the waveform). mms.train does the same work with its own model code, batches of up to
--batch-seconds of padded audio sorted by length. Both train a random model with MMS-1B's layer shapes (hidden
1280, FFN 5120, 16 heads, adapters) but only --layers layers, on the same synthetic utterances (seeded), and
both count only the time of training steps (data loading and evaluation excluded). Printed: audio seconds
trained per second for each, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SR = 16000
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def make_data(folder: Path, n: int, rng: np.random.Generator) -> Path:
    """n utterances of 2 to 12 s with random letter transcripts (about 12 letters per second)."""
    from benchmarks.asr import synth

    lines = []
    for i in range(n):
        seconds = float(rng.uniform(2, 12))
        path = folder / f"{i}.wav"
        soundfile.write(path, synth(seconds, rng), SR)
        words = ["".join(rng.choice(list(LETTERS), size=int(rng.integers(2, 8)))) for _ in range(int(seconds * 2))]
        lines.append(json.dumps({"audio_filepath": path.name, "text": " ".join(words)}))
    manifest = folder / "train.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def run_mms(model_dir: Path, manifest: Path, out: Path, args) -> tuple[float, float]:
    from mms.train import TrainOptions, train

    summary = train(TrainOptions(mode="adapter", model=str(model_dir), lang="xyz", train=[str(manifest)],
                                 out=str(out), epochs=args.epochs, lr=1e-3, warmup_steps=1,
                                 batch_seconds=args.batch_seconds, device=args.device, progress=False,
                                 save_every=10 ** 9))
    return summary["audio_seconds"], summary["train_seconds"]


def run_transformers(model_dir: Path, manifest: Path, args, freeze_encoder: bool) -> tuple[float, float]:
    from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC

    from mms.train.data import normalize_text

    items = [json.loads(line) for line in manifest.read_text().splitlines()]
    texts = [normalize_text(item["text"], "xyz") for item in items]
    vocab = {c: i + 5 for i, c in enumerate(sorted({c for t in texts for c in t if c != " "}))}
    vocab.update({"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4})
    model = Wav2Vec2ForCTC.from_pretrained(model_dir, target_lang="eng", vocab_size=len(vocab),
                                           ignore_mismatched_sizes=True, ctc_loss_reduction="mean",
                                           pad_token_id=0).to(args.device)
    model.init_adapter_layers()
    model.freeze_base_model()
    if freeze_encoder:  # freeze_base_model() alone still backpropagates through the conv encoder to the input
        model.freeze_feature_encoder()
    for param in model._get_adapters().values():
        param.requires_grad = True
    for param in model.lm_head.parameters():
        param.requires_grad = True
    model.train()
    extractor = Wav2Vec2FeatureExtractor.from_pretrained(model_dir)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    waves = [soundfile.read(manifest.parent / item["audio_filepath"], dtype="float32")[0] for item in items]
    labels = [[vocab["|" if c == " " else c] for c in text] for text in texts]
    # the blog's group_by_length=True: batches of similar lengths, less padding
    order = sorted(range(len(waves)), key=lambda i: -len(waves[i]))
    waves, labels = [waves[i] for i in order], [labels[i] for i in order]
    batches = []  # prepared before timing: mms.train also normalises and pads outside its step time
    for i in range(0, len(items), args.hf_batch):
        batch = extractor(waves[i:i + args.hf_batch], sampling_rate=SR, padding=True, return_attention_mask=True,
                          return_tensors="pt")
        target = torch.full((len(batch.input_values), max(len(x) for x in labels[i:i + args.hf_batch])), -100)
        for row, x in enumerate(labels[i:i + args.hf_batch]):
            target[row, :len(x)] = torch.tensor(x)
        batches.append((batch.input_values, batch.attention_mask, target,
                        sum(len(w) for w in waves[i:i + args.hf_batch]) / SR))
    audio, spent = 0.0, 0.0
    for _ in range(args.epochs):
        for input_values, attention_mask, target, seconds in batches:
            started = time.perf_counter()
            loss = model(input_values.to(args.device), attention_mask=attention_mask.to(args.device),
                         labels=target.to(args.device)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            spent += time.perf_counter() - started
            audio += seconds
    return audio, spent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=2, help="transformer layers (MMS-1B has 48)")
    parser.add_argument("--utterances", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-seconds", type=float, default=30.0, help="mms: padded audio per batch")
    parser.add_argument("--hf-batch", type=int, default=4, help="transformers: utterances per batch")
    parser.add_argument("--quick", action="store_true", help="8 utterances")
    args = parser.parse_args()
    if args.quick:
        args.utterances = 8
    from tests.factory import mms1b_config, random_model, write_hf

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model_dir = write_hf(random_model(mms1b_config(layers=args.layers), {"eng": 40}, seed=0), tmp / "model")
        (tmp / "data").mkdir()
        manifest = make_data(tmp / "data", args.utterances, np.random.default_rng(0))
        results = {"mms (mms.train, train-adapter)": run_mms(model_dir, manifest, tmp / "out", args),
                   "transformers, blog recipe": run_transformers(model_dir, manifest, args, False),
                   "transformers, + freeze_feature_encoder()": run_transformers(model_dir, manifest, args, True)}
    print(f"adapter training, MMS-1B layer shapes x {args.layers} layers, {args.utterances} utterances x "
          f"{args.epochs} epoch(s), device {args.device}, torch threads {torch.get_num_threads()}")
    rates = {}
    for name, (audio, spent) in results.items():
        rates[name] = audio / spent
        print(f"  {name:48s} {audio:8.1f} audio s in {spent:7.1f} s: {rates[name]:6.2f} audio s/s")
    mms_rate, recipe, frozen = rates.values()
    print(f"  ratio mms / transformers: {mms_rate / recipe:.2f}x (blog recipe), {mms_rate / frozen:.2f}x (with "
          f"freeze_feature_encoder)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
