"""`mms lexicon`, `mms lm build`, `mms score`, `mms tune` through a subprocess."""

import json

import pytest
import soundfile as sf
import yaml

from mms.decoding.beam import BeamOptions, BeamSearchDecoder
from mms.decoding.beam import read_lexicon
from mms.checkpoints import load_vocabulary
from mms.errors import MMSError
from mms.lm.tune import TuneSettings, preset_yaml, tune
from tests.conftest import random_audio
from tests.test_cli import mms

CORPUS = "Bad cab, FACE!\nfed a bead; aged dace\nthe zebra fed\nbad cab bad\n"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("lm") / "corpus.txt"
    path.write_text(CORPUS)
    return path


def test_lexicon_spells_normalised_words_and_drops_unspellable(hf_dir, corpus, tmp_path):
    out = tmp_path / "lexicon.txt"
    r = mms("lexicon", "--model", hf_dir, "--lang", "eng", corpus, "-o", out)
    assert r.returncode == 0, r.stderr
    entries = dict(line.split("\t") for line in out.read_text().splitlines())
    assert entries["bad"] == "b a d |" and entries["face"] == "f a c e |"  # lower-cased, punctuation gone
    assert "zebra" not in entries and "the" not in entries  # z, t, h, r are not units of the tiny model
    assert list(entries)[:2] == ["bad", "cab"]  # most frequent first
    assert "2 of 10 dropped" in r.stderr and "z" in r.stderr
    vocab = load_vocabulary(hf_dir, "eng")
    assert set(read_lexicon(out, vocab)) == set(entries)  # loads as a beam-search lexicon
    assert "--min-count" not in r.stderr
    r = mms("lexicon", "--model", "demo", "--lang", "eng", corpus, "--min-count", "2", "-o", out)  # a published name
    assert r.returncode == 0, r.stderr
    assert [line.split("\t")[0] for line in out.read_text().splitlines()] == ["bad", "cab", "fed"]
    assert "3 words spelled, 0 of 10 dropped, 7 seen fewer than --min-count 2 times" in r.stderr

    # nothing spellable is an error here (mms asr and tune refuse an empty lexicon), and no file is written
    (tmp_path / "marks.txt").write_text("... !!!\nzzz\n")
    r = mms("lexicon", "--model", hf_dir, "--lang", "eng", tmp_path / "marks.txt", "-o", tmp_path / "empty.txt")
    assert r.returncode == 2 and "no word could be spelled" in r.stderr and not (tmp_path / "empty.txt").exists()
    # a fairseq dictionary alone is a vocabulary; uroman's options without --uroman are refused
    (tmp_path / "dict.ltr.txt").write_text("".join(f"{c} {i}\n" for i, c in enumerate("|abcdef", 1)))
    r = mms("lexicon", "--dict", tmp_path / "dict.ltr.txt", corpus, "-o", out)
    assert r.returncode == 0 and dict(line.split("\t") for line in out.read_text().splitlines())["bad"] == "b a d |"
    r = mms("lexicon", "--model", hf_dir, "--lang", "eng", "--dedupe", corpus, "-o", out)
    assert r.returncode == 2 and "--dedupe goes with --uroman" in r.stderr
    r = mms("lexicon", "--uroman", "--uroman-lang", "zzz", corpus, "-o", out)
    assert r.returncode == 2 and "not an ISO 639 language code" in r.stderr


