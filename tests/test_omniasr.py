"""Omnilingual ASR CTC models (mms/checkpoints/omniasr.py, omniasr_hf.py, mms/text/sentencepiece_vocab.py): one tiny
random model written as Meta's fairseq2 .pt and as a transformers omniasr_ctc directory, against transformers'
OmniASRForCTC and the reference decoders; the published sizes on the meta device; refused checkpoints; the bf16
memory-map path; long audio; `mms asr`."""

import json
import mmap
import os
import shutil
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf
import torch

from mms.asr import ASR
from mms.checkpoints import CheckpointError, instantiate, load_checkpoint
from mms.checkpoints.omniasr import (HEADS, KEY_TABLE, POS, build_config, canonical_name, check_complete,
                                     fairseq2_name, translate)
from mms.decoding.ctc import Unit, greedy_decode, split_pieces
from mms.models.wav2vec2 import Wav2Vec2Config, build_model
from mms.runner import ModelRunner
from mms.text.sentencepiece_vocab import from_sentencepiece, from_tokenizer_json
from mms.text.vocab import Vocabulary
from tests.conftest import random_audio
from tests.factory import (omniasr_state, random_omniasr_model, write_omniasr, write_omniasr_hf,
                           write_sentencepiece)

transformers = pytest.importorskip("transformers")
if not hasattr(transformers, "OmniASRForCTC"):  # transformers < 5.25
    pytest.skip("transformers has no OmniASRForCTC (needs >= 5.25)", allow_module_level=True)

