"""mms.lid: each LID head against its own reference (transformers' Wav2Vec2ForSequenceClassification; fairseq's
Wav2VecClassification formulas), label sources, and the identification pipeline (batching, top-k, candidate
languages, first seconds / windows, files read piece by piece, per-input errors).

Tolerance: max abs logit difference 1e-4 in float32 over a padded batch."""

import numpy as np
import pytest
import soundfile as sf
import torch
import transformers

from mms.audio import load_audio
from mms.checkpoints import CheckpointError, UnknownLanguageError, instantiate, load_checkpoint
from mms.errors import MMSError
from mms.langs import language_name
from mms.lid import LID
from mms.options import LIDOptions
from tests import fairseq_reference
from tests.conftest import random_audio
from tests.factory import _FakeFairseq, random_lid_model, write_fairseq_lid, write_hf_lid
from tests.test_wav2vec2_parity import padded_batch

TOL = 1e-4
LABELS = ["eng", "fra", "deu", "swh", "hin", "urd", "cmn", "spa"]


@pytest.fixture(scope="module")
def lid_model():
    return random_lid_model(LABELS, seed=7)


@pytest.fixture(scope="module")
def hf_lid(lid_model, tmp_path_factory):
    return write_hf_lid(lid_model, tmp_path_factory.mktemp("hf_lid") / "mms-lid-8")


@pytest.fixture(scope="module")
def fairseq_lid(lid_model, tmp_path_factory):
    return write_fairseq_lid(lid_model, tmp_path_factory.mktemp("fairseq_lid") / "mms1b_l8.pt")


@pytest.fixture(scope="module")
def lid(hf_lid):
    return LID.load(hf_lid, device="cpu")


def fairseq_logits(path, batch, lengths, activation):
    with _FakeFairseq():  # our own test file: trusted, read with plain pickle and stand-in classes
        state = torch.load(path, weights_only=False)["model"]
    cfg = random_lid_model().cfg
    with torch.no_grad():
        return fairseq_reference.lid_forward(state, batch, lengths, list(zip(cfg.conv_dim, cfg.conv_kernel,
                                             cfg.conv_stride)), heads=4, layer_norm_first=True,
                                             activation=activation, pos_groups=4)


def prob_diff(a, b) -> float:
    """Max abs difference of two results' probabilities, label by label (both must rank the same labels)."""
    other = dict(b.predictions)
    assert sorted(other) == sorted(label for label, _ in a.predictions)
    return max(abs(p - other[label]) for label, p in a.predictions)


def ours(path, batch, lengths=None):
    with torch.no_grad():
        return instantiate(load_checkpoint(path))(batch, lengths)


# ---------------------------------------------------------------------------------------------------------
# The two heads


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_hf_head_matches_transformers(hf_lid, attn):
    batch, lengths = padded_batch()
    reference = transformers.Wav2Vec2ForSequenceClassification.from_pretrained(hf_lid, attn_implementation=attn)
    mask = (torch.arange(batch.shape[1])[None] < lengths[:, None]).long()
    with torch.no_grad():
        expected = reference.eval()(batch, attention_mask=mask).logits
        expected_single = reference(batch[:1]).logits  # no padding, no mask: a plain mean over all frames
    logits = ours(hf_lid, batch, lengths)
    assert logits.shape == (3, len(LABELS))
    assert (logits - expected).abs().max().item() <= TOL
    assert (ours(hf_lid, batch[:1]) - expected_single).abs().max().item() <= TOL


@pytest.mark.parametrize("activation,cfg_kind", [("gelu", "dict"), ("relu", "dictconfig")])
def test_fairseq_head_matches_fairseq_formulas(lid_model, tmp_path, activation, cfg_kind):
    path = write_fairseq_lid(lid_model, tmp_path / "lid.pt", activation=activation, cfg_kind=cfg_kind)
    assert load_checkpoint(path).config.classifier_activation == activation
    batch, lengths = padded_batch()
    expected = fairseq_logits(path, batch, lengths, activation)
    assert (ours(path, batch, lengths) - expected).abs().max().item() <= TOL
    # padded rows are pooled over their own frames only: each equals the utterance run alone
    for i, n in enumerate(lengths.tolist()):
        alone = fairseq_logits(path, batch[i:i + 1, :n], lengths[i:i + 1], activation)
        assert (ours(path, batch[i:i + 1, :n]) - alone).abs().max().item() <= TOL


