"""Original fairseq wav2vec2 checkpoints: MMS ASR (mms1b_fl102.pt, mms1b_l1107.pt, mms1b_all.pt), MMS LID
(mms1b_l126.pt ... mms1b_l4017.pt), pretrained (base_300m.pt, base_1b.pt).

Read with the restricted unpickler (no fairseq, no code execution), memory-mapped so that of mms1b_all.pt only
the base model and the languages actually used are ever paged in. fairseq names are translated with KEY_TABLE.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import torch

from mms.checkpoints import Adapters, Checkpoint, CheckpointError, read_label_file, safe_pickle
from mms.models.wav2vec2 import ACTIVATIONS, Wav2Vec2Config, fold_weight_norm
from mms.text.vocab import Vocabulary, read_vocabulary_file

ENCODER_PREFIX = "w2v_encoder.w2v_model."

# fairseq name (inside Wav2Vec2Model) -> canonical name (inside `wav2vec2.`). {i}: index, {p}: weight|bias.
KEY_TABLE = [
    ("feature_extractor.conv_layers.{i}.0.{p}", "feature_extractor.conv_layers.{i}.conv.{p}"),
    ("feature_extractor.conv_layers.{i}.2.1.{p}", "feature_extractor.conv_layers.{i}.layer_norm.{p}"),  # layer mode
    ("feature_extractor.conv_layers.{i}.2.{p}", "feature_extractor.conv_layers.{i}.layer_norm.{p}"),  # group mode
    ("layer_norm.{p}", "feature_projection.layer_norm.{p}"),
    ("post_extract_proj.{p}", "feature_projection.projection.{p}"),
    ("encoder.pos_conv.0.{p}", "encoder.pos_conv_embed.conv.{p}"),
    ("encoder.layers.{i}.self_attn.{proj}.{p}", "encoder.layers.{i}.attention.{proj}.{p}"),
    ("encoder.layers.{i}.self_attn_layer_norm.{p}", "encoder.layers.{i}.layer_norm.{p}"),
    ("encoder.layers.{i}.fc1.{p}", "encoder.layers.{i}.feed_forward.intermediate_dense.{p}"),
    ("encoder.layers.{i}.fc2.{p}", "encoder.layers.{i}.feed_forward.output_dense.{p}"),
    ("encoder.layers.{i}.final_layer_norm.{p}", "encoder.layers.{i}.final_layer_norm.{p}"),
    ("encoder.layer_norm.{p}", "encoder.layer_norm.{p}"),
    # MMS adapters: stacked [slots, ...] tensors; one slot is taken
    ("encoder.layers.{i}.adapter_layer.W_a", "encoder.layers.{i}.adapter_layer.linear_1.weight"),
    ("encoder.layers.{i}.adapter_layer.b_a", "encoder.layers.{i}.adapter_layer.linear_1.bias"),
    ("encoder.layers.{i}.adapter_layer.W_b", "encoder.layers.{i}.adapter_layer.linear_2.weight"),
    ("encoder.layers.{i}.adapter_layer.b_b", "encoder.layers.{i}.adapter_layer.linear_2.bias"),
    ("encoder.layers.{i}.adapter_layer.ln_W", "encoder.layers.{i}.adapter_layer.norm.weight"),
    ("encoder.layers.{i}.adapter_layer.ln_b", "encoder.layers.{i}.adapter_layer.norm.bias"),
]
CONV_NORM = {False: KEY_TABLE[1][0], True: KEY_TABLE[2][0]}  # by group_norm
HEAD_TABLE = [  # outside the encoder, full names on both sides
    ("w2v_encoder.proj.{p}", "lm_head.{p}"),
    ("pooling_layer.linear.{p}", "projector.{p}"),
    ("pooling_layer.projection.{p}", "classifier.{p}"),
]
DROPPED = ("mask_emb", "quantizer.", "project_q.", "final_proj.", "target_glu.")
PLACEHOLDERS = {"i": r"(?P<i>\d+)", "p": r"(?P<p>weight|bias|weight_g|weight_v)", "proj": r"(?P<proj>[qkv]_proj|out_proj)"}


def compile_rules(table, placeholders=PLACEHOLDERS):
    """(source pattern, target) pairs with {placeholders} -> (compiled full-match regex, target) pairs."""
    compiled = []
    for source, target in table:
        pattern = re.escape(source)
        for name, regex in placeholders.items():
            pattern = pattern.replace(re.escape("{" + name + "}"), regex)
        compiled.append((re.compile(pattern + "$"), target))
    return compiled


ENCODER_RULES = compile_rules(KEY_TABLE)
HEAD_RULES = compile_rules(HEAD_TABLE)
INVERSE_HEAD_RULES = compile_rules([(c, f) for f, c in HEAD_TABLE])
INVERSE_ENCODER_RULES = compile_rules([(c, f) for f, c in KEY_TABLE])


def canonical_name(fairseq_name: str) -> str | None:
    """fairseq state-dict name -> canonical name; None for tensors inference does not use."""
    for pattern, template in HEAD_RULES:
        m = pattern.match(fairseq_name)
        if m:
            return template.format(**m.groupdict())
    inner = fairseq_name[len(ENCODER_PREFIX):] if fairseq_name.startswith(ENCODER_PREFIX) else fairseq_name
    if inner.startswith(DROPPED):
        return None
    for pattern, template in ENCODER_RULES:
        m = pattern.match(inner)
        if m:
            return "wav2vec2." + template.format(**m.groupdict())
    return None


def fairseq_name(canonical: str, group_norm: bool = False, prefix: str = ENCODER_PREFIX) -> str:
    """Inverse of canonical_name (used to write fairseq files, and by the round-trip tests)."""
    for pattern, template in INVERSE_HEAD_RULES:
        m = pattern.match(canonical)
        if m:
            return template.format(**m.groupdict())
    inner = canonical[len("wav2vec2."):]
    for pattern, template in INVERSE_ENCODER_RULES:
        if template in CONV_NORM.values() and template != CONV_NORM[group_norm]:
            continue  # the conv norm's name depends on the extractor mode
        m = pattern.match(inner)
        if m:
            return prefix + template.format(**m.groupdict())
    raise KeyError(canonical)


def translate(state: dict[str, torch.Tensor], slot: int = 0) -> dict[str, torch.Tensor]:
    """fairseq tensors -> canonical tensors: rename, split old in_proj, fold weight norm, take one adapter slot."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.endswith("self_attn.in_proj_weight") or key.endswith("self_attn.in_proj_bias"):
            kind = key.rsplit("_", 1)[1]  # weight | bias
            for name, part in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3)):
                out[canonical_name(key.replace(f"in_proj_{kind}", f"{name}.{kind}"))] = part
            continue
        name = canonical_name(key)
        if name is None:
            continue
        if ".adapter_layer." in name:
            value = value[slot]
        out[name] = value
    pos = "wav2vec2.encoder.pos_conv_embed.conv."
    if pos + "weight_g" in out:
        out[pos + "weight"] = fold_weight_norm(out.pop(pos + "weight_g"), out.pop(pos + "weight_v"), dim=2)
    return out


