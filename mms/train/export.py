"""Writing what training made, in the Hugging Face layout the loaders (mms.checkpoints.huggingface) and
transformers read:

  adapter mode  adapter.<lang>.safetensors (every layer's adapter + lm_head: Wav2Vec2ForCTC's
                adapter_parameter_names) and vocab.json {lang: {token: id}}; copy the file into a base model
                directory and add the vocab.json entry, or pass the directory to `mms asr --adapter`;
  full mode     a complete model directory: config.json, model.safetensors (first language's adapter and head),
                adapter.<lang>.safetensors per language, nested vocab.json, tokenizer and preprocessor configs;
                with a LID head also <out>/lid/, a Wav2Vec2ForSequenceClassification directory.

Files are written under temporary names and renamed, so an interrupted export never leaves a half file.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from mms.files import atomic_path, ensure_parent, json_text, write_text_atomic
from mms.train.data import TrainError, vocab_json

POS = "wav2vec2.encoder.pos_conv_embed.conv."
TOKENIZER_CONFIG = {"word_delimiter_token": "|", "pad_token": "<pad>", "unk_token": "<unk>", "bos_token": "<s>",
                    "eos_token": "</s>", "do_lower_case": False, "replace_word_delimiter_char": " ",
                    "clean_up_tokenization_spaces": False, "tokenizer_class": "Wav2Vec2CTCTokenizer"}
PREPROCESSOR_CONFIG = {"do_normalize": True, "feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1,
                       "padding_side": "right", "padding_value": 0.0, "return_attention_mask": True,
                       "sampling_rate": 16000}


@contextmanager
def _writing(path: Path):
    """A failed write of a weights or state file as one line naming it (torch's zip writer says only "unexpected
    pos 87168 vs 87056" when the disk fills up)."""
    try:
        yield
    except OSError as e:
        full = " (the disk is full)" if e.errno in (errno.ENOSPC, errno.EDQUOT) else ""
        raise TrainError(f"{path}: cannot write it ({e.strerror or e}){full}") from None
    except RuntimeError as e:
        if "unexpected pos" not in str(e) and "write" not in str(e).lower():
            raise
        raise TrainError(f"{path}: cannot write it (a write came up short: is the disk full?)") from None


def save_tensors(tensors: dict[str, torch.Tensor], path: Path, dtype: torch.dtype | None = None) -> None:
    from safetensors.torch import save_file

    with _writing(path), atomic_path(path) as tmp:
        save_file({k: (v.to(dtype) if dtype and v.is_floating_point() else v).detach().cpu().contiguous()
                   for k, v in tensors.items()}, str(tmp), metadata={"format": "pt"})
        umask = os.umask(0)  # safetensors creates the file 0600: give it the mode any new file gets
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)