LENGTHS = [16000, 23456, 9000]  # a padded batch: three lengths


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The tokenizers, one random model, and that model in both layouts."""
    root = tmp_path_factory.mktemp("omniasr")
    literal = write_sentencepiece(root / "tokenizers" / "literal.model", space="literal")
    escaped = write_sentencepiece(root / "tokenizers" / "escaped.model", space="escaped")
    model = random_omniasr_model(len(from_sentencepiece(literal)), seed=7)
    pt = write_omniasr(model, root / "pt" / "omniASR-CTC-tiny.pt", tokenizer=literal)
    hf = write_omniasr_hf(model, root / "hf", literal)
    return {"root": root, "literal": literal, "escaped": escaped, "model": model, "pt": pt, "hf": hf}


@pytest.fixture(scope="module")
def waves():
    return [random_audio(n, seed=i) for i, n in enumerate(LENGTHS)]


@pytest.fixture(scope="module")
def reference(files, waves):
    """transformers' OmniASRForCTC and processor on the directory: logits of the padded batch, and its transcripts
    (generate + processor.decode, as the model card shows)."""
    model, info = transformers.OmniASRForCTC.from_pretrained(files["hf"], output_loading_info=True)
    assert not any(info.values()), info  # the directory we write is exactly what transformers reads
    processor = transformers.AutoProcessor.from_pretrained(files["hf"])
    inputs = processor(waves, sampling_rate=16000)
    with torch.no_grad():
        logits = model.eval()(**inputs).logits
        ids = model.generate(**inputs)
    texts = [processor.decode(row, skip_special_tokens=True) for row in ids]
    return {"logits": logits, "texts": texts}


def max_diff(logits, frames, ref_logits) -> float:
    return max(float((logits[i, :n] - ref_logits[i, :n]).abs().max()) for i, n in enumerate(frames))


# ---------------------------------------------------------------------------------------------------------
# names and layouts


def test_fairseq2_names_round_trip(files):
    names = list(files["model"].state)
    written = [fairseq2_name(n) for n in names]
    assert len(set(written)) == len(names)
    assert all(canonical_name(f) == n for n, f in zip(names, written))
    layers = files["model"].cfg.num_hidden_layers
    assert len(omniasr_state(files["model"])) == 39 + 16 * layers  # as the published files: 423 for 24 layers
    assert canonical_name("encoder.layers.3.self_attn.output_proj.weight") == \
        "wav2vec2.encoder.layers.3.attention.out_proj.weight"
    assert canonical_name("encoder_frontend.pos_encoder.conv.weight_g") == POS + "weight_g"
    assert canonical_name("final_proj.bias") == "lm_head.bias" and len(KEY_TABLE) == 13


def test_both_layouts_give_the_same_checkpoint(files):
    pt, hf = load_checkpoint(files["pt"]), load_checkpoint(files["hf"])
    assert (pt.format, hf.format) == ("omniasr-fairseq2", "omniasr-huggingface")
    assert pt.config == hf.config and pt.config.num_attention_heads == HEADS == 16
    assert pt.state_dict.keys() == hf.state_dict.keys()
    assert all(torch.equal(pt.state_dict[k], hf.state_dict[k]) for k in pt.state_dict)
    assert pt.vocab == hf.vocab and pt.vocab.tokens[:5] == ["<s>", "<pad>", "</s>", "<unk>", " "]
    for ckpt in (pt, hf):  # what lets the MMS machinery run it unchanged
        assert ckpt.adapters is None and ckpt.lang is None and ckpt.languages == [] and ckpt.language_free
        assert ckpt.normalize and ckpt.normalize_eps == 1e-5


def test_tokenizer_json_and_sentencepiece_agree(files):
    sp = from_sentencepiece(files["literal"])
    js = from_tokenizer_json(files["hf"] / "tokenizer.json")
    assert sp == js and sp.blank == 0 and sp.silent == {1, 2, 3} and sp.word_delimiter == " "
    assert from_sentencepiece(files["escaped"]).word_delimiter == "\u2581"


# ---------------------------------------------------------------------------------------------------------
# parity


def test_logits_equal_transformers_on_a_padded_batch(files, waves, reference):
    for path in (files["pt"], files["hf"]):
        runner = ModelRunner(load_checkpoint(path), "cpu", "float32")
        logits, frames = runner.forward([runner.standardize(w) for w in waves])
        assert frames == [runner.frames(n) for n in LENGTHS]
        diff = max_diff(logits, frames, reference["logits"])
        print(f"{path.name}: max |logit diff| vs transformers OmniASRForCTC = {diff:.2e}")
        assert diff < 1e-4


def test_a_wrong_head_count_or_no_final_layer_norm_is_caught(files, waves, reference, tmp_path):
    """What the parity test guards against: 8 heads instead of 16 (a third-party converter's head_dim=64 guess
    gives the wrong count), or no final encoder LayerNorm, move the logits far past its 1e-4."""
    checkpoint = load_checkpoint(files["pt"])
    runner = ModelRunner(checkpoint, "cpu", "float32")
    batch = [runner.standardize(w) for w in waves]

    wrong_heads = replace(checkpoint, config=replace(checkpoint.config, num_attention_heads=8))
    logits, frames = ModelRunner(wrong_heads, "cpu", "float32").forward(batch)
    heads_diff = max_diff(logits, frames, reference["logits"])

    runner.model.wav2vec2.encoder.layer_norm = torch.nn.Identity()
    logits, frames = runner.forward(batch)
    norm_diff = max_diff(logits, frames, reference["logits"])
    print(f"8 heads: {heads_diff:.2e}; no final layer norm: {norm_diff:.2e}")
    assert heads_diff > 1e-3 and norm_diff > 1e-3

    # and a file without the final LayerNorm is refused, naming it
    pt = write_omniasr(files["model"], tmp_path / "no_norm.pt", tokenizer=files["literal"],
                       drop=("encoder.layer_norm.weight", "encoder.layer_norm.bias"))
    with pytest.raises(CheckpointError, match="encoder.layer_norm"):
        load_checkpoint(pt)


def fairseq2_decode(logits: torch.Tensor, frames: int, tokenizer) -> str:
    """omnilingual_asr's pipeline: argmax, drop consecutive repeats, SentencePiece decode without specials."""
    import sentencepiece

    sp = sentencepiece.SentencePieceProcessor(model_file=str(tokenizer))
    seq = logits[:frames].argmax(-1)
    keep = torch.ones_like(seq, dtype=torch.bool)
    keep[1:] = seq[1:] != seq[:-1]
    ids = [i for i in seq[keep].tolist() if not (sp.is_control(i) or sp.is_unknown(i))]
    return sp.decode(ids).strip()