def test_lm_build_word_and_unit_models_load_in_kenlm(hf_dir, corpus, tmp_path):
    words = tmp_path / "words.arpa"
    r = mms("lm", "build", corpus, "--order", "3", "--lang", "eng", "--no-lmplz", "-o", words)
    assert r.returncode == 0, r.stderr
    assert "\\3-grams:" in words.read_text() and "zebra" in words.read_text()
    units = tmp_path / "units.arpa"
    assert mms("lm", "build", corpus, "--order", "4", "--lang", "eng", "--units", "-o", units).returncode == 0
    assert "\tb a d" in units.read_text() and "|" in units.read_text()
    lexicon = tmp_path / "lexicon.txt"
    mms("lexicon", "--model", hf_dir, "--lang", "eng", corpus, "-o", lexicon)
    vocab = load_vocabulary(hf_dir, "eng")
    BeamSearchDecoder(vocab, BeamOptions(lm=str(words), lexicon=str(lexicon)))  # KenLM reads both
    BeamSearchDecoder(vocab, BeamOptions(lm=str(units), unit_lm=True))


def test_lm_above_kenlm_max_order_is_built_with_a_warning_and_refused_by_name(hf_dir, tmp_path):
    corpus = tmp_path / "long.txt"
    corpus.write_text("a b c d e f a b c d\nb a d c e f a b\n")
    arpa = tmp_path / "o7.arpa"
    r = mms("lm", "build", corpus, "--order", "7", "--no-lmplz", "-o", arpa)
    assert r.returncode == 0, r.stderr
    assert "warning: order 7: `mms asr --lm` (flashlight-text's KenLM) loads orders up to 6 only" in r.stderr
    assert "\\7-grams:" in arpa.read_text()
    r = mms("asr", "--model", hf_dir, "--lang", "eng", "--lm", arpa, "--unit-lm", tmp_path / "none.wav")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "o7.arpa: KenLM cannot load it: its order is 7, and the KenLM in flashlight-text loads orders up to 6" \
        in r.stderr


