"""torchaudio wav2vec2 state dicts: the MMS forced-alignment model (torchaudio `MMS_FA`, the same file as
fairseq data_prep's `ctc_alignment_mling_uroman_model.pt`) and its dictionary.

The file is a plain state dict of torchaudio's `Wav2Vec2Model` (read with weights_only=True: tensors only).
Its names differ from the canonical ones by prefix only (PREFIXES); the positional conv carries weight norm.
What the names and shapes cannot tell is fixed as MMS_FA has it: conv strides (5, 2, 2, 2, 2, 2, 2), a
pre-LN encoder (`encoder_layer_norm_first=True`) and 16 attention heads from 1024 dims up (else dims / 64).

Dictionary: one token per line, id = line number, no special symbols added; the CTC blank is the token
"<blank>" (looked up by name, as data_prep does). It is `--dict`, or `dictionary.txt` / `<model stem>.dict`
beside the model. Without one: 28 outputs are torchaudio's MMS_FA labels ("-" blank, then 27 letters), and
31 outputs the data_prep dictionary, whose rows 1-3 torchaudio drops as unused specials (named <pad>, </s>,
<unk> here; no romanised text ever uses them).

fairseq's data_prep does not normalise the waveform for this model (torchaudio's MMS_FA bundle does):
`normalize` is False here, and the aligner can be told otherwise.
"""

from __future__ import annotations

from pathlib import Path

import torch

from mms.checkpoints import Checkpoint, CheckpointError
from mms.checkpoints.safe_pickle import pickle_head
from mms.checkpoints.huggingface import to_canonical
from mms.models.wav2vec2 import Wav2Vec2Config
from mms.text.vocab import Vocabulary

# torchaudio prefix -> canonical prefix, most specific first; the names below the prefixes are the same.
PREFIXES = [
    ("feature_extractor.", "wav2vec2.feature_extractor."),
    ("encoder.feature_projection.", "wav2vec2.feature_projection."),
    ("encoder.transformer.", "wav2vec2.encoder."),
    ("aux.", "lm_head."),
]
MMS_FA_LETTERS = tuple("aienoutsrmkldghybpwcvjzf'qx")  # torchaudio's MMS_FA labels after the blank
STANDARD_KERNELS, STANDARD_STRIDES = (10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2)
MARKER = b"encoder.transformer.layers."  # in the first bytes of such a file's pickle, never in fairseq's


def recognizes(path: str | Path) -> bool:
    """Whether `path` is a torchaudio wav2vec2 state dict, judged from the start of its pickle (cheap: the
    tensors are not read)."""
    head = pickle_head(path)
    return MARKER in head and b"w2v_encoder" not in head


def canonical_name(name: str) -> str | None:
    for prefix, canonical in PREFIXES:
        if name.startswith(prefix):
            return canonical + name[len(prefix):]
    return None


def torchaudio_name(canonical: str) -> str:
    """Inverse of canonical_name (used to write such files in tests)."""
    for prefix, canonical_prefix in PREFIXES:
        if canonical.startswith(canonical_prefix):
            return prefix + canonical[len(canonical_prefix):]
    raise KeyError(canonical)


def read_dictionary(path: Path) -> list[str]:
    """data_prep's dictionary: token = stripped line, id = line number."""
    try:
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: cannot read dictionary ({e})") from None


def default_tokens(n_outputs: int, path: Path) -> list[str]:
    if n_outputs == 1 + len(MMS_FA_LETTERS):
        return ["-", *MMS_FA_LETTERS]
    if n_outputs == 4 + len(MMS_FA_LETTERS):
        return ["<blank>", "<pad>", "</s>", "<unk>", *MMS_FA_LETTERS]
    raise CheckpointError(f"{path}: {n_outputs} outputs and no dictionary (put dictionary.txt beside it or use --dict)")


def load(path: Path, dict_path=None) -> Checkpoint:
    path = Path(path)
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # noqa: BLE001 - any failure here means an unusable file
        raise CheckpointError(f"{path}: cannot read torchaudio weights ({type(e).__name__}: {e})") from None
    if not isinstance(raw, dict) or "aux.weight" not in raw:
        raise CheckpointError(f"{path}: not a torchaudio wav2vec2 CTC state dict (no 'aux.weight')")
    renamed = {}
    for name, value in raw.items():
        canonical = canonical_name(name)
        if canonical is None:
            raise CheckpointError(f"{path}: unexpected tensor {name!r} for a torchaudio wav2vec2 model")
        renamed[canonical] = value
    state = to_canonical(renamed)  # folds the positional conv's weight norm (either spelling)
    config = build_config(state, path)

    notes = []
    candidates = [Path(dict_path)] if dict_path else [path.parent / "dictionary.txt", path.with_suffix(".dict")]
    found = next((p for p in candidates if p.exists()), None)
    if dict_path and found is None:
        raise CheckpointError(f"{dict_path}: no such dictionary file")
    if found is not None:
        tokens = read_dictionary(found)
    else:
        tokens = default_tokens(config.vocab_size, path)
        notes.append(f"no dictionary file: using the MMS_FA labels for {config.vocab_size} outputs")
    if len(tokens) != config.vocab_size:
        raise CheckpointError(f"{found}: {len(tokens)} tokens, the model has {config.vocab_size} outputs")
    blank = "<blank>" if "<blank>" in tokens else "-"
    if blank not in tokens:
        raise CheckpointError(f"{found}: no '<blank>' token")
    vocab = Vocabulary(tokens=tokens, blank=tokens.index(blank), word_delimiter="|")
    return Checkpoint(format="torchaudio", path=str(path), config=config, state_dict=state, vocab=vocab,
                      normalize=False, notes=notes)


def build_config(state: dict[str, torch.Tensor], path: Path) -> Wav2Vec2Config:
    p = "wav2vec2."
    try:
        n_conv = len({k.split(".")[3] for k in state if k.startswith(p + "feature_extractor.conv_layers.")})
        conv_w = [state[f"{p}feature_extractor.conv_layers.{i}.conv.weight"] for i in range(n_conv)]
        kernels = tuple(w.shape[2] for w in conv_w)
        if kernels != STANDARD_KERNELS:
            raise CheckpointError(f"{path}: conv kernels {kernels}, only the standard wav2vec2 stack "
                                  f"{STANDARD_KERNELS} is supported for torchaudio files")
        hidden = state[p + "encoder.layer_norm.weight"].shape[0]
        pos = state[p + "encoder.pos_conv_embed.conv.weight"]
        return Wav2Vec2Config(
            hidden_size=hidden,
            num_hidden_layers=len({k.split(".")[3] for k in state if k.startswith(p + "encoder.layers.")}),
            num_attention_heads=16 if hidden >= 1024 else hidden // 64,
            intermediate_size=state[p + "encoder.layers.0.feed_forward.intermediate_dense.weight"].shape[0],
            conv_dim=tuple(w.shape[0] for w in conv_w),
            conv_kernel=kernels,
            conv_stride=STANDARD_STRIDES,
            conv_bias=p + "feature_extractor.conv_layers.0.conv.bias" in state,
            feat_extract_norm="layer" if p + "feature_extractor.conv_layers.1.layer_norm.weight" in state else "group",
            do_stable_layer_norm=True,
            num_conv_pos_embeddings=pos.shape[2],
            num_conv_pos_embedding_groups=hidden // pos.shape[1],
            vocab_size=state["lm_head.weight"].shape[0],
        )
    except KeyError as e:
        raise CheckpointError(f"{path}: missing tensor {e} for a torchaudio wav2vec2 model") from None