def test_transcripts_identical_in_both_layouts_and_to_the_references(files, waves, reference):
    texts = {}
    for path in (files["pt"], files["hf"]):
        with ASR.load(path, device="cpu", dtype="float32") as asr:
            texts[path] = [t.text for t in asr.transcribe(waves)]
    assert texts[files["pt"]] == texts[files["hf"]]
    assert texts[files["pt"]] == [t.strip() for t in reference["texts"]]
    runner = ModelRunner(load_checkpoint(files["pt"]), "cpu", "float32")
    frames = [runner.frames(n) for n in LENGTHS]
    fs2 = [fairseq2_decode(reference["logits"][i], n, files["literal"]) for i, n in enumerate(frames)]
    assert texts[files["pt"]] == fs2
    assert all(" " in t for t in fs2)  # several words each: word boundaries are exercised


def test_escaped_space_tokenizer_decodes_as_sentencepiece(files, waves, tmp_path):
    """A SentencePiece model with "▁" (escaped whitespace): the same pieces, the same text."""
    pt = write_omniasr(files["model"], tmp_path / "escaped" / "model.pt", tokenizer=files["escaped"])
    with ASR.load(pt, device="cpu") as asr:
        results = asr.transcribe(waves, timestamps="word")
        logits, frames = asr.runner.forward([asr.runner.standardize(w) for w in waves])
    assert [r.text for r in results] == [fairseq2_decode(logits[i], n, files["escaped"]) for i, n in enumerate(frames)]
    assert all([w.text for w in r.words] == r.text.split() for r in results)


def test_pieces_carrying_the_delimiter_make_words():
    """SentencePiece pieces like "▁the" (not in the char-level omniASR tokenizers, but in SentencePiece models in
    general): split into a boundary and the text, with the piece's frames."""
    tokens = ["<s>", "<pad>", "</s>", "<unk>", "\u2581", "\u2581the", "\u2581c", "at", "s\u2581"]
    vocab = Vocabulary(tokens=tokens, blank=0, word_delimiter="\u2581", silent=frozenset({1, 2, 3}),
                       split_pieces=True)
    frames = np.array([0, 5, 5, 0, 6, 7, 7, 0, 4, 8, 1, 0])
    hyp = greedy_decode(frames, vocab)
    assert hyp.text == "the cat s"
    assert [(w.text, w.start, w.end) for w in hyp.words(vocab, 0.02)] == [
        ("the", 0.02, 0.06), ("cat", 0.08, 0.14), ("s", 0.18, 0.2)]
    assert [c.text for c in hyp.chars(vocab)] == ["the", "c", "at", "s"]
    mms_vocab = Vocabulary(tokens=["<pad>", "|", "a|"], word_delimiter="|")  # split_pieces off: unchanged
    assert split_pieces([Unit("a|", 0, 1)], mms_vocab) == [Unit("a|", 0, 1)]


# ---------------------------------------------------------------------------------------------------------
# published sizes, on the meta device


PUBLISHED = {  # omnilingual-asr README (v1): D, layers, FFN, parameters
    "300M": (1024, 24, 4096, 325_494_996),
    "1B": (1280, 48, 5120, 975_065_300),
    "3B": (2048, 60, 8192, 3_080_423_636),
    "7B": (2048, 128, 8192, 6_504_786_132),
}


@pytest.mark.parametrize("size", list(PUBLISHED))
def test_parameter_counts_of_the_published_sizes(size):
    """A fairseq2 state dict of each published shape (meta tensors: nothing allocated) has the published count;
    the loader reads the architecture back from those shapes alone, with 16 heads."""
    hidden, layers, ffn, published = PUBLISHED[size]
    config = Wav2Vec2Config(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=16,
                            intermediate_size=ffn, conv_bias=True, feat_extract_norm="layer",
                            do_stable_layer_norm=True, vocab_size=9812)
    with torch.device("meta"):
        canonical = build_model(config).state_dict()
        weight = canonical.pop(POS + "weight")  # stored with its weight norm, as fairseq2 saves it
        canonical[POS + "weight_v"] = weight
        canonical[POS + "weight_g"] = torch.empty(1, 1, weight.shape[2])
    fs2 = {fairseq2_name(k): v for k, v in canonical.items()}
    assert len(fs2) == 39 + 16 * layers
    assert sum(v.numel() for v in fs2.values()) == published

    state = translate(fs2, size)
    read = build_config(state, size)
    check_complete(state, read, size)
    assert read == config
    with torch.device("meta"):
        model = build_model(read)
    # the folded positional conv has no separate weight_g (kernel 128 values)
    assert sum(p.numel() for p in model.parameters()) + 128 == published