def test_errors_are_one_line_usage_errors(tmp_path):
    from mms.decoding.beam import BeamSearchError
    from mms.lm.arpa import ArpaError
    from mms.lm.kneser_ney import LMError
    from mms.lm.lexicon import LexiconError
    from mms.scoring import ScoringError
    from mms.lm.tune import TuneError

    assert all(issubclass(e, MMSError) for e in (BeamSearchError, ArpaError, LMError, LexiconError, ScoringError,
                                                 TuneError))
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9\n".encode("latin-1"))
    r = mms("lm", "build", bad, "--no-lmplz", "-o", tmp_path / "x.arpa")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "latin1.txt: not UTF-8" in r.stderr
    r = mms("tune", "--model", tmp_path, "--manifest", tmp_path / "none.jsonl", "--lm", bad, "--lm-weight", "x")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--lm-weight 'x': expected LO:HI" in r.stderr
    for args, message in ((["--lexicon", bad, "--lm-weight", "0:3"], "--lm-weight: without --lm the LM weight is"),
                          (["--lm", bad, "--lexicon", bad, "--sil-weight=-1:1"], "--sil-weight: it is searched with "
                                                                                 "--unit-lm and no --lexicon"),
                          (["--lm", bad, "--unit-lm", "--word-score=-1:1"], "--word-score: with --unit-lm and no "
                                                                            "--lexicon the decoder has no word score")):
        r = mms("tune", "--model", "demo", "--lang", "eng", "--manifest", tmp_path / "none.jsonl", *args)
        assert r.returncode == 2 and message in r.stderr and r.stderr.count("\n") == 1, (args, r.stderr)
    (tmp_path / "empty.txt").write_text("")
    r = mms("score", "--ref", tmp_path / "empty.txt", "--hyp", tmp_path / "empty.txt")
    assert r.returncode == 2 and "empty.txt: no reference lines: nothing to score" in r.stderr
    r = mms("lm", "build", tmp_path / "empty.txt", "--no-lmplz", "-o", tmp_path / "x.arpa")
    assert r.returncode == 2 and r.stderr.startswith("mms lm build: error: ") and "empty.txt: the corpus has no words" in r.stderr
    (tmp_path / "few.txt").write_text("hello world hello\n")
    r = mms("lexicon", "--uroman", "--min-count", "5", tmp_path / "few.txt")
    assert r.returncode == 2 and "none of its 2 words occurs --min-count 5 times" in r.stderr, r.stderr
    # a --lang that picks normalisation or uroman rules must be a language code (a typo picked no rules)
    for argv in (["lexicon", "--uroman", "--lang", "zzz", bad], ["lexicon", "--uroman", "--uroman-lang", "xxx", bad],
                 ["lm", "build", bad, "--lang", "xx", "-o", tmp_path / "x.arpa"],
                 ["score", "--ref", bad, "--hyp", bad, "--normalize", "--lang", "qq"]):
        r = mms(*argv)
        assert r.returncode == 2 and "not an ISO 639 language code" in r.stderr, (argv, r.stderr)
    # an output that cannot be written stops the run before the model runs (it ran every trial first)
    for argv in (["tune", "--model", "demo", "--lang", "eng", "--manifest", tmp_path / "none.jsonl", "--lexicon", bad],
                 ["tune-rerank", "--model", "demo", "--manifest", tmp_path / "none.jsonl"],
                 ["lm", "build", bad, "--no-lmplz"]):
        r = mms(*argv, "-o", tmp_path)
        assert r.returncode == 2 and r.stderr.endswith(f"{tmp_path}: is a directory\n"), (argv, r.stderr)
    # a folder where a file is expected is said to be one
    r = mms("asr", "--model", "demo", "--lang", "eng", "--lexicon", tmp_path, tmp_path / "none.wav")
    assert r.returncode == 2 and f"{tmp_path}: is a directory, not a lexicon file" in r.stderr, r.stderr
    r = mms("asr", "--model", "demo", "--words", tmp_path, tmp_path / "none.wav")
    assert r.returncode == 2 and f"--words {tmp_path}: is a directory, not a file" in r.stderr, r.stderr
    binary = tmp_path / "bin.arpa"
    binary.write_bytes(b"\xff\xfe garbage")  # (KenLM's message quoted these bytes: a UnicodeDecodeError)
    with pytest.raises(BeamSearchError, match="bin.arpa: KenLM cannot load it: not an ARPA file or KenLM binary$"):
        from mms.decoding.beam import _flashlight, load_kenlm

        load_kenlm(str(binary), _flashlight()[1].create_word_dict({"<unk>": [], "a": [["a"]]}))
    # a model of several alphabets needs --lang (it spelled in the default adapter's, saying nothing)
    (tmp_path / "ru.txt").write_text("сегодня хороший день\n")
    r = mms("lexicon", "--model", "demo", tmp_path / "ru.txt", "-o", tmp_path / "lx.txt")
    assert r.returncode == 2 and "demo has 4 languages, each with its own alphabet: give --lang" in r.stderr
    assert mms("lexicon", "--model", "demo", "--lang", "rus", tmp_path / "ru.txt", "-o", tmp_path / "lx.txt").returncode == 0


def test_score_json(tmp_path):
    (tmp_path / "ref.txt").write_text("a b c\nhello world\n")
    (tmp_path / "hyp.txt").write_text("a x c d\nhello world\n")
    r = mms("score", "--ref", tmp_path / "ref.txt", "--hyp", tmp_path / "hyp.txt")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["wer"] == pytest.approx(100 * 2 / 5)  # 1 substitution + 1 insertion over 5 reference words
    assert [u["wer"] for u in result["per_utterance"]] == pytest.approx([200 / 3, 0.0])
    bad = mms("score", "--ref", tmp_path / "ref.txt", "--hyp", tmp_path / "missing.txt")
    assert bad.returncode == 2 and "missing.txt" in bad.stderr
    (tmp_path / "trailing.txt").write_text("a b c\nhello world\n\n")  # one line more: both files named
    odd = mms("score", "--ref", tmp_path / "trailing.txt", "--hyp", tmp_path / "hyp.txt")
    assert odd.returncode == 2 and f"{tmp_path / 'hyp.txt'}: 2 texts, {tmp_path / 'trailing.txt'}: 3" in odd.stderr
    assert "trailing.txt ends with a blank line" in odd.stderr


