"""Checkpoint loaders (mms/checkpoints/{fairseq,huggingface}.py) and fairseq dict files (mms/text/vocab.py):
name translation, config reading, per-language adapters and vocabularies, and one-line errors for bad input."""

import shutil

import pytest
import torch

from mms.checkpoints import CheckpointError, UnknownLanguageError, load_checkpoint
from mms.checkpoints.fairseq import (
    ENCODER_PREFIX,
    architecture,
    canonical_name,
    fairseq_name,
    parse_conv_layers,
    translate,
)
from mms.text.vocab import FAIRSEQ_SPECIALS, Vocabulary, VocabularyError
from tests.conftest import LANGS
from tests.factory import fairseq_state, fairseq_symbols, random_model, tiny_config

# ---------------------------------------------------------------------------------------------------------
# fairseq KEY_TABLE


@pytest.fixture(scope="module", params=["layer", "group"])
def mode_model(request):
    if request.param == "layer":
        cfg = tiny_config()
    else:  # wav2vec2-base style: group norm on the first conv only, post-LN transformer
        cfg = tiny_config(feat_extract_norm="group", do_stable_layer_norm=False)
    return random_model(cfg, LANGS, seed=3)


def test_key_table_round_trip(mode_model):
    group = mode_model.cfg.feat_extract_norm == "group"
    names = list(mode_model.state)
    assert any(".adapter_layer." in n for n in names) and "lm_head.weight" in names
    assert any(n.endswith("conv.weight_g") for n in names)
    fairseq_names = [fairseq_name(n, group_norm=group) for n in names]
    assert len(set(fairseq_names)) == len(names), "two canonical names map to one fairseq name"
    for name, fs in zip(names, fairseq_names):
        assert canonical_name(fs) == name, (name, fs)
        if name.startswith("wav2vec2."):  # pretrained files (base_300m.pt) have no w2v_encoder prefix
            bare = fairseq_name(name, group_norm=group, prefix="")
            assert bare == fs[len(ENCODER_PREFIX):]
            assert canonical_name(bare) == name, (name, bare)


@pytest.mark.parametrize("fs, canonical", [
    ("w2v_encoder.w2v_model.feature_extractor.conv_layers.0.0.weight",
     "wav2vec2.feature_extractor.conv_layers.0.conv.weight"),
    ("w2v_encoder.w2v_model.feature_extractor.conv_layers.3.2.1.bias",  # layer mode: Sequential(LN-wrapper)
     "wav2vec2.feature_extractor.conv_layers.3.layer_norm.bias"),
    ("w2v_encoder.w2v_model.feature_extractor.conv_layers.0.2.weight",  # group mode: GroupNorm
     "wav2vec2.feature_extractor.conv_layers.0.layer_norm.weight"),
    ("w2v_encoder.w2v_model.layer_norm.weight", "wav2vec2.feature_projection.layer_norm.weight"),
    ("w2v_encoder.w2v_model.post_extract_proj.bias", "wav2vec2.feature_projection.projection.bias"),
    ("w2v_encoder.w2v_model.encoder.pos_conv.0.weight_g", "wav2vec2.encoder.pos_conv_embed.conv.weight_g"),
    ("w2v_encoder.w2v_model.encoder.layers.11.self_attn.k_proj.weight",
     "wav2vec2.encoder.layers.11.attention.k_proj.weight"),
    ("w2v_encoder.w2v_model.encoder.layers.1.self_attn.out_proj.bias",
     "wav2vec2.encoder.layers.1.attention.out_proj.bias"),
    ("w2v_encoder.w2v_model.encoder.layers.0.self_attn_layer_norm.weight",
     "wav2vec2.encoder.layers.0.layer_norm.weight"),
    ("w2v_encoder.w2v_model.encoder.layers.0.final_layer_norm.weight",
     "wav2vec2.encoder.layers.0.final_layer_norm.weight"),
    ("w2v_encoder.w2v_model.encoder.layers.2.fc1.weight",
     "wav2vec2.encoder.layers.2.feed_forward.intermediate_dense.weight"),
    ("w2v_encoder.w2v_model.encoder.layers.2.fc2.bias", "wav2vec2.encoder.layers.2.feed_forward.output_dense.bias"),
    ("w2v_encoder.w2v_model.encoder.layer_norm.bias", "wav2vec2.encoder.layer_norm.bias"),
    ("w2v_encoder.w2v_model.encoder.layers.4.adapter_layer.W_a",
     "wav2vec2.encoder.layers.4.adapter_layer.linear_1.weight"),
    ("w2v_encoder.w2v_model.encoder.layers.4.adapter_layer.b_b",
     "wav2vec2.encoder.layers.4.adapter_layer.linear_2.bias"),
    ("w2v_encoder.w2v_model.encoder.layers.4.adapter_layer.ln_W",
     "wav2vec2.encoder.layers.4.adapter_layer.norm.weight"),
    ("w2v_encoder.proj.weight", "lm_head.weight"),
    ("pooling_layer.linear.bias", "projector.bias"),
    ("pooling_layer.projection.weight", "classifier.weight"),
    ("encoder.layers.0.fc1.weight", "wav2vec2.encoder.layers.0.feed_forward.intermediate_dense.weight"),
])
def test_key_table_known_fairseq_names(fs, canonical):
    assert canonical_name(fs) == canonical