# ---------------------------------------------------------------------------------------------------------
# Config


MAX_CONV_LAYERS = 64  # the spec comes from an untrusted file: bound what `*` may build


def parse_conv_layers(spec: str) -> list[tuple[int, int, int]]:
    """Evaluate fairseq's `conv_feature_layers` expression ("[(512, 10, 5)] + [(512, 3, 2)] * 4 + ...") safely:
    only list/tuple literals of integers, `+` and `*` are accepted."""

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [ev(e) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
            left, right = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Add):
                return left + right
            seq, count = (left, right) if isinstance(left, (list, tuple)) else (right, left)
            if isinstance(seq, (list, tuple)) and isinstance(count, int) and len(seq) * count > MAX_CONV_LAYERS:
                raise ValueError(f"{len(seq)} x {count} items (at most {MAX_CONV_LAYERS})")
            return left * right
        raise ValueError(f"unsupported expression in conv_feature_layers: {ast.dump(node)[:80]}")

    try:
        layers = [tuple(int(x) for x in layer) for layer in ev(ast.parse(spec, mode="eval"))]
        if not 0 < len(layers) <= MAX_CONV_LAYERS or any(len(layer) != 3 for layer in layers):
            raise ValueError(f"expected 1 to {MAX_CONV_LAYERS} (dim, kernel, stride) triples")
        return layers
    except (SyntaxError, ValueError, TypeError) as e:
        raise CheckpointError(f"cannot parse conv_feature_layers {spec!r}: {e}") from None