def test_score_normalize_scores_as_mms_transcripts_are_written(tmp_path):
    (tmp_path / "ref.txt").write_text("Hello, World!\nGood morning.\n")
    (tmp_path / "hyp.txt").write_text("hello world\ngood morning\n")
    raw = json.loads(mms("score", "--ref", tmp_path / "ref.txt", "--hyp", tmp_path / "hyp.txt").stdout)
    assert raw["wer"] == 100.0  # every word differs by its capital or its punctuation
    r = mms("score", "--normalize", "--lang", "eng", "--ref", tmp_path / "ref.txt", "--hyp", tmp_path / "hyp.txt")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["wer"] == 0.0 and json.loads(r.stdout)["cer"] == 0.0
    r = mms("score", "--lang", "eng", "--ref", tmp_path / "ref.txt", "--hyp", tmp_path / "hyp.txt")
    assert r.returncode == 2 and "--lang is for --normalize" in r.stderr


def dev_set(folder, refs: list[str], lengths: list[int], seed: int):
    """Random-audio dev files and their manifest (text = refs): (manifest, wav paths)."""
    wavs = []
    for i, n in enumerate(lengths):
        wavs.append(folder / f"dev{i}.wav")
        sf.write(wavs[-1], random_audio(n, seed=seed + i), 16000)
    manifest = folder / "dev.jsonl"
    manifest.write_text("".join(json.dumps({"audio": w.name, "text": t}) + "\n" for w, t in zip(wavs, refs)))
    return manifest, wavs