def test_the_two_heads_differ_on_the_same_weights(hf_lid, fairseq_lid):
    """fairseq applies gelu between pooling and projection, transformers nothing: same tensors, other logits."""
    batch, lengths = padded_batch()
    gap = (ours(hf_lid, batch, lengths) - fairseq_logits(fairseq_lid, batch, lengths, "gelu")).abs().max().item()
    assert gap > 100 * TOL


def test_unsupported_fairseq_activation_is_refused(lid_model, tmp_path):
    path = write_fairseq_lid(lid_model, tmp_path / "lid.pt", activation="swish")
    with pytest.raises(CheckpointError, match="activation_fn 'swish'"):
        load_checkpoint(path)


# ---------------------------------------------------------------------------------------------------------
# Labels


def test_fairseq_labels_from_task_state_or_dict_file_or_dict_option(lid_model, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    only_state = write_fairseq_lid(lid_model, tmp_path / "a" / "lid.pt", dict_file=False)
    assert load_checkpoint(only_state).labels == LABELS
    only_file = write_fairseq_lid(lid_model, tmp_path / "b" / "lid.pt", task_state=False)
    assert load_checkpoint(only_file).labels == LABELS
    other = tmp_path / "other.txt"
    other.write_text("".join(f"{code} 1\n" for code in reversed(LABELS)))
    assert load_checkpoint(only_file, dict_path=other).labels == LABELS[::-1]
    (tmp_path / "b" / "dict.lang.txt").unlink()
    with pytest.raises(CheckpointError, match="dict.lang.txt"):
        load_checkpoint(only_file)
    other.write_text("eng 1\nfra 1\n")
    with pytest.raises(CheckpointError, match="2 labels, the model has 8 outputs"):
        load_checkpoint(only_state, dict_path=other)


def test_hf_labels_can_be_given_with_dict(hf_lid, tmp_path):
    """--dict over config.json's id2label, as for fairseq files (it used to be ignored silently)."""
    assert load_checkpoint(hf_lid).labels == LABELS
    other = tmp_path / "dict.lang.txt"
    other.write_text("".join(f"{code} 1\n" for code in reversed(LABELS)))
    assert load_checkpoint(hf_lid, dict_path=other).labels == LABELS[::-1]
    other.write_text("eng 1\n")
    with pytest.raises(CheckpointError, match="1 labels, the model has 8 outputs"):
        load_checkpoint(hf_lid, dict_path=other)
    with pytest.raises(CheckpointError, match="absent.txt: cannot read labels"):
        load_checkpoint(hf_lid, dict_path=tmp_path / "absent.txt")


@pytest.mark.parametrize("fmt", ["hf", "fairseq"])
def test_forced_output_maps_to_its_label(tmp_path, fmt):
    """A classifier bias that makes output 3 win must come out as label 3 (index = dict.lang.txt line)."""
    model = random_lid_model(LABELS, seed=2)
    model.state["classifier.bias"][3] += 50.0
    path = write_hf_lid(model, tmp_path / "m") if fmt == "hf" else write_fairseq_lid(model, tmp_path / "m.pt",
                                                                                      task_state=False)
    (result,) = LID.load(path, device="cpu").identify([random_audio(12000)], top_k=2)
    assert result.lang == "swh" and result.probability > 0.999


def test_a_directory_without_language_labels_is_refused_unless_given_them(hf_lid, tmp_path):
    # (it printed output numbers as languages: "5 0.2320 7 0.2299 ...")
    import json
    import shutil

    for id2label in (None, {str(i): f"LABEL_{i}" for i in range(len(LABELS))}):
        folder = tmp_path / f"nolabels-{id2label is None}"
        shutil.copytree(hf_lid, folder)
        config = json.loads((folder / "config.json").read_text())
        config.pop("label2id", None)
        config.pop("id2label")
        if id2label:
            config["id2label"] = id2label
        (folder / "config.json").write_text(json.dumps(config))
        with pytest.raises(CheckpointError, match=f"no language labels for its {len(LABELS)} outputs .*--dict"):
            LID.load(folder, device="cpu")
        (tmp_path / "dict.lang.txt").write_text("".join(f"{lang} 1\n" for lang in LABELS))
        lid = LID.load(folder, device="cpu", dict_path=tmp_path / "dict.lang.txt")
        assert lid.identify([random_audio(12000)])[0].lang in LABELS


def test_an_asr_model_is_not_a_lid_model(hf_dir):
    with pytest.raises(CheckpointError, match="not a language identification model"):
        LID.load(hf_dir, device="cpu")


# ---------------------------------------------------------------------------------------------------------
# Pipeline


def test_identify_matches_transformers_feature_extractor_and_model(lid, hf_lid):
    waves = [random_audio(n, seed=i) for i, n in enumerate([9000, 30000, 4000, 17000])]  # not sorted by length
    extractor = transformers.Wav2Vec2FeatureExtractor.from_pretrained(hf_lid)
    inputs = extractor(waves, sampling_rate=16000, padding=True, return_tensors="pt")
    model = transformers.Wav2Vec2ForSequenceClassification.from_pretrained(hf_lid).eval()
    with torch.no_grad():
        expected = model(**inputs).logits.softmax(-1).numpy()
    results = lid.identify(waves, top_k="all")
    assert [r.audio for r in results] == [f"<array {i}>" for i in range(4)]
    for result, probs in zip(results, expected):
        assert [label for label, _ in result.predictions] == [LABELS[j] for j in np.argsort(-probs, kind="stable")]
        got = dict(result.predictions)
        assert max(abs(got[label] - probs[j]) for j, label in enumerate(LABELS)) <= 1e-5


def test_batched_equals_one_by_one(hf_lid):
    waves = [random_audio(n, seed=i) for i, n in enumerate([9000, 30000, 4000, 17000])]
    batched = LID.load(hf_lid, device="cpu").identify(waves, top_k="all")
    one_per_batch = LID.load(hf_lid, device="cpu", options=LIDOptions(batch_seconds=0.1))
    single = one_per_batch.identify(waves, top_k="all")
    for a, b in zip(batched, single):
        assert [x for x, _ in a.predictions] == [x for x, _ in b.predictions] and prob_diff(a, b) <= 1e-5


def test_top_k_is_the_head_of_the_full_ranking(lid):
    wave = random_audio(20000, seed=3)
    (full,) = lid.identify([wave], top_k="all")
    (top3,) = lid.identify([wave], top_k=3)
    probs = [p for _, p in full.predictions]
    assert probs == sorted(probs, reverse=True) and abs(sum(probs) - 1) <= 1e-6
    assert top3.predictions == full.predictions[:3]
    (default,) = lid.identify([wave])  # top_k=None: options.top_k
    assert default.predictions == full.predictions[:LIDOptions.top_k]
    for bad in (0, "some", 2.5):
        with pytest.raises(MMSError, match="top_k"):
            lid.identify([wave], top_k=bad)


def test_candidate_languages_restrict_the_softmax(lid):
    wave = random_audio(20000, seed=3)
    (result,) = lid.identify([wave], top_k="all", langs="fra, deu,swh")
    logits = lid.logits([lid.runner.standardize(wave)])[0]
    expected = logits[[1, 2, 3]].softmax(-1).tolist()
    got = dict(result.predictions)
    assert sorted(got) == ["deu", "fra", "swh"] and abs(sum(got.values()) - 1) <= 1e-6
    assert max(abs(got[code] - p) for code, p in zip(["fra", "deu", "swh"], expected)) <= 1e-6
    assert lid.identify([wave], top_k=1, langs=["swh"])[0].predictions == [("swh", 1.0)]


def test_unknown_candidate_codes_name_close_matches(lid):
    with pytest.raises(UnknownLanguageError) as e:
        lid.identify([random_audio(8000)], langs=["en", "fre", "German", "swahili", "qqq"])
    message = str(e.value)
    assert "\n" not in message
    for code, hint in [("en", "eng"), ("fre", "fra"), ("German", "deu"), ("swahili", "swh")]:
        assert f"'{code}' (close matches: {hint}" in message
    assert "'qqq' (no close match)" in message


def test_every_input_gets_a_result_or_an_error(lid, tmp_path):
    good = random_audio(16000, seed=1)
    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    wav = tmp_path / "ok.wav"
    sf.write(wav, random_audio(24000, seed=2), 16000)
    inputs = [good, tmp_path / "missing.wav", text, np.zeros(100, np.float32), np.zeros((2, 8000), np.float32),
              np.full(8000, np.nan, np.float32), wav]
    results = lid.identify(inputs, top_k=2)
    assert [r.error is None for r in results] == [True, False, False, False, False, False, True]
    assert "missing.wav: no such file" in results[1].error
    assert "notes.wav: cannot decode audio" in results[2].error
    assert "too short to classify" in results[3].error
    assert "1-D waveform" in results[4].error and "NaN" in results[5].error
    alone = lid.identify([good], top_k=2)[0]
    assert results[0].lang == alone.lang and prob_diff(results[0], alone) <= 1e-6
    assert results[6].audio == str(wav) and results[6].duration == 1.5


def test_long_input_uses_its_first_seconds(hf_lid):
    lid = LID.load(hf_lid, device="cpu", options=LIDOptions(max_seconds=1.0))
    wave = random_audio(80000, seed=4)
    (result,) = lid.identify([wave], top_k="all")
    (head,) = lid.identify([wave[:16000]], top_k="all")
    assert result.duration == 5.0 and result.seconds == 1.0
    assert prob_diff(result, head) <= 1e-6


def test_an_input_opening_with_silence_is_identified_by_its_sound(hf_lid):
    """Without windows, the first piece that is not silence is classified (models name silence some language
    with confidence); all silence: the first piece, as before."""
    lid = LID.load(hf_lid, device="cpu", options=LIDOptions(max_seconds=1.0))
    sound = random_audio(16000, seed=5)
    quiet = np.zeros(40000, np.float32) + np.float32(1e-4) * random_audio(40000, seed=6)  # 2.5 s below -60 dBFS
    (late,) = lid.identify([np.concatenate([quiet[:32000], sound])], top_k="all")  # pieces: 1 s, 1 s, then sound
    (alone,) = lid.identify([sound], top_k="all")
    assert prob_diff(late, alone) <= 1e-6 and late.seconds == 1.0
    (silent,) = lid.identify([quiet], top_k="all")
    (head,) = lid.identify([quiet[:16000]], top_k="all")
    assert prob_diff(silent, head) <= 1e-6
    (click,) = lid.identify([np.concatenate([quiet[:32000], sound[:100]])], top_k="all")  # too short a sound
    assert prob_diff(click, head) <= 1e-6


def window_posterior(lid, wave, window):
    """The expected windowed result: softmax of each window (standardised alone), weighted by its samples."""
    pieces = [wave[i:i + window] for i in range(0, wave.size, window)]
    probs = [lid.logits([lid.runner.standardize(p)])[0].softmax(-1).double().numpy() for p in pieces]
    return sum(p * piece.size for p, piece in zip(probs, pieces)) / wave.size


def test_windows_average_posteriors_over_the_whole_input(hf_lid):
    wave = random_audio(56000, seed=5)  # 3.5 s: windows of 1, 1, 1 and 0.5 s
    lid = LID.load(hf_lid, device="cpu", options=LIDOptions(window_seconds=1.0))
    expected = window_posterior(lid, wave, 16000)
    (result,) = lid.identify([wave], top_k="all")
    assert result.seconds == 3.5
    got = dict(result.predictions)
    assert max(abs(got[label] - expected[j]) for j, label in enumerate(LABELS)) <= 1e-6
    # a buffer smaller than the input (scored in several rounds) and one window per batch change nothing
    small = LID.load(hf_lid, device="cpu", options=LIDOptions(window_seconds=1.0, batch_seconds=1.0))
    small.buffer_samples = 16000
    (again,) = small.identify([wave], top_k="all")
    assert prob_diff(result, again) <= 1e-6


def test_files_are_read_piece_by_piece_like_the_whole_file(hf_lid, tmp_path):
    """Streaming decode (stereo, 44.1 kHz, resampled per piece) gives what decoding the whole file gives."""
    stereo = np.stack([random_audio(150000, seed=6), random_audio(150000, seed=7)], axis=1)
    path = tmp_path / "stereo.flac"
    sf.write(path, stereo, 44100)
    lid = LID.load(hf_lid, device="cpu", options=LIDOptions(window_seconds=0.7))
    from_file, from_array = lid.identify([path, load_audio(path)], top_k="all")
    assert from_file.duration == pytest.approx(150000 / 44100, abs=1e-3)
    assert abs(from_file.seconds - from_array.seconds) <= 1 / 16000
    assert prob_diff(from_file, from_array) <= 1e-5


def test_results_carry_their_index_name_and_language_names(lid, tmp_path):
    results = lid.identify([random_audio(16000, seed=1), tmp_path / "missing.wav"], top_k=2, names=True)
    assert [r.index for r in results] == [0, 1]
    assert [r.name for r in results] == ["<array 0>", str(tmp_path / "missing.wav")]
    record = results[0].to_dict()
    assert list(record) == ["index", "audio", "predictions", "duration", "names"] and len(record["names"]) == 2
    assert record["names"] == [language_name(code) for code, _ in results[0].predictions]
    assert results[1].to_dict()["names"] == [] and "names" not in lid.identify([random_audio(16000)])[0].to_dict()


def test_bad_options_are_errors(hf_lid):
    for options in (LIDOptions(max_seconds=0), LIDOptions(window_seconds=-1.0), LIDOptions(top_k=0)):
        with pytest.raises(MMSError):
            LID.load(hf_lid, device="cpu", options=options)
