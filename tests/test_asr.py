"""The ASR pipeline: windows, batches, languages, bad inputs, order."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mms.asr import ASR
from mms.runner import plan_windows
from mms.batching import make_batches
from mms.checkpoints import UnknownLanguageError
from mms.errors import MMSError
from mms.manifest import Item
from tests.conftest import random_audio

KERNELS, STRIDES = (10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2)


def conv_frames(n):
    for k, s in zip(KERNELS, STRIDES):
        n = (n - k) // s + 1
    return max(n, 0)


@pytest.mark.parametrize("n", [400, 16000, 16319, 160000, 577777])
@pytest.mark.parametrize("chunk,context", [(16000, 3200), (32000, 0), (8000, 16000)])
def test_windows_tile_every_frame_once(n, chunk, context):
    windows = plan_windows(n, chunk, context, KERNELS, STRIDES)
    covered = []
    for w in windows:
        assert 0 <= w.start < w.end <= n
        assert w.start % 320 == 0  # same frame grid as the whole input
        assert w.end - w.start <= chunk + 2 * context + 400
        assert conv_frames(w.end - w.start) >= w.keep_to  # the window really has the frames it keeps
        assert w.out_at - w.keep_from == w.start // 320
        covered += range(w.out_at, w.out_at + w.keep_to - w.keep_from)
    assert covered == list(range(conv_frames(n)))


def test_batches_respect_budget_and_keep_every_item():
    lengths = [5, 30, 10, 10, 25, 1, 50]
    batches = make_batches(lengths, max_samples=60)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert len(b) == 1 or max(lengths[i] for i in b) * len(b) <= 60
    assert make_batches([10, 10, 9], 100, same_length=True) == [[0, 1], [2]]


@pytest.fixture(scope="module")
def audio_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("audio")
    paths = []
    for i, n in enumerate([48000, 8000, 30000, 16000, 70000]):
        path = d / f"utt{i}.wav"
        sf.write(path, random_audio(n, seed=10 + i), 16000)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module", params=["hf", "fairseq"])
def asr(request, hf_dir, fairseq_pt):
    return ASR.load(hf_dir if request.param == "hf" else fairseq_pt, lang="eng", device="cpu")


def test_results_in_input_order_and_batched_equals_one_by_one(asr, audio_files):
    batched = asr.transcribe(audio_files)
    assert [r.audio for r in batched] == audio_files
    asr.batch_samples, saved = 1, asr.batch_samples  # one input per forward pass
    try:
        single = asr.transcribe(audio_files)
    finally:
        asr.batch_samples = saved
    assert [r.text for r in batched] == [r.text for r in single]
    assert all(r.text and r.error is None for r in batched)


def test_chunked_equals_unchunked_when_context_covers_input(asr, audio_files):
    whole = asr.transcribe(audio_files)
    asr.chunk_samples, asr.context_samples = 4800, 80000  # 0.3 s windows, each seeing the whole input
    try:
        chunked = asr.transcribe(audio_files)
    finally:
        asr.chunk_samples, asr.context_samples = 30 * 16000, 5 * 16000
    assert [r.text for r in chunked] == [r.text for r in whole]
    assert [r.hypothesis.score for r in chunked] == pytest.approx([r.hypothesis.score for r in whole], abs=1e-3)


def test_chunked_with_limited_context_stays_close(asr, audio_files):
    long_input = [audio_files[-1]]  # 4.4 s
    whole = asr.transcribe(long_input)[0].hypothesis
    asr.chunk_samples, asr.context_samples = 16000, 16000
    try:
        chunked = asr.transcribe(long_input)[0].hypothesis
    finally:
        asr.chunk_samples, asr.context_samples = 30 * 16000, 5 * 16000
    # global attention makes windows an approximation: per-frame scores differ a little, timing stays aligned
    assert len(chunked.units) == pytest.approx(len(whole.units), rel=0.25)
    assert chunked.score == pytest.approx(whole.score, rel=0.05)


def test_language_switch_without_reload(hf_dir, audio_files):
    asr = ASR.load(hf_dir, lang="eng", device="cpu")
    eng = asr.transcribe(audio_files[:2])
    fra = asr.transcribe(audio_files[:2], lang="fra")
    assert asr.model.lm_head.out_features == 15  # fra's output layer is in the model now, but ...
    assert asr.lang == "eng"  # ... a call's language is that call's: the default stays
    assert [r.text for r in asr.transcribe(audio_files[:2])] == [r.text for r in eng]
    assert ASR.load(hf_dir, lang="fra", device="cpu").transcribe(audio_files[:2])[0].text == fra[0].text
    asr.set_language("eng")
    assert [r.text for r in asr.transcribe(audio_files[:2])] == [r.text for r in eng]
    # several languages in one run (manifest `lang` column), each input decoded with its own vocabulary
    mixed = asr.transcribe([Item(audio_files[0], lang="fra"), Item(audio_files[1], lang="eng")])
    assert [(r.lang, r.text) for r in mixed] == [("fra", fra[0].text), ("eng", eng[1].text)]


def test_unknown_language_lists_close_matches(hf_dir, audio_files):
    with pytest.raises(UnknownLanguageError, match="fra"):
        ASR.load(hf_dir, lang="frq", device="cpu")
    asr = ASR.load(hf_dir, lang="eng", device="cpu")
    results = asr.transcribe([Item(audio_files[0], lang="frr"), Item(audio_files[1])])
    assert "no adapter for language 'frr'" in results[0].error and "fra" in results[0].error
    assert results[1].error is None and results[1].text


def test_bad_inputs_get_errors_and_the_rest_completes(asr, audio_files, tmp_path):
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), 16000)
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.full(16000, np.nan, dtype=np.float32), 16000, subtype="FLOAT")
    short = tmp_path / "short.wav"
    sf.write(short, random_audio(300), 16000)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000, dtype=np.float32), 16000)
    garbage = tmp_path / "garbage.mp3"
    garbage.write_bytes(b"\x00not audio at all" * 10)
    inputs = [str(empty), audio_files[0], str(nan), str(tmp_path / "missing.wav"), str(tmp_path), str(short),
              str(silent), str(garbage), audio_files[1]]
    results = asr.transcribe(inputs)
    assert [r.audio for r in results] == inputs
    failed = {r.audio: r.error for r in results if r.error}
    assert set(failed) == {str(empty), str(nan), str(tmp_path / "missing.wav"), str(tmp_path), str(garbage), str(short)}
    for path, message in failed.items():
        assert message.startswith(path) and "\n" not in message
    by_path = {r.audio: r for r in results}
    # shorter than one frame: an error, as in LID and alignment (an empty transcript would pass for silence)
    assert "too short (0.019 s) for one frame" in by_path[str(short)].error
    assert by_path[str(silent)].error is None  # silence is defined: whatever the model says about zeros
    assert by_path[audio_files[0]].text == asr.transcribe([audio_files[0]])[0].text


def test_arrays_and_word_times(asr):
    wave = random_audio(40000, seed=3)
    result = asr.transcribe([wave], timestamps="char")[0]
    assert result.audio == "<array 0>" and result.duration == 2.5
    assert " ".join(w.text for w in result.words) == " ".join(result.text.split())
    assert all(0 <= w.start < w.end <= 2.5 for w in result.words)
    assert [c.start for c in result.chars] == sorted(c.start for c in result.chars)


def test_api_inputs_are_checked_and_a_bad_one_is_its_own_error(asr, audio_files):
    wave = sf.read(audio_files[0], dtype="float32")[0]
    with pytest.raises(TypeError, match=r"give an iterable .*e\.g\. \["):  # one path: not one input per character
        asr.transcribe(audio_files[0])
    results = asr.transcribe([audio_files[0], None, np.stack([wave, wave], 1), wave])
    assert [r.error is None for r in results] == [True, False, False, True]
    assert "not an audio path" in results[1].error and "expected a 1-D waveform" in results[2].error
    assert results[0].text == results[3].text
    with pytest.raises(MMSError, match="timestamps must be"):
        asr.transcribe([wave], timestamps="words")
    for bad in (dict(chunk_seconds=0), dict(context_seconds=-1), dict(chunk_seconds=float("nan"))):
        with pytest.raises(MMSError, match="must be a finite number"):
            ASR(asr.checkpoint, "cpu", "float32", "eng", **bad)


def test_api_auto_keeps_arrays_and_uses_the_models_own_lid_head():
    # per-call lang="auto" on a model loaded with a language, and arrays among the inputs (they had been taken
    # for file names): the demo's own LID head, offline
    examples = Path(__file__).resolve().parents[1] / "examples"
    wave = sf.read(examples / "eng_hello.wav", dtype="float32")[0]
    asr = ASR.load("demo", lang="eng", device="cpu", dtype="float32")
    results = asr.transcribe([str(examples / "rus_day.wav"), wave], lang="auto")
    assert [(r.lang, r.error) for r in results] == [("rus", None), ("eng", None)]
    assert asr.lang == "eng" and results[1].text == asr.transcribe([wave])[0].text


def test_a_greedy_buffers_results_come_out_before_the_next_buffer_runs(hf_dir, audio_files, monkeypatch):
    """A kill loses at most the buffer in progress: each buffer's transcripts are yielded before the model runs
    the next one (beam search alone holds one buffer back, to overlap its worker processes with the model)."""
    asr = ASR.load(hf_dir, lang="eng", device="cpu", buffer_seconds=0.5, batch_seconds=0.5)
    runs = []
    real_run = asr._run
    monkeypatch.setattr(asr, "_run", lambda buffer, keep: (runs.append(len(buffer)), real_run(buffer, keep)))
    seen = []
    for result in asr.transcribe_iter(audio_files[:3]):
        seen.append(len(runs))
    assert len(runs) == 3 and seen == [1, 2, 3]