def test_tune_writes_a_preset_that_asr_accepts(hf_dir, corpus, tmp_path):
    manifest, wavs = dev_set(tmp_path, ["bad cab", "fed a bead"], [24000, 30000], seed=40)
    lexicon, lm = tmp_path / "lexicon.txt", tmp_path / "lm.arpa"
    mms("lexicon", "--model", hf_dir, "--lang", "eng", corpus, "-o", lexicon)
    mms("lm", "build", corpus, "--order", "2", "--lang", "eng", "-o", lm)
    preset = tmp_path / "preset.yaml"
    argv = ["tune", "--model", hf_dir, "--lang", "eng", "--manifest", manifest, "--lm", lm, "--lexicon", lexicon,
            "--trials", "3", "--decode-workers", "0", "--cache", tmp_path / "cache", "-o", preset]
    first = mms(*argv)
    assert first.returncode == 0, first.stderr
    assert "computing emissions of 2 dev files" in first.stderr and first.stderr.count("WER") == 4
    values = yaml.safe_load(preset.read_text())
    assert set(values) >= {"lm_weight", "word_score", "beam"} and 0 <= values["lm_weight"] <= 5
    second = mms(*argv)  # emissions come from the cache now
    assert second.returncode == 0 and "computing emissions" not in second.stderr
    # the Python API behind it: the same search over the cached emissions gives the same preset
    lines = []
    result = tune(str(hf_dir), str(manifest), str(lm), lexicon=str(lexicon), lang="eng",
                  settings=TuneSettings(trials=3, decode_workers=0), cache=tmp_path / "cache", log=lines.append)
    assert preset_yaml(result) == preset.read_text() and not any("computing" in line for line in lines)
    assert [t["wer"] for t in result["trials"]] == sorted(t["wer"] for t in result["trials"])
    assert result["wer"] == result["trials"][0]["wer"] and len(lines) == 3
    # references written with capitals and punctuation are scored as MMS writes (as `mms asr --ref` does too)
    lines = []
    shouting = tune(str(hf_dir), str(manifest), str(lm), lexicon=str(lexicon), lang="eng", refs=["Bad cab.", "FED a bead!"],
                    settings=TuneSettings(trials=3, decode_workers=0), cache=tmp_path / "cache", log=lines.append)
    assert [t["wer"] for t in shouting["trials"]] == [t["wer"] for t in result["trials"]]
    assert any("references normalised" in line for line in lines)
    # emissions of another dtype are other emissions: cached apart
    from mms.lm.tune import dev_emissions

    lines = []
    for dtype in ("float32", "bfloat16", "float32"):
        dev_emissions(str(hf_dir), "eng", None, [str(w) for w in wavs], tmp_path / "by-dtype", dtype=dtype,
                      log=lines.append)
    assert lines == ["computing emissions of 2 dev files"] * 2 and len(list((tmp_path / "by-dtype").glob("*.npy"))) == 4
    r = mms("asr", "--model", hf_dir, "--lang", "eng", "--lm", lm, "--lexicon", lexicon, "--config", preset,
            "--manifest", manifest, "--decode-workers", "0")
    assert r.returncode == 0, r.stderr
    assert "WER" in r.stderr  # the manifest's text is used as reference
    assert "has no effect" not in r.stderr
    (tmp_path / "zero.yaml").write_text("lm_weight: 0\n")  # a preset tuned without an LM, on a run with one
    r = mms("asr", "--model", hf_dir, "--lang", "eng", "--lm", lm, "--lexicon", lexicon, "--config",
            tmp_path / "zero.yaml", "--manifest", manifest, "--decode-workers", "0")
    assert r.returncode == 0 and f"zero.yaml sets lm_weight 0: the LM {lm} has no effect" in r.stderr, r.stderr
    # usage errors: a file as --cache, --grid with --trials, --lang other than the dev set's
    r = mms(*argv[:-4], "--cache", preset, "-o", tmp_path / "x.yaml")
    assert r.returncode == 2 and "is a file; give a folder" in r.stderr
    r = mms(*argv, "--grid", "2")
    assert r.returncode == 2 and "not allowed with argument --trials" in r.stderr
    fra = tmp_path / "fra.jsonl"
    fra.write_text(manifest.read_text().replace('"text"', '"lang": "fra", "text"'))
    r = mms("tune", "--model", hf_dir, "--lang", "eng", "--manifest", fra, "--lm", lm, "--lexicon", lexicon, "-o",
            tmp_path / "y.yaml")
    assert r.returncode == 2 and "--lang eng, but the dev set is in fra" in r.stderr