@pytest.mark.parametrize("fs", [
    "w2v_encoder.w2v_model.mask_emb", "mask_emb", "quantizer.vars",
    "w2v_encoder.w2v_model.quantizer.weight_proj.weight",
    "project_q.weight", "final_proj.bias", "w2v_encoder.w2v_model.encoder.layers.0.something.weight",
])
def test_unused_fairseq_names_are_dropped(fs):
    assert canonical_name(fs) is None


def test_translate_round_trip_of_tensors(mode_model):
    group = mode_model.cfg.feat_extract_norm == "group"
    fs = fairseq_state(mode_model.state, mode_model.cfg)
    assert ENCODER_PREFIX + "mask_emb" in fs
    if group:
        assert ENCODER_PREFIX + "feature_extractor.conv_layers.0.2.weight" in fs
    out = translate(fs)
    expected = mode_model.canonical_state()  # weight norm folded, default language's adapters
    assert set(out) == set(expected)
    for key, value in expected.items():
        assert out[key].shape == value.shape and torch.allclose(out[key], value, atol=1e-6), key


def test_translate_takes_the_adapter_slot(tiny):
    slots = [{**tiny.state, **tiny.adapters[lang]} for lang in ("eng", "fra")]
    fs = fairseq_state(tiny.state, tiny.cfg, slots=2, slot_values=slots)
    assert fs[ENCODER_PREFIX + "encoder.layers.0.adapter_layer.W_a"].shape[0] == 2
    for slot, lang in enumerate(("eng", "fra")):
        out = translate(fs, slot=slot)
        for key, value in tiny.adapters[lang].items():
            if ".adapter_layer." in key:
                assert torch.equal(out[key], value), (lang, key)


def test_translate_splits_old_in_proj():
    hidden = 4
    weight = torch.arange(3 * hidden * hidden, dtype=torch.float32).reshape(3 * hidden, hidden)
    bias = torch.arange(3 * hidden, dtype=torch.float32) + 1000
    prefix = ENCODER_PREFIX + "encoder.layers.0.self_attn."
    out = translate({prefix + "in_proj_weight": weight, prefix + "in_proj_bias": bias})
    attn = "wav2vec2.encoder.layers.0.attention."
    assert set(out) == {attn + f"{p}_proj.{k}" for p in "qkv" for k in ("weight", "bias")}
    for i, p in enumerate("qkv"):
        assert torch.equal(out[attn + f"{p}_proj.weight"], weight[i * hidden:(i + 1) * hidden]), p
        assert torch.equal(out[attn + f"{p}_proj.bias"], bias[i * hidden:(i + 1) * hidden]), p


# ---------------------------------------------------------------------------------------------------------
# fairseq config