def plain_cfg(ckpt: dict) -> dict:
    """The checkpoint's config as plain dicts: `cfg` (dict or DictConfig) or, in old files, `args` (Namespace)."""
    cfg = safe_pickle.to_plain(ckpt.get("cfg"))
    if not cfg and ckpt.get("args") is not None:
        args = safe_pickle.to_plain(ckpt["args"])
        cfg = {"model": args, "task": args}
    return cfg or {}


def architecture(cfg: dict) -> tuple[dict, dict]:
    """(wav2vec2 architecture settings, task settings). A fine-tuned model's `cfg.model.w2v_args` holds the
    pretraining config; `cfg.model`'s adapter and layer-type fields override it (as Wav2VecEncoder does)."""
    model = cfg.get("model") or {}
    task = cfg.get("task") or {}
    w2v = model.get("w2v_args")
    if not w2v:
        return model, task
    arch = dict(w2v.get("model", w2v))
    for key in ("layer_type", "adp_num", "adp_dim", "adp_act_fn", "adp_trf_idx"):
        if model.get(key) is not None:
            arch[key] = model[key]
    if "normalize" not in task:
        task = {**(w2v.get("task") or {}), **task}
    return arch, task


def build_config(arch: dict, state: dict[str, torch.Tensor]) -> Wav2Vec2Config:
    """Sizes come from tensor shapes; what shapes cannot tell (strides, heads, LN placement) from the config."""
    p = "wav2vec2."
    n_conv = len({k.split(".")[3] for k in state if k.startswith(p + "feature_extractor.conv_layers.")})
    conv_w = [state[f"{p}feature_extractor.conv_layers.{i}.conv.weight"] for i in range(n_conv)]
    spec = arch.get("conv_feature_layers")
    strides = [s for _, _, s in parse_conv_layers(spec)] if spec else [5, 2, 2, 2, 2, 2, 2][:n_conv]
    if len(strides) != n_conv:
        raise CheckpointError(f"conv_feature_layers lists {len(strides)} layers, the weights have {n_conv}")
    layers = {int(k.split(".")[3]) for k in state if k.startswith(p + "encoder.layers.")}
    hidden = state[p + "encoder.layer_norm.weight"].shape[0]
    pos = state[p + "encoder.pos_conv_embed.conv.weight"]
    adapter_w = state.get(p + "encoder.layers.0.adapter_layer.linear_1.weight")
    if int(arch.get("pos_conv_depth") or 1) > 1:
        raise CheckpointError("pos_conv_depth > 1 (wav2vec2 'conformer-style' positional stack) is not supported")
    if (arch.get("activation_fn") or "gelu") != "gelu":
        raise CheckpointError(f"activation_fn {arch['activation_fn']!r} is not supported (gelu only)")
    if (arch.get("adp_act_fn") or "relu") != "relu" and adapter_w is not None:
        raise CheckpointError(f"adapter activation {arch['adp_act_fn']!r} is not supported (relu only)")
    if adapter_w is not None and any(p + f"encoder.layers.{i}.adapter_layer.norm.weight" not in state for i in layers):
        raise CheckpointError("adapters in only some layers (adp_trf_idx) are not supported")
    return Wav2Vec2Config(
        hidden_size=hidden,
        num_hidden_layers=len(layers),
        num_attention_heads=int(arch.get("encoder_attention_heads") or 12),
        intermediate_size=state[p + "encoder.layers.0.feed_forward.intermediate_dense.weight"].shape[0],
        conv_dim=tuple(w.shape[0] for w in conv_w),
        conv_kernel=tuple(w.shape[2] for w in conv_w),
        conv_stride=tuple(strides),
        conv_bias=p + "feature_extractor.conv_layers.0.conv.bias" in state,
        feat_extract_norm="layer" if p + "feature_extractor.conv_layers.1.layer_norm.weight" in state else "group",
        do_stable_layer_norm=bool(arch.get("layer_norm_first", False)),
        num_conv_pos_embeddings=pos.shape[2],
        num_conv_pos_embedding_groups=hidden // pos.shape[1],
        adapter_attn_dim=adapter_w.shape[0] if adapter_w is not None else None,
    )