def test_tune_with_a_unit_lm_searches_the_silence_weight(hf_dir, corpus, tmp_path):
    """Lexicon-free decoding has no word score (flashlight's LexiconFreeDecoderOptions has none): with --unit-lm
    `mms tune` searches --sil-weight, each trial's scores are those of that silence weight, and --metric cer picks
    the lowest CER."""
    from mms.lm.tune import dev_emissions
    from mms.scoring import score

    refs = ["bad cab", "fed a bead"]
    manifest, wavs = dev_set(tmp_path, refs, [24000, 30000], seed=70)
    units, preset = tmp_path / "units.arpa", tmp_path / "units.yaml"
    assert mms("lm", "build", corpus, "--order", "3", "--lang", "eng", "--units", "-o", units).returncode == 0
    r = mms("tune", "--model", hf_dir, "--lang", "eng", "--manifest", manifest, "--lm", units, "--unit-lm",
            "--grid", "3", "--lm-weight", "0.5:0.5", "--sil-weight=-20:20", "--metric", "cer", "--decode-workers", "0",
            "--cache", tmp_path / "cache", "-o", preset)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("] lm_weight 0.500 sil_weight") == 3 and "word_score" not in r.stderr
    values = yaml.safe_load(preset.read_text())
    assert "word_score" not in values and values["sil_weight"] in (-20, 0, 20) and "lowest cer" in preset.read_text()

    result = tune(str(hf_dir), str(manifest), str(units), lang="eng", unit_lm=True, cache=tmp_path / "cache",
                  settings=TuneSettings(grid=3, lm_weight=(0.5, 0.5), sil_weight=(-20, 20), metric="cer",
                                        decode_workers=0))
    assert preset_yaml(result) == preset.read_text() and result["searched"] == "sil_weight"
    assert [t["cer"] for t in result["trials"]] == sorted(t["cer"] for t in result["trials"])
    vocab = load_vocabulary(hf_dir, "eng")
    emissions = dev_emissions(str(hf_dir), "eng", None, [str(w) for w in wavs], tmp_path / "cache")
    letters = {}
    for trial in result["trials"]:
        decoder = BeamSearchDecoder(vocab, BeamOptions(lm=str(units), unit_lm=True, beam=100, lm_weight=0.5,
                                                       sil_weight=trial["sil_weight"]))
        hyps = [decoder.decode(e).text for e in emissions]
        got = score(refs, hyps, per_utterance=False)
        assert (got["wer"], got["cer"]) == (trial["wer"], trial["cer"])
        letters[trial["sil_weight"]] = sum(len(h.replace(" ", "")) for h in hyps)
    # the knob acts: a silence bonus makes the frames silences instead of letters (this random model: none at 20)
    assert letters[-20] >= letters[0] >= letters[20] and letters[-20] > letters[20]

    asr = mms("asr", "--model", hf_dir, "--lang", "eng", "--lm", units, "--unit-lm", "--config", preset, *wavs,
              "--decode-workers", "0", "--word-score", "2")
    assert asr.returncode == 0, asr.stderr
    assert "--word-score does nothing with --unit-lm" in asr.stderr


def test_tune_lexicon_only_searches_the_word_score_of_the_zero_shot_model(tmp_path):
    """`mms tune` without --lm: the zero-shot model's uroman lexicon alone (flashlight's ZeroLM), LM weight fixed at 0;
    each setting's WER is that of the lexicon-only beam search at its word score."""
    from mms.lm.tune import dev_emissions
    from mms.scoring import score
    from tests.factory import random_zeroshot_model, write_zeroshot_hf

    zs = write_zeroshot_hf(random_zeroshot_model(seed=4), tmp_path / "zs")
    refs = ["cat dog", "maison"]
    manifest, wavs = dev_set(tmp_path, refs, [24000, 32000], seed=60)
    (tmp_path / "words.txt").write_text("cat\ndog\nmaison\nкот\n")
    lexicon, preset = tmp_path / "lex.txt", tmp_path / "zs.yaml"
    assert mms("lexicon", "--uroman", "--dedupe", tmp_path / "words.txt", "-o", lexicon).returncode == 0
    r = mms("tune", "--model", zs, "--lexicon", lexicon, "--manifest", manifest, "--grid", "3", "--word-score=-30:30",
            "--decode-workers", "0", "--cache", tmp_path / "cache", "-o", preset)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("WER") == 4  # a 3-point word-score line, not 3 x 3: the LM weight does nothing
    values = yaml.safe_load(preset.read_text())
    assert "lm_weight" not in values and values["word_score"] in (-30, 0, 30) and "no LM" in preset.read_text()
    # its word score with a word list's automatic LM: the LM keeps the zero-shot preset's weight; a preset that sets
    # the weight to 0 (as `mms tune` wrote them before) is said to switch the LM off
    (tmp_path / "repeated.txt").write_text("cat dog cat\nmaison\n")
    (tmp_path / "old.yaml").write_text(preset.read_text() + "lm_weight: 0.0\n")
    for config, warned in ((preset, False), (tmp_path / "old.yaml", True)):
        r = mms("asr", "--model", zs, "--words", tmp_path / "repeated.txt", "--config", config, wavs[0])
        assert r.returncode == 0 and "automatic unigram LM" in r.stderr, r.stderr
        assert ("LM weight 0" in r.stderr) == warned, r.stderr

    result = tune(str(zs), str(manifest), None, lexicon=str(lexicon),
                  settings=TuneSettings(grid=3, word_score=(-30, 30), decode_workers=0), cache=tmp_path / "cache")
    assert sorted(t["word_score"] for t in result["trials"]) == [-30, 0, 30]
    assert all(t["lm_weight"] == 0 for t in result["trials"]) and preset_yaml(result) == preset.read_text()
    vocab = load_vocabulary(zs, None)
    emissions = dev_emissions(str(zs), None, None, [str(w) for w in wavs], tmp_path / "cache")
    words = {}
    for trial in result["trials"]:
        decoder = BeamSearchDecoder(vocab, BeamOptions(lm=None, lexicon=str(lexicon), beam=100, lm_weight=0.0,
                                                       word_score=trial["word_score"]))
        hyps = [decoder.decode(e).text for e in emissions]
        assert score(refs, hyps, per_utterance=False)["wer"] == trial["wer"]
        words[trial["word_score"]] = sum(len(h.split()) for h in hyps)
    assert words[-30] <= words[0] <= words[30] and words[-30] < words[30]  # a word bonus inserts words

    asr = mms("asr", "--model", zs, "--words", tmp_path / "words.txt", "--config", preset, *wavs,
              "--decode-workers", "0")
    assert asr.returncode == 0, asr.stderr
    r = mms("tune", "--model", zs, "--manifest", manifest, "-o", preset)
    assert r.returncode == 2 and "without --lm, give --lexicon" in r.stderr
    # the preset with the lexicon alone in `mms asr` (it had been refused: "--lexicon needs --lm")
    asr = mms("asr", "--model", zs, "--lexicon", lexicon, "--config", preset, *wavs, "--decode-workers", "0",
              "--format", "jsonl")
    assert asr.returncode == 0, asr.stderr
    assert {w for line in asr.stdout.splitlines() for w in json.loads(line)["text"].split()} <= {
        "cat", "dog", "maison", "кот"}