def test_parse_conv_layers():
    spec = "[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512,2,2)] + [(512,2,2)]"
    assert parse_conv_layers(spec) == [(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2
    assert parse_conv_layers("[(64, 3, 1)] * 2 + [(32, 1, 1)]") == [(64, 3, 1), (64, 3, 1), (32, 1, 1)]


@pytest.mark.parametrize("spec", [
    "__import__('os').system('x')",  # call of a name
    "os",  # name
    "[(512, 10, 5)].__class__",  # attribute access
    "len([1, 2])",  # call
    "[(512, 10, 5)] - [(1, 1, 1)]",  # other operators
    "[(512, 10, 5)] * 2 ** 3",
    "[(512, 10, lambda: 1)]",
    "[('a', 'b', 'c')]",  # strings are not layer sizes
    "[(512, 10, 5)",  # syntax error
    "[512]",  # not a list of tuples
])
def test_parse_conv_layers_refuses(spec):
    with pytest.raises(CheckpointError, match="conv_feature_layers"):
        parse_conv_layers(spec)


def expect_conv_layers_error(spec, why):
    try:
        result = parse_conv_layers(spec)
    except CheckpointError as e:
        assert "conv_feature_layers" in str(e)
        return
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"parse_conv_layers({spec!r}) raised {type(e).__name__} instead of CheckpointError: {why}")
    pytest.fail(f"parse_conv_layers({spec!r}) returned {result[:3]}... instead of raising CheckpointError: {why}")


def test_parse_conv_layers_refuses_non_triples():
    expect_conv_layers_error("[(512, 10)] * 7", "layers must be (dim, kernel, stride); build_config unpacks "
                             "three values and fails with a bare ValueError otherwise")


def test_parse_conv_layers_refuses_huge_repetition():
    expect_conv_layers_error("[(512, 10, 5)] * 1000000000000000000",
                             "an untrusted checkpoint must not make the loader allocate unbounded memory "
                             "(this literal gives MemoryError; `* 100000000` would allocate gigabytes)")


def test_architecture_model_fields_override_w2v_args():
    w2v_model = {"encoder_layers": 48, "layer_norm_first": True, "layer_type": "transformer", "adp_num": -1,
                 "adp_dim": 64, "adp_act_fn": "relu", "conv_feature_layers": "[(512, 10, 5)]"}
    cfg = {"model": {"_name": "wav2vec_ctc", "layer_type": "trf_adp", "adp_num": 1, "adp_dim": 16,
                     "adp_act_fn": "relu", "adp_trf_idx": "all", "encoder_layers": 3, "blank_weight": 0.0,
                     "w2v_args": {"model": w2v_model, "task": {"normalize": True, "sample_rate": 16000}}},
           "task": {"labels": "ltr"}}
    arch, task = architecture(cfg)
    assert (arch["layer_type"], arch["adp_num"], arch["adp_dim"], arch["adp_trf_idx"]) == ("trf_adp", 1, 16, "all")
    assert arch["encoder_layers"] == 48 and arch["layer_norm_first"] is True  # not overridden by cfg.model
    assert arch["conv_feature_layers"] == "[(512, 10, 5)]"
    assert w2v_model["adp_dim"] == 64, "architecture() modified its input"
    assert task["normalize"] is True and task["labels"] == "ltr"  # pretraining task fills in what is missing

    cfg["task"]["normalize"] = False  # the fine-tuning task wins
    cfg["model"]["adp_dim"] = None  # an unset override keeps the pretraining value
    arch, task = architecture(cfg)
    assert task["normalize"] is False and arch["adp_dim"] == 64

    plain = {"model": {"encoder_layers": 12, "adp_dim": 8}, "task": {"normalize": False}}
    assert architecture(plain) == (plain["model"], plain["task"])


# ---------------------------------------------------------------------------------------------------------
# Hugging Face directory


@pytest.fixture(scope="module")
def hf_ckpt(hf_dir):
    return load_checkpoint(hf_dir)


def test_hf_languages_and_default(hf_ckpt, tiny):
    assert hf_ckpt.format == "huggingface"
    assert hf_ckpt.languages == ["eng", "fra"]
    assert hf_ckpt.lang == "eng"  # tokenizer_config.json target_lang
    assert hf_ckpt.vocab.tokens == tiny.vocabs["eng"] and len(hf_ckpt.vocab) == LANGS["eng"]
    assert hf_ckpt.config.vocab_size == LANGS["eng"]
    assert hf_ckpt.normalize is True and hf_ckpt.normalize_eps == 1e-7


@pytest.mark.parametrize("lang", ["eng", "fra"])
def test_hf_adapter_load(hf_ckpt, tiny, lang):
    weights, vocab = hf_ckpt.adapters.load(lang)
    assert len(vocab) == LANGS[lang] and vocab.tokens == tiny.vocabs[lang]
    assert vocab.blank == 0 and vocab.word_delimiter == "|" and not vocab.silent
    expected = tiny.adapters[lang]
    assert set(weights) == set(expected)
    assert all(".adapter_layer." in k or k.startswith("lm_head.") for k in weights)
    for key, value in expected.items():
        assert torch.equal(weights[key], value), key
    assert weights["lm_head.weight"].shape[0] == LANGS[lang]


def copy_dir(src, tmp_path):
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    return dst


def test_hf_missing_adapter_file(hf_dir, tmp_path):
    model_dir = copy_dir(hf_dir, tmp_path)
    (model_dir / "adapter.fra.safetensors").unlink()
    ckpt = load_checkpoint(model_dir)
    assert "fra" in ckpt.languages  # still listed by the nested vocab.json
    with pytest.raises(CheckpointError, match=r"adapter\.fra\.safetensors"):
        ckpt.adapters.load("fra")
    ckpt.adapters.load("eng")


@pytest.mark.parametrize("asked, suggested", [("fr", "fra"), ("frx", "fra"), ("fre", "fra"), ("en", "eng")])
def test_unknown_language_of_many_suggests_close_matches(asked, suggested):
    from mms.checkpoints import check_language

    languages = ["eng", "fra"] + [f"q{i:02d}" for i in range(60)]
    with pytest.raises(UnknownLanguageError) as info:
        check_language(asked, languages, "model")
    message = str(info.value)
    assert f"'{asked}' in model (62 languages)" in message and f"close matches: {suggested}" in message, message
    other = ({"eng", "fra"} - {suggested}).pop()
    assert other not in message.split("close matches:")[1], message
    assert isinstance(info.value, CheckpointError)


def test_unknown_language_of_a_few_lists_them(hf_ckpt):
    """A model of a few languages names them all (`mms langs` cannot read a fairseq file's list)."""
    with pytest.raises(UnknownLanguageError) as info:
        hf_ckpt.adapters.load("xyz")
    assert "close matches" not in str(info.value) and str(info.value).endswith("(2 languages: eng, fra)")


def test_dir_without_config_json(hf_dir, tmp_path):
    model_dir = copy_dir(hf_dir, tmp_path)
    (model_dir / "config.json").unlink()
    with pytest.raises(CheckpointError, match="not a model directory"):
        load_checkpoint(model_dir)


def test_tokenizer_refused_for_models_with_their_own_vocabulary(hf_dir, fairseq_pt, tmp_path):
    # only Omnilingual ASR checkpoints read a SentencePiece tokenizer: elsewhere it would be silently ignored
    for model in (hf_dir, fairseq_pt):
        with pytest.raises(CheckpointError, match="for Omnilingual ASR checkpoints"):
            load_checkpoint(model, tokenizer=tmp_path / "tokenizer.model")
        assert load_checkpoint(model).languages


def test_an_adapter_directory_is_not_taken_for_a_model(hf_dir, tmp_path):
    # what `mms train-adapter` writes (adapters, vocab.json, its resumable state): named as what it is, not read
    # as a fairseq checkpoint through train_state.pt
    shutil.copy(hf_dir / "adapter.fra.safetensors", tmp_path / "adapter.xyz.safetensors")
    (tmp_path / "train_state.pt").write_bytes(b"state")
    with pytest.raises(CheckpointError, match="an adapter directory .* --model BASE --adapter"):
        load_checkpoint(tmp_path)


def test_missing_path():
    with pytest.raises(CheckpointError, match="no such model file"):
        load_checkpoint("/nonexistent/model.pt")


@pytest.mark.parametrize("broken", ["model.safetensors", "adapter.fra.safetensors"])
@pytest.mark.parametrize("damage", ["junk", "truncated"])
def test_hf_corrupt_safetensors(hf_dir, tmp_path, broken, damage):
    model_dir = copy_dir(hf_dir, tmp_path)
    data = (model_dir / broken).read_bytes()
    (model_dir / broken).write_bytes(b"garbage" if damage == "junk" else data[: len(data) // 2])
    with pytest.raises(Exception) as info:
        ckpt = load_checkpoint(model_dir)
        ckpt.adapters.load("fra")
    error = info.value
    assert isinstance(error, CheckpointError), (
        f"a corrupt {broken} must raise CheckpointError, got {type(error).__name__}: {error} "
        "(huggingface.read_tensors does not wrap safetensors' load_file)")
    assert broken in str(error) and "\n" not in str(error), str(error)


def test_hf_corrupt_pytorch_model_bin(hf_dir, tmp_path):
    model_dir = copy_dir(hf_dir, tmp_path)
    (model_dir / "model.safetensors").unlink()
    (model_dir / "pytorch_model.bin").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match=r"pytorch_model\.bin"):
        load_checkpoint(model_dir)


def test_hf_pytorch_model_bin_of_the_older_torch_format(hf_dir, tmp_path):
    """torch.save(_use_new_zipfile_serialization=False) files (older published models) cannot be memory-mapped."""
    from safetensors.torch import load_file

    model_dir = copy_dir(hf_dir, tmp_path)
    weights = load_file(model_dir / "model.safetensors")
    (model_dir / "model.safetensors").unlink()
    torch.save(weights, model_dir / "pytorch_model.bin", _use_new_zipfile_serialization=False)
    loaded = load_checkpoint(model_dir)
    reference = load_checkpoint(hf_dir)
    assert loaded.state_dict.keys() == reference.state_dict.keys()
    assert all(torch.equal(loaded.state_dict[k], reference.state_dict[k]) for k in reference.state_dict)


class Payload:  # pickled as a call of os.system: what a malicious weights file holds
    def __reduce__(self):
        import os

        return os.system, ("touch PWNED",)


def test_a_weights_file_holding_code_is_refused_without_running_it(hf_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model_dir = copy_dir(hf_dir, tmp_path)
    (model_dir / "model.safetensors").unlink()
    torch.save({"w": torch.zeros(1), "x": Payload()}, model_dir / "pytorch_model.bin")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(model_dir)
    message = str(info.value)
    assert "pytorch_model.bin: refused: it holds Python objects" in message and "system" in message
    assert "weights_only" not in message and "\n" not in message  # (torch's advice would run the code)
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("name, content, reason", [
    ("config.json", "[1]", "not a JSON object"),
    ("config.json", "null", "not a JSON object"),
    ("vocab.json", "{}", "not a vocabulary"),
    ("vocab.json", '["a"]', "not a JSON object"),
    ("vocab.json", '{"fra": ["a"], "eng": {"a": 0}}', "not a vocabulary"),
    ("vocab.json", '{"fra": {"a": "0"}}', "not a vocabulary"),
    ("tokenizer_config.json", "[1]", "not a JSON object"),
    ("preprocessor_config.json", "null", "not a JSON object"),
])
def test_malformed_model_json_is_a_checkpoint_error_naming_the_file(hf_dir, tmp_path, name, content, reason):
    model_dir = copy_dir(hf_dir, tmp_path)
    (model_dir / name).write_text(content)
    with pytest.raises(CheckpointError, match=f"{name}: {reason}"):
        load_checkpoint(model_dir).adapters.load("fra")


def test_a_config_that_does_not_describe_the_weights_is_a_checkpoint_error(hf_dir, tmp_path):
    import json

    from mms.checkpoints import instantiate

    model_dir = copy_dir(hf_dir, tmp_path)
    config = json.loads((model_dir / "config.json").read_text())
    config["num_hidden_layers"] += 1
    (model_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="the weights do not fit the model's configuration \\(Missing key"):
        instantiate(load_checkpoint(model_dir))


def test_an_adapter_directory_of_the_models_own_language_replaces_its_layers(tmp_path):
    """`--adapter DIR` trained for the language the model is loaded in (demo's eng): the directory's layers run,
    not the model's own (they stayed in place, the trained ones unused)."""
    import json

    from safetensors.torch import save_file

    from mms.checkpoints import add_adapter_dir, instantiate
    from mms.hub import demo_model

    base = load_checkpoint(demo_model("asr"))
    assert base.lang == "eng"
    weights, vocab = base.adapters.load("eng")
    tokens = [t for t in vocab.tokens if t != "<unk>"][:-1]  # one symbol fewer: a head of another size
    trained = {k: v.clone() + 0.5 if ".adapter_layer." in k else v.clone() for k, v in weights.items()}
    trained["lm_head.weight"], trained["lm_head.bias"] = trained["lm_head.weight"][:len(tokens)], \
        trained["lm_head.bias"][:len(tokens)]
    folder = tmp_path / "eng-adapter"
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in trained.items()}, folder / "adapter.eng.safetensors")
    (folder / "vocab.json").write_text(json.dumps({"eng": {t: i for i, t in enumerate(tokens)}}))
    checkpoint = load_checkpoint(demo_model("asr"))
    add_adapter_dir(checkpoint, folder)
    model = instantiate(checkpoint)
    params = {f"wav2vec2.{k}" if not k.startswith("lm_head.") else k: v for k, v in model.named_parameters()}
    params.update(dict(model.named_parameters()))
    assert len(checkpoint.vocab) == len(tokens) == model.lm_head.out_features
    assert all(torch.equal(params[k], v) for k, v in trained.items() if k in params)
    assert sum(k in params for k in trained) == len(trained)


# ---------------------------------------------------------------------------------------------------------
# fairseq file


def write_dict_file(path, symbols):
    path.write_text("".join(f"{s} {100 - i}\n" for i, s in enumerate(symbols)), encoding="utf-8")
    return path


def test_fairseq_dict_file_matches_pickled_dictionary(fairseq_pt, tiny, tmp_path):
    dict_path = write_dict_file(tmp_path / "dict.fra.txt", tiny.vocabs["fra"][4:])
    assert dict_path.read_text().startswith("| 100\na 99\n")
    pickled = load_checkpoint(fairseq_pt).adapters.load("fra")[1]
    from_file_ckpt = load_checkpoint(fairseq_pt, dict_path=dict_path)
    from_file = from_file_ckpt.adapters.load("fra")[1]
    assert pickled.tokens == fairseq_symbols(tiny.vocabs["fra"])
    assert from_file.tokens == pickled.tokens
    assert (from_file.blank, from_file.silent, from_file.word_delimiter) == (
        pickled.blank, pickled.silent, pickled.word_delimiter)
    assert from_file_ckpt.vocab.tokens == pickled.tokens


def test_fairseq_vocab_and_adapters(fairseq_pt, tiny):
    ckpt = load_checkpoint(fairseq_pt)
    assert ckpt.format == "fairseq" and ckpt.languages == ["eng", "fra"]
    assert ckpt.normalize_eps == 1e-5
    for lang in ("eng", "fra"):
        weights, vocab = ckpt.adapters.load(lang)
        assert set(weights) == set(tiny.adapters[lang])
        for key, value in tiny.adapters[lang].items():
            assert torch.equal(weights[key], value), (lang, key)
        assert len(vocab) == LANGS[lang]


@pytest.mark.parametrize("cut", [0.5, 0.98])
def test_fairseq_truncated_file(fairseq_pt, tmp_path, cut):
    data = fairseq_pt.read_bytes()
    path = tmp_path / "truncated.pt"
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(CheckpointError, match="truncated.pt"):
        load_checkpoint(path)


@pytest.mark.parametrize("content", [b"hello world\n", b"", b"PK\x03\x04 not really a zip"])
def test_not_a_checkpoint_file(tmp_path, content):
    path = tmp_path / "notes.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="notes.pt"):
        load_checkpoint(path)


def test_torch_file_that_is_not_fairseq(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"encoder.weight": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="not a fairseq checkpoint"):
        load_checkpoint(path)
    torch.save({"model": {"unrelated.weight": torch.zeros(2)}}, path)
    with pytest.raises(CheckpointError, match="no wav2vec2 encoder weights"):
        load_checkpoint(path)


# ---------------------------------------------------------------------------------------------------------
# fairseq dict files


def read_dict(tmp_path, text, name="dict.ltr.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return Vocabulary.from_fairseq_dict_file(path)


def test_dict_file_basic(tmp_path):
    vocab = read_dict(tmp_path, "| 5\na 3\nb 1\n")
    assert vocab.tokens == list(FAIRSEQ_SPECIALS) + ["|", "a", "b"]
    assert vocab.blank == 0 and vocab.silent == frozenset({0, 2}) and vocab.word_delimiter == "|"


def test_dict_file_splits_on_last_space(tmp_path):
    vocab = read_dict(tmp_path, "| 5\nnew york 3\n  2\na b c -1\n")
    assert vocab.tokens[4:] == ["|", "new york", " ", "a b c"]


def test_dict_file_overwrite_flag(tmp_path):
    # as fairseq's Dictionary.add_from_file: the flagged duplicate is appended again (indices stay line numbers)
    vocab = read_dict(tmp_path, "a 3\nb 2\na 1 #fairseq:overwrite\n<unk> 1 #fairseq:overwrite\n")
    assert vocab.tokens[4:] == ["a", "b", "a", "<unk>"]


def test_dict_file_specials(tmp_path):
    vocab = read_dict(tmp_path, "<ctc_blank> 1\n<sep> 1\na 1\n")
    assert vocab.blank == 4 and vocab.word_delimiter == "<sep>"


@pytest.mark.parametrize("text, line", [("a 3\nb 2\na 1\n", 3), ("| 5\n<unk> 1\n", 2), ("x 1\ny 1\ny 1\n", 3)])
def test_dict_file_duplicate(tmp_path, text, line):
    with pytest.raises(VocabularyError, match=rf"dict\.ltr\.txt:{line}: duplicate symbol"):
        read_dict(tmp_path, text)


@pytest.mark.parametrize("text, line", [("| 5\nabc\n", 2), ("a 1\nb 2\nc x\n", 3), ("a 3.5\n", 1), ("a\tb\n", 1)])
def test_dict_file_bad_line(tmp_path, text, line):
    with pytest.raises(VocabularyError, match=rf"dict\.ltr\.txt:{line}: expected"):
        read_dict(tmp_path, text)


def test_dict_file_trailing_whitespace_as_fairseq(tmp_path):
    # fairseq parses `line.rstrip().rsplit(" ", 1)`: trailing blanks after the count are accepted
    try:
        vocab = read_dict(tmp_path, "| 5 \na 3\t\nb 1\r\n")
    except VocabularyError as e:
        pytest.fail(f"fairseq accepts trailing whitespace after the count, mms refuses: {e}")
    assert vocab.tokens[4:] == ["|", "a", "b"]


def test_an_adapter_of_another_base_model_is_refused_in_one_line(hf_dir, tmp_path):
    """--adapter trained on a model of another width: one CheckpointError naming the adapter (an internal error
    it was), and the model keeps the adapter it had."""
    from mms.runner import ModelRunner
    from tests.factory import write_hf

    other = write_hf(random_model(tiny_config(hidden_size=48), {"xyz": 12}, seed=3), tmp_path / "other")
    checkpoint = load_checkpoint(hf_dir)
    runner = ModelRunner(checkpoint, "cpu", "float32")
    runner.set_language("eng")
    before = runner.model.lm_head.weight.clone()
    from mms.checkpoints import add_adapter_dir

    add_adapter_dir(checkpoint, other)
    with pytest.raises(CheckpointError, match="the adapter of 'xyz' does not fit this model .*shape"):
        runner.set_language("xyz")
    assert torch.equal(runner.model.lm_head.weight, before) and runner.lang == "eng"