# ---------------------------------------------------------------------------------------------------------
# what is refused


@pytest.mark.parametrize("extra, kind", [
    ({"quantizer.entry_proj.weight": torch.zeros(2, 2), "final_target_proj.weight": torch.zeros(2, 2)},
     "self-supervised"),
    ({"llama_decoder.layers.0.self_attn.q_proj.weight": torch.zeros(2, 2), "encoder_proj.weight": torch.zeros(2, 2),
      "text_frontend.embed.weight": torch.zeros(2, 2)}, "LLM-ASR"),
])
def test_self_supervised_and_llm_checkpoints_are_refused(files, tmp_path, extra, kind):
    pt = write_omniasr(files["model"], tmp_path / "other.pt", tokenizer=files["literal"], extra=extra)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(pt)
    message = str(e.value)
    assert kind in message and "omniASR-CTC" in message and "\n" not in message

    r = subprocess.run([sys.executable, "-m", "mms", "asr", "--model", str(pt), str(tmp_path / "none.wav")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and kind in r.stderr


def test_llm_directory_is_refused(files, tmp_path):
    folder = tmp_path / "llm"
    shutil.copytree(files["hf"], folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "omniasr"}))
    with pytest.raises(CheckpointError, match="LLM-ASR"):
        load_checkpoint(folder)


def test_tokenizer_lookup(files, tmp_path):
    """--tokenizer (or --dict), else the .model beside it with as many pieces as the head, else a clear error."""
    folder = tmp_path / "lookup"
    pt = write_omniasr(files["model"], folder / "omniASR-CTC-tiny.pt")
    with pytest.raises(CheckpointError, match="no SentencePiece tokenizer with 31 pieces.*--tokenizer"):
        load_checkpoint(pt)
    assert load_checkpoint(pt, tokenizer=files["escaped"]).vocab.word_delimiter == "\u2581"
    assert load_checkpoint(pt, dict_path=files["literal"]).vocab.word_delimiter == " "

    other = random_omniasr_model(12, seed=4)  # another head size: its tokenizer must not be taken
    small = write_omniasr(other, tmp_path / "small" / "small.pt")
    with pytest.raises(CheckpointError, match="31 pieces, but small.pt has 12 outputs"):
        load_checkpoint(small, tokenizer=files["literal"])
    shutil.copy(files["literal"], folder / "a_unrelated.model")
    (folder / "b_broken.model").write_bytes(b"not a model")
    assert len(load_checkpoint(pt).vocab) == 31  # a_unrelated.model has 31 pieces too: the first that fits
    with pytest.raises(CheckpointError, match="not a SentencePiece model"):
        load_checkpoint(pt, tokenizer=folder / "b_broken.model")


# ---------------------------------------------------------------------------------------------------------
# the 7B memory path


def file_mappings(path, shared: bool = False) -> list[tuple[int, int]]:
    """Address ranges where this process maps `path` privately (copy-on-write), or shared."""
    path = os.path.realpath(path)
    ranges = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            parts = line.split()
            if len(parts) >= 6 and parts[5] == path and parts[1].endswith("s" if shared else "p"):
                low, high = (int(x, 16) for x in parts[0].split("-"))
                ranges.append((low, high))
    return ranges


def mapped(tensor: torch.Tensor, ranges) -> bool:
    return any(low <= tensor.data_ptr() < high for low, high in ranges)


linux_only = pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="reads the process's memory map")