def test_asr_refuses_beam_options_that_would_do_nothing_or_fail(tmp_path):
    wav = tmp_path / "a.wav"
    sf.write(wav, random_audio(16000, seed=2), 16000)
    (tmp_path / "lex.txt").write_text("good g o o d |\n")
    for args, message in ((["--lm-weight", "3"], "--lm-weight is an option of beam search"),
                          (["--beam", "5"], "--beam is an option of beam search"),
                          (["--decode-workers", "3"], "--decode-workers is an option of beam search"),
                          (["--unit-lm"], "--unit-lm needs --lm"),
                          (["--unit-lm", "--lexicon", tmp_path / "lex.txt", "--lm", tmp_path / "x.arpa"],
                           "--unit-lm decodes without a lexicon")):
        r = mms("asr", "--model", "demo", "--lang", "eng", *args, wav)
        assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)


def test_tune_ranges_are_finite_pairs():
    from mms.lm.tune import TuneError, parse_range

    assert parse_range("5:-1", "--lm-weight") == (-1.0, 5.0)
    for bad in ("nan:1", "-inf:0", "1:inf", "1", "a:b"):
        with pytest.raises(TuneError, match="--word-score"):
            parse_range(bad, "--word-score")


def test_uroman_missing_is_a_usage_error_naming_the_package(tmp_path, monkeypatch, capsys):
    # (it was reported as an internal error, "a bug", exit 3)
    import sys

    from mms.cli import main
    from mms.text import romanize

    monkeypatch.setitem(sys.modules, "uroman", None)  # import uroman -> ImportError
    romanize._uroman.cache_clear()
    (tmp_path / "words.txt").write_text("привет\n")
    try:
        assert main(["lexicon", "--uroman", str(tmp_path / "words.txt"), "-o", str(tmp_path / "x.lex")]) == 2
    finally:
        romanize._uroman.cache_clear()
    assert "romanisation needs the `uroman` package: pip install uroman" in capsys.readouterr().err