# ---------------------------------------------------------------------------------------------------------
# Vocabularies and labels


def dictionary_symbols(task_state) -> list[str] | None:
    if not isinstance(task_state, dict):
        return None
    dictionary = task_state.get("target_dictionary")
    symbols = getattr(dictionary, "symbols", None)
    return list(symbols) if symbols else None


# ---------------------------------------------------------------------------------------------------------


def load(path: Path, dict_path=None) -> Checkpoint:
    try:
        ckpt = safe_pickle.load(path)
    except safe_pickle.UnsafePickleError as e:
        raise CheckpointError(f"{path}: {e}") from None
    except Exception as e:  # noqa: BLE001 - a truncated or foreign file
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise CheckpointError(f"{path}: not a fairseq checkpoint (no 'model' entry)")
    cfg = plain_cfg(ckpt)
    arch, task = architecture(cfg)
    base = ckpt["model"]
    adapter_dicts = ckpt.get("adapter") or {}
    corpus_keys = list(task.get("multi_corpus_keys") or []) if isinstance(task.get("multi_corpus_keys"), list) else []
    state = translate(base)
    if not any(k.startswith("wav2vec2.encoder.layers.") for k in state):
        raise CheckpointError(f"{path}: no wav2vec2 encoder weights found")
    config = build_config(arch, state)
    config.blank_weight = float((cfg.get("model") or {}).get("blank_weight") or 0.0)
    if (cfg.get("model") or {}).get("blank_mode", "add") != "add" and config.blank_weight:
        raise CheckpointError(f"{path}: blank_mode 'set' is not supported")
    normalize = bool(task.get("normalize", False))

    labels, vocab = None, None
    if "classifier.weight" in state:
        config.num_labels = state["classifier.weight"].shape[0]
        config.classifier_proj_size = state["projector.weight"].shape[0]
        # fairseq's MeanPoolingFast: linear, masked mean, activation_fn (gelu unless the cfg says), projection
        model_cfg = cfg.get("model") or {}
        if (model_cfg.get("pooling") or "mean") != "mean":
            raise CheckpointError(f"{path}: LID pooling {model_cfg['pooling']!r} is not supported (mean only)")
        config.classifier_activation = model_cfg.get("activation_fn") or "gelu"
        if config.classifier_activation not in ACTIVATIONS:
            raise CheckpointError(f"{path}: LID activation_fn {config.classifier_activation!r} is not supported "
                                  f"({', '.join(ACTIVATIONS)})")
        labels = lid_labels(path, ckpt, dict_path, config.num_labels)
    elif "lm_head.weight" in state:
        config.vocab_size = state["lm_head.weight"].shape[0]
        symbols = dictionary_symbols(ckpt.get("task_state"))
        if dict_path:
            vocab = read_vocabulary_file(dict_path)
        elif symbols:
            vocab = Vocabulary.from_fairseq_symbols(symbols)
        elif (path.parent / "dict.ltr.txt").exists():
            vocab = Vocabulary.from_fairseq_dict_file(path.parent / "dict.ltr.txt")
        elif (path.parent / "tokens.txt").exists():  # the MMS zero-shot model.pt ships its vocabulary so
            vocab = Vocabulary.from_tokens_file(path.parent / "tokens.txt")
            if len(vocab) != config.vocab_size:
                raise CheckpointError(f"{path.parent / 'tokens.txt'}: {len(vocab)} tokens, the model's output layer "
                                      f"has {config.vocab_size} rows")

    adapters = None
    if config.adapter_attn_dim and config.vocab_size:
        adapters = fairseq_adapters(path, base, adapter_dicts, corpus_keys, dict_path,
                                    dictionary_symbols(ckpt.get("task_state")))
    # the zero-shot model: one uroman output layer for every language (its multi_corpus_keys `mms_eng` is a corpus
    # name, not a language)
    language_free = vocab is not None and vocab.romanized and adapters is None
    return Checkpoint(format="fairseq", path=str(path), config=config, state_dict=state, vocab=vocab, lang=None,
                      labels=labels, normalize=normalize, normalize_eps=1e-5, adapters=adapters,
                      language_free=language_free)