@linux_only
def test_bf16_by_memory_map_without_a_float32_copy(files, tmp_path):
    """Weights stay in the file's memory map until the model is built; building in bf16 converts tensor by tensor.
    A bf16 file is not copied at all; a float32 file is never copied as float32 (only the folded positional conv,
    computed from its weight norm, is new memory)."""
    bf16_pt = write_omniasr(files["model"], tmp_path / "bf16" / "model.pt", files["literal"], dtype=torch.bfloat16)
    checkpoint = load_checkpoint(bf16_pt)
    ranges = file_mappings(bf16_pt)
    assert ranges and all(v.dtype == torch.bfloat16 for v in checkpoint.state_dict.values())
    assert all(mapped(v, ranges) for k, v in checkpoint.state_dict.items() if k != POS + "weight")
    model = instantiate(checkpoint, "cpu", torch.bfloat16)
    params = dict(model.named_parameters())
    assert all(params[k].data_ptr() == v.data_ptr() for k, v in checkpoint.state_dict.items())  # not copied

    checkpoint = load_checkpoint(files["pt"])  # float32
    ranges = file_mappings(files["pt"])
    model = instantiate(checkpoint, "cpu", torch.bfloat16)
    assert all(p.dtype == torch.bfloat16 and not mapped(p, ranges) for p in model.parameters())
    assert all(mapped(v, ranges) for k, v in checkpoint.state_dict.items() if k != POS + "weight")


@linux_only
def test_a_map_too_large_for_copy_on_write_is_mapped_shared(files, waves, tmp_path, monkeypatch):
    """Linux refuses a copy-on-write map larger than RAM + swap (the 26 GB 7B file on a 24 GB machine: "unable to
    mmap ...: Cannot allocate memory (12)"); the loader maps the file shared then, and running the model leaves the
    file as it was."""
    import hashlib

    from torch.utils.serialization import config

    pt = shutil.copy(files["pt"], tmp_path / "model.pt")
    shutil.copy(files["literal"], tmp_path)
    load = torch.load

    def small_machine(path, *args, **kwargs):
        if kwargs.get("mmap") and config.load.mmap_flags != mmap.MAP_SHARED:
            raise RuntimeError(f"unable to mmap 26019796387 bytes from file <{path}>: Cannot allocate memory (12)")
        return load(path, *args, **kwargs)

    monkeypatch.setattr(torch, "load", small_machine)
    before = hashlib.sha256(pt.read_bytes()).hexdigest()
    checkpoint = load_checkpoint(pt)
    ranges = file_mappings(pt, shared=True)
    assert ranges and all(mapped(v, ranges) for k, v in checkpoint.state_dict.items() if k != POS + "weight")
    assert config.load.mmap_flags == mmap.MAP_PRIVATE  # the default is restored
    with ASR(checkpoint, device="cpu", dtype="bfloat16") as asr:
        assert all(r.text for r in asr.transcribe(waves))
    assert hashlib.sha256(pt.read_bytes()).hexdigest() == before


# ---------------------------------------------------------------------------------------------------------
# the MMS machinery: long audio, languages, the command line


def test_long_audio_in_windows(files):
    """50 s, past the reference pipeline's 40 s limit: the default windows (30 s kept, 5 s context on each side: at
    most 40 s seen at once, the longest the reference accepts) tile it; the word times stay in the input."""
    wave = random_audio(50 * 16000, seed=7)
    with ASR.load(files["pt"], device="cpu") as asr:
        assert (asr.options.chunk_seconds, asr.options.context_seconds) == (30.0, 5.0)
        windows = asr.runner.windows(wave.size, asr.options.chunk_seconds, asr.options.context_seconds)
        assert len(windows) == 2 and max(w.end - w.start for w in windows) <= 40 * 16000
        result = asr.transcribe([wave], timestamps="word")[0]
    assert result.error is None and result.duration == 50.0 and result.words
    assert 0 <= result.words[0].start and result.words[-1].end <= 50.0 and result.words[-1].end > 40