def make_out_folder(out: str | Path, create: bool = True, hint: str = "") -> Path:
    """The trainers' --out folder, made if new (`create`: the trainers check it first and make it once every other
    check has passed, so that a refused run leaves no empty folder); a file in its place (or in a parent's) is a
    one-line TrainError."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise TrainError(f"--out {out}: is a file; give a folder (new or the one of a run to resume)")
    # a model folder that no training run made (a base model, a downloaded voice): the export would overwrite or
    # merge into its files and leave it broken
    if out.is_dir() and not (out / "train_state.pt").exists() and any(
            (out / name).exists() for name in ("config.json", "model.safetensors", "vocab.json")):
        raise TrainError(f"--out {out}: holds a model that no training run left there; give a new folder{hint}")
    if not create:
        return out
    try:
        ensure_parent(out / "train_state.pt")
    except OSError as e:
        raise TrainError(f"--out {out}: {e.strerror or e}") from None
    return out


def lock_out_folder(out: Path):
    """The --out folder's lock (`with lock_out_folder(out): ...`), held for a whole training run: two runs on one
    folder would overwrite each other's state and exports. The operating system releases it when the process
    ends, however it ends, so a killed run never leaves the folder locked."""
    from filelock import FileLock, Timeout

    lock = FileLock(out / ".train.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise TrainError(f"--out {out}: another training run is using this folder; wait for it to end, or give "
                         f"another folder") from None
    except NotImplementedError:  # a filesystem without file locks (Lustre mounted noflock, some NFS)
        import logging
        from contextlib import nullcontext

        logging.getLogger("mms.train").warning(
            f"--out {out}: this filesystem cannot lock files: make sure no other run trains into it")
        return nullcontext()
    except OSError as e:
        raise TrainError(f"--out {out}: cannot lock it ({e.strerror or e})") from None
    return lock


def write_log(path: Path, history: list[dict]) -> None:
    """train_log.jsonl, rewritten whole from the run's history (which the state keeps): an epoch that ended, was
    logged and then redone after a kill (its state not yet saved) is logged once, not twice."""
    write_text_atomic(path, "".join(json_text(record) + "\n" for record in history))


def write_state(path: Path, state: dict) -> None:
    """A training state (torch.save), atomically: an interrupted save leaves the previous state readable. It holds
    tensors and plain values only (see rng_state), so reading it back never unpickles code."""
    with _writing(path), atomic_path(path) as tmp:  # removed again when the save is interrupted
        torch.save(state, tmp)


def read_state(path: Path) -> dict:
    """A training state this package wrote, loaded weights_only: a --out folder copied from elsewhere cannot run
    code on resume. States of earlier versions (numpy's RNG state as an ndarray, which weights_only refuses) go
    through the restricted unpickler of model checkpoints, which builds arrays and runs nothing either. A damaged
    or foreign file is a TrainError, never a guess."""
    from mms.checkpoints.safe_pickle import UnsafePickleError, load

    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            return load(path, mmap=False)
    except UnsafePickleError:
        raise TrainError(f"{path}: holds objects other than tensors and plain values, so it was not written by mms "
                         f"and is not unpickled; delete it to start over") from None
    except Exception as e:  # noqa: BLE001 - whatever torch.load raises on a damaged file
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise TrainError(f"{path}: cannot read the saved training state ({reason}); delete it to start over") \
            from None


def train_set_identity(rows) -> str:
    """A digest of a training set as a batch plan indexes it: per utterance, its fields (the audio file's name,
    not its path: a corpus copied to another disk resumes; then its text, length, ...)."""
    import hashlib

    digest = hashlib.sha256()
    for fields in rows:
        digest.update(("\t".join(map(str, fields)) + "\n").encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:16]


def check_train_set(state: dict, identity: str, out: Path) -> None:
    """A run stopped mid-epoch finishes the batches it planned over its training set: another set is refused."""
    if state.get("train_set", identity) != identity:  # (older states lack it)
        raise TrainError(f"the run in {out} stopped mid-epoch on other training data (another --train, or its files "
                         f"changed), whose batches it has to finish: resume with the same, or give another --out")


def rng_state() -> dict:
    """torch's and numpy's global random states as tensors and plain values (numpy's own form is an ndarray, which
    a weights_only load refuses)."""
    name, keys, position, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss), float(gauss)]}


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, position, has_gauss, gauss = state["numpy"]
    keys = keys.numpy() if isinstance(keys, torch.Tensor) else keys  # an ndarray in states of earlier versions
    np.random.set_state((name, keys.astype(np.uint32), position, has_gauss, gauss))


def write_json(path: Path, value: dict) -> None:
    write_text_atomic(path, json.dumps(value, ensure_ascii=False, indent=1) + "\n")


def adapter_weights(trainer, lang: str) -> dict[str, torch.Tensor]:
    """One language's adapter file: canonical adapter names + lm_head."""
    weights = {f"wav2vec2.{name}": p for name, p in trainer.model.wav2vec2.named_parameters()
               if ".adapter_layer." in name}
    head = trainer.model.heads[lang]
    weights["lm_head.weight"], weights["lm_head.bias"] = head.weight, head.bias
    return weights


def merge_vocab_json(path: Path, entries: dict[str, dict[str, int]]) -> None:
    """Add languages to a nested vocab.json, keeping the others there."""
    vocab = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    if vocab and not all(isinstance(v, dict) for v in vocab.values()):
        raise TrainError(f"{path}: a single-language vocab.json; cannot add languages to it")
    vocab.update(entries)
    write_json(path, vocab)


def encoder_state(trainer) -> dict[str, torch.Tensor]:
    """wav2vec2.* weights; the folded positional conv weight is written as weight_g/weight_v (g = its norm over
    every dim but 2, v = the weight itself), the form transformers reads and our loader folds back exactly."""
    state = {f"wav2vec2.{k}": v for k, v in trainer.model.wav2vec2.state_dict().items()}
    weight = state.pop(POS + "weight").float()
    state[POS + "weight_g"] = weight.norm(dim=(0, 1), keepdim=True)
    state[POS + "weight_v"] = weight
    return state


def hf_config_json(cfg, architecture: str, **extra) -> dict:
    values = {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.to_dict().items()
              if k not in ("blank_weight", "classifier_activation", "num_labels", "vocab_size", "classifier_proj_size")
              and v is not None}
    values.update(model_type="wav2vec2", architectures=[architecture], conv_pos_batch_norm=False,
                  feat_extract_activation="gelu", hidden_act="gelu", torch_dtype="float32", **extra)
    return values


def export(trainer, dtype: torch.dtype | None = None) -> None:
    out: Path = trainer.out
    opts = trainer.options
    if opts.mode == "adapter":
        lang = opts.lang
        save_tensors(adapter_weights(trainer, lang), out / f"adapter.{lang}.safetensors", dtype)
        merge_vocab_json(out / "vocab.json", {lang: vocab_json(trainer.vocabs[lang])})
        write_json(out / "tokenizer_config.json", dict(TOKENIZER_CONFIG, target_lang=lang))
        return
    export_full(trainer, out, dtype)
    if trainer.model.lid_labels:
        export_lid(trainer, out / "lid", dtype)


def export_full(trainer, out: Path, dtype: torch.dtype | None = None) -> None:
    cfg = trainer.model.wav2vec2.cfg
    langs = trainer.languages
    first = "eng" if "eng" in langs else langs[0]  # the default language (tokenizer target_lang, model head)
    state = encoder_state(trainer)
    head = trainer.model.heads[first]
    state["lm_head.weight"], state["lm_head.bias"] = head.weight, head.bias
    save_tensors(state, out / "model.safetensors", dtype)
    if cfg.adapter_attn_dim:
        for lang in langs:
            save_tensors(adapter_weights(trainer, lang), out / f"adapter.{lang}.safetensors", dtype)
    write_json(out / "vocab.json", {lang: vocab_json(trainer.vocabs[lang]) for lang in langs})
    write_json(out / "config.json", hf_config_json(cfg, "Wav2Vec2ForCTC", vocab_size=len(trainer.vocabs[first])))
    write_json(out / "tokenizer_config.json", dict(TOKENIZER_CONFIG, target_lang=first))
    write_json(out / "preprocessor_config.json", PREPROCESSOR_CONFIG)


def export_lid(trainer, out: Path, dtype: torch.dtype | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model = trainer.model
    state = encoder_state(trainer)
    for name in ("projector", "classifier"):
        layer = getattr(model, name)
        state[f"{name}.weight"], state[f"{name}.bias"] = layer.weight, layer.bias
    save_tensors(state, out / "model.safetensors", dtype)
    labels = model.lid_labels
    write_json(out / "config.json", hf_config_json(
        model.wav2vec2.cfg, "Wav2Vec2ForSequenceClassification", classifier_proj_size=model.projector.out_features,
        num_labels=len(labels), id2label={str(i): l for i, l in enumerate(labels)},
        label2id={l: i for i, l in enumerate(labels)}))
    write_json(out / "preprocessor_config.json", PREPROCESSOR_CONFIG)