def lid_labels(path: Path, ckpt: dict, dict_path, n: int) -> list[str]:
    candidates = []
    if dict_path:
        candidates.append(("--dict", read_label_file(Path(dict_path))))
    symbols = dictionary_symbols(ckpt.get("task_state"))
    if symbols:
        candidates.append(("the checkpoint's task state", symbols))
    if (path.parent / "dict.lang.txt").exists():
        candidates.append(("dict.lang.txt", read_label_file(path.parent / "dict.lang.txt")))
    for source, labels in candidates:
        if len(labels) == n:
            return labels
        if source == "--dict":
            raise CheckpointError(f"{dict_path}: {len(labels)} labels, the model has {n} outputs")
    raise CheckpointError(f"{path}: no language labels for its {n} outputs (put dict.lang.txt beside it or use --dict)")


def fairseq_adapters(path: Path, base: dict, adapter_dicts: dict, corpus_keys: list, dict_path,
                     base_symbols: list[str] | None) -> Adapters:
    """Languages of ckpt["adapter"] (mms1b_all.pt) or, without it, of cfg.task.multi_corpus_keys (one slot each)."""
    languages = sorted(adapter_dicts) if adapter_dicts else list(corpus_keys)

    def load_fn(lang: str):
        if adapter_dicts:
            # as fairseq's infer.py: overlay the language's tensors on the base model, then use slot 0
            entry = adapter_dicts[lang]
            merged = {k: v for k, v in base.items() if ".adapter_layer." in k or k.startswith("w2v_encoder.proj.")}
            merged.update(entry.get("model") or {})
            weights = translate(merged, slot=0)
            symbols = dictionary_symbols(entry.get("task_state"))
        else:
            weights = translate({k: v for k, v in base.items()
                                 if ".adapter_layer." in k or k.startswith("w2v_encoder.proj.")},
                                slot=corpus_keys.index(lang))
            symbols = base_symbols
        if dict_path:
            vocab = read_vocabulary_file(dict_path)
        elif symbols:
            vocab = Vocabulary.from_fairseq_symbols(symbols)
        else:
            raise CheckpointError(f"{path}: no dictionary for language '{lang}' (give its dict file with --dict)")
        weights = {k: v for k, v in weights.items() if ".adapter_layer." in k or k.startswith("lm_head.")}
        return weights, vocab

    return Adapters(languages=languages, load_fn=load_fn, source=str(path))