def test_lang_is_recorded_but_does_not_change_the_transcript(files, waves):
    with ASR.load(files["pt"], device="cpu") as plain, ASR.load(files["pt"], lang="fra", device="cpu") as fra:
        a, b = plain.transcribe(waves), fra.transcribe(waves)
    assert [r.text for r in a] == [r.text for r in b]
    assert {r.lang for r in a} == {None} and {r.lang for r in b} == {"fra"}


def test_mms_asr_command_line(files, waves, tmp_path):
    wavs = []
    for i, wave in enumerate(waves):
        wavs.append(tmp_path / f"a{i}.wav")
        sf.write(wavs[-1], wave, 16000)
    with ASR.load(files["pt"], device="cpu") as asr:
        expected = [r.text for r in asr.transcribe(waves)]

    def mms(*args):
        return subprocess.run([sys.executable, "-m", "mms", "asr", *map(str, args)], capture_output=True, text=True)

    r = mms("--model", files["pt"], *wavs, "--format", "jsonl", "--timestamps", "word")
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in r.stdout.splitlines()]
    assert [rec["text"] for rec in records] == expected and all(rec["words"] for rec in records)

    bare = tmp_path / "bare" / "model.pt"  # no tokenizer beside it: --dict takes a SentencePiece model
    bare.parent.mkdir()
    shutil.copy(files["pt"], bare)
    r = mms("--model", bare, "--dict", files["literal"], wavs[0], "--format", "srt")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("1\n00:00:00,") and "-->" in r.stdout

    refs = tmp_path / "refs.txt"
    refs.write_text("".join(t + "\n" for t in expected))
    r = mms("--model", files["hf"], *wavs, "--ref", refs)
    assert r.returncode == 0 and "WER 0.00% (0 errors" in r.stderr and "CER 0.00%" in r.stderr, r.stderr


def test_registry_names_every_size_and_tokenizer_version():
    from mms.hub.languages import shipped_languages
    from mms.hub.registry import registry

    models = registry()
    for size in ("300m", "1b", "3b", "7b"):
        for version, tokenizer in (("", "omniASR_tokenizer.model"), ("-v2", "omniASR_tokenizer_written_v2.model")):
            info = models[f"omniasr-ctc-{size}{version}"]
            assert info.task == "asr" and info.source == "url" and not info.adapter and info.licence == "Apache-2.0"
            assert info.url == (f"https://dl.fbaipublicfiles.com/mms/omniASR-CTC-{size.upper()}{version}.pt",
                                f"https://dl.fbaipublicfiles.com/mms/{tokenizer}")
    assert models["omniasr-ctc-7b"].params == PUBLISHED["7B"][3]
    codes = shipped_languages("omniasr")
    assert len(codes) == models["omniasr-ctc-1b"].languages == 1672 and "eng_Latn" in codes and "cmn_Hans" in codes


def test_vocabulary_and_languages_without_a_language(files):
    from mms.checkpoints import list_languages, load_vocabulary

    for path in (files["pt"], files["hf"]):
        assert list_languages(path) == []
        assert load_vocabulary(path) == load_vocabulary(path, lang="fra") == from_sentencepiece(files["literal"])
    assert load_vocabulary(files["pt"], dict_path=files["escaped"]).word_delimiter == "\u2581"


def test_a_published_name_runs_from_its_cached_files(files, tmp_path):
    """`mms asr --model omniasr-ctc-300m a.wav`: the checkpoint and its tokenizer come from the registry's URLs into
    one folder (here put into the cache beforehand; offline, so nothing is fetched); no --lang needed."""
    folder = tmp_path / "home" / "mms" / "omniasr-ctc-300m"
    folder.mkdir(parents=True)
    shutil.copy(files["pt"], folder / "omniASR-CTC-300M.pt")
    shutil.copy(files["literal"], folder / "omniASR_tokenizer.model")
    wav = tmp_path / "a.wav"
    sf.write(wav, random_audio(20000, seed=5), 16000)
    env = {**os.environ, "HF_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-m", "mms", "asr", "--model", "omniasr-ctc-300m", str(wav), "--format",
                        "jsonl"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    with ASR.load(files["pt"], device="cpu") as asr:
        assert json.loads(r.stdout)["text"] == asr.transcribe([str(wav)])[0].text
