"""Options of `mms asr` (no torch here; mms.asr.transcriber is imported only to run)."""

from __future__ import annotations

import argparse
import sys

from mms.command import (add_common_options, add_corpus_options, add_device_options, add_time_offsets_option,
                         config_values, finite, non_negative, positive, say, score_or_minus_infinity, seed)
from mms.errors import MMSError
from mms.writers import formats

EXAMPLES = """\
examples:
  mms asr --model mms-1b-all/ --lang fra audio1.wav audio2.flac
  mms asr --model mms1b_all.pt --lang deu --manifest dev.tsv --format jsonl --output hyps.jsonl
  mms asr --model mms1b_all.pt --dict eng.txt --lang eng talk.mp3 --timestamps word --format json
  mms asr --model M --lang yor --lm lm.bin --lexicon lexicon.txt --lm-weight 2.69 --word-score 2.8 a.wav
  mms asr --model M --lang yor --lm chars.arpa --unit-lm a.wav             # lexicon-free, character LM
  mms asr --model M --lang yor --manifest dev.tsv --ref dev.wrd --format jsonl   # also prints WER and CER
  mms asr --model mms-1b-all --adapter xyz-adapter/ --lang xyz a.wav     # a language added by train-adapter
  mms asr --model omniasr-ctc-1b talk.mp3                                # Omnilingual ASR: no --lang needed
  mms asr --model omniASR-CTC-300M.pt --tokenizer omniASR_tokenizer.model lecture.flac --timestamps word --format json
  mms asr --model mms-zeroshot-300m --words words.txt a.wav       # zero-shot: any language from a word list
  mms asr --model mms-zeroshot-300m --words sentences.txt --lm lm.arpa a.wav
  mms asr --lang auto --rerank 10 --rerank-weights rerank.yaml a.wav --format jsonl   # see mms tune-rerank

inputs: audio files (wav, flac, ogg, mp3; other containers through ffmpeg), any sample rate and channel
count, and/or --manifest: a fairseq .tsv (root line, then path<TAB>samples), a JSONL manifest
(audio_filepath or audio, optional lang and text) or a plain list of paths. A manifest `lang` column
overrides --lang for that line. Long inputs are transcribed in windows, so length is not limited.

exit status: 0 every input transcribed, 1 some input failed (the others are still written), 2 usage error,
3 internal error (a bug; --verbose prints the traceback).
"""


def load_defaults(config_path: str | None = None) -> dict:
    """Option defaults: mms.options.ASROptions and BeamOptions (the one place they are typed),
    then the YAML file of --config."""
    from dataclasses import fields

    from mms.options import ASROptions, BeamOptions

    defaults = {"device": "auto", "dtype": "auto", "format": None, "timestamps": "none"}  # format None: --output's
    for cls in (ASROptions, BeamOptions):
        defaults.update({f.name: f.default for f in fields(cls) if f.name not in ("lm", "lexicon", "unit_lm")})
    if config_path:
        import yaml

        try:
            with open(config_path, encoding="utf-8") as f:
                preset = yaml.safe_load(f) or {}
        except OSError as e:
            raise MMSError(f"--config {config_path}: {e.strerror or e}") from None
        except UnicodeDecodeError:
            raise MMSError(f"--config {config_path}: not UTF-8 text (a YAML file of options is expected)") from None
        except yaml.YAMLError as e:  # its message spans lines (context, problem, marks): one line of it
            mark = getattr(e, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            raise MMSError(f"--config {config_path}: not valid YAML: {getattr(e, 'problem', None) or e}{where}") from None
        if not isinstance(preset, dict):
            raise MMSError(f"--config {config_path}: not a preset (a YAML mapping of options, `lm_weight: 1.5`; "
                           f"known: {', '.join(sorted(defaults))})")
        unknown = sorted(set(preset) - set(defaults))
        if unknown:
            raise MMSError(f"--config {config_path}: unknown option {', '.join(map(str, unknown))}; known: "
                           f"{', '.join(sorted(defaults))}")
        defaults.update(preset)
    return defaults


def add_parser(commands) -> argparse.ArgumentParser:
    config = _peek_config(sys.argv)
    try:
        d = load_defaults(config)
    except MMSError as e:  # the parser is being built: no command runs yet to report it
        print(f"mms asr: error: {e}", file=sys.stderr)
        raise SystemExit(2)
    p = commands.add_parser(
        "asr", help="speech recognition (wav2vec2 CTC with per-language adapters)",
        description="Transcribe speech with an MMS CTC model (fairseq .pt or Hugging Face directory).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("audio", nargs="*", help="audio files to transcribe (or manifests: .tsv, .jsonl, .json, .lst, .list)")
    p.add_argument("--model", "-m",
                   help="published name (default: mms-1b-all, fetched once with only the adapters used; see `mms "
                        "models list`; omniasr-ctc-* for Omnilingual ASR), Hugging Face repo id, Hugging Face "
                        "directory, fairseq checkpoint (.pt) or fairseq2 Omnilingual ASR checkpoint (.pt); `demo`: the "
                        "small model shipped in the package (eng, rus, ell, hin), no download")
    p.add_argument("--lang", "-l", help="language code of the adapter to use, e.g. fra, cmn-script_simplified; "
                                         "`auto`: identify each input's language first (see --lid-model)")
    p.add_argument("--lid-model", metavar="MODEL",
                   help="language identification model for --lang auto (default: the --model's own LID head, as "
                        "the demo's or the lid/ folder `mms train --lid` writes; else the registry's, mms-lid-4017)")
    p.add_argument("--adapter", metavar="DIR",
                   help="directory written by `mms train-adapter`: its languages are added to the model's")
    p.add_argument("--tokenizer", metavar="FILE",
                   help="SentencePiece tokenizer (.model) of an Omnilingual ASR checkpoint (default: the .model beside "
                        "it, else the registry's)")
    p.add_argument("--dict", dest="dict_path", metavar="FILE",
                   help="fairseq dictionary file of the language (instead of the one stored in the model)")
    p.add_argument("--manifest", metavar="FILE", action="append", default=[],
                   help="fairseq .tsv, JSONL or list of audio paths (repeatable)")
    p.add_argument("--format", "-f", choices=formats("asr"), default=d["format"],
                   help="output format; srt/vtt are subtitles from word times (default: "
                        + (d["format"] or "the --output file's suffix, else txt") + ")")
    p.add_argument("--output", "-o", default="-",
                   help="output file (default: stdout); line formats are written and flushed input by input, json "
                        "and srt/vtt at the end, atomically")
    p.add_argument("--timestamps", choices=("none", "word", "char"), default=d["timestamps"],
                   help="add word (and character) start/end seconds to jsonl/json output; srt and vtt have their "
                        "times without it (default: %(default)s)")
    add_time_offsets_option(p)
    add_device_options(p, d["device"], d["dtype"], quantize=True)
    p.add_argument("--batch-seconds", type=positive(float), default=d["batch_seconds"],
                   help="padded audio seconds per forward pass (default: 200 on CUDA, 10 on CPU)")
    p.add_argument("--buffer-seconds", type=positive(float), default=d["buffer_seconds"],
                   help="audio decoded ahead, sorted by length and run before its results are written: a kill "
                        "loses at most this much (default: the larger of 4 batches and 600 s)")
    p.add_argument("--chunk-seconds", type=positive(float), default=d["chunk_seconds"],
                   help="window length for long inputs (default: %(default)s)")
    p.add_argument("--context-seconds", type=non_negative(float), default=d["context_seconds"],
                   help="extra audio each window sees on both sides (default: %(default)s)")
    rr = p.add_argument_group("N-best re-ranking (--lang auto; see docs/zeroshot.md)")
    rr.add_argument("--rerank", type=int, metavar="N",
                    help="transcribe LID's N most probable languages and keep the best by weighted features")
    rr.add_argument("--rerank-weights", metavar="FILE",
                    help="feature weights: YAML from `mms tune-rerank`, or fairseq's best_coefficients (default: LID "
                         "probability only, i.e. the same choice as without --rerank)")
    rr.add_argument("--zeroshot-model", metavar="MODEL",
                    help="zero-shot model for the uasr feature (default: mms-zeroshot-300m; loaded only when its "
                         "weight is not 0)")
    rr.add_argument("--rerank-lm", action="append", metavar="LANG=FILE|DIR",
                    help="ARPA n-gram LM of a language for the lm feature (repeatable), or a directory of LANG.arpa "
                         "files; a stand-in for the reference's 7B LLM (default: those recorded in the weights file)")
    rr.add_argument("--rerank-wlid", metavar="MODEL.bin",
                    help="fastText text LID model (e.g. NLLB's lid218e.bin) for the wlid feature; needs the fasttext "
                         "package (default: the one recorded in the weights file)")
    zs = p.add_argument_group("zero-shot (mms-zeroshot-300m: uroman characters; see docs/zeroshot.md)")
    zs.add_argument("--words", metavar="FILE",
                    help="word list or text of the language: spelled in uroman into a lexicon, transcripts are its "
                         "words (presets: word score -3.5 without LM, -0.18 and LM weight 1.48 with one; beam 500, "
                         "token beam 50)")
    zs.add_argument("--auto-lm", action=argparse.BooleanOptionalAction, default=None,
                    help="build a unigram LM of the --words text (default: when a word repeats, i.e. sentences)")
    zs.add_argument("--uroman-lang", metavar="CODE", help="ISO 639-3 code for uroman's language-specific rules")
    lm = p.add_argument_group("language model (KenLM beam search through flashlight-text; see docs/lm.md)")
    lm.add_argument("--lm", metavar="FILE", help="KenLM language model (ARPA or binary); enables beam search")
    lm.add_argument("--lexicon", metavar="FILE", help="lexicon: `word u n i t s |` per line (see `mms lexicon`)")
    lm.add_argument("--unit-lm", action="store_true", help="the LM is over the model's units: decode without lexicon")
    lm.add_argument("--beam", type=positive(int), default=argparse.SUPPRESS, help=f"beam size (default: {d['beam']}; fairseq's README: 500)")
    lm.add_argument("--beam-size-token", type=positive(int), default=argparse.SUPPRESS,
                    help="tokens considered per frame (default: the whole vocabulary; fairseq's README: 50)")
    lm.add_argument("--beam-threshold", type=non_negative(float), default=argparse.SUPPRESS,
                    help=f"prune hypotheses this far below the best (default: {d['beam_threshold']})")
    lm.add_argument("--lm-weight", type=finite, default=argparse.SUPPRESS, help=f"LM weight (default: {d['lm_weight']})")
    lm.add_argument("--word-score", type=finite, default=argparse.SUPPRESS,
                    help=f"score added per word, with a lexicon (default: {d['word_score']})")
    lm.add_argument("--sil-weight", type=finite, default=argparse.SUPPRESS,
                    help=f"score added per silence: with --unit-lm and no lexicon, the only bonus "
                         f"(default: {d['sil_weight']})")
    lm.add_argument("--unk-weight", type=score_or_minus_infinity, default=d["unk_weight"],
                    help="score of out-of-lexicon words (default: %(default)s)")
    lm.add_argument("--decode-workers", type=non_negative(int), default=d["decode_workers"],
                    help="beam-search processes beside the acoustic model (0: in-process; default: %(default)s)")
    p.add_argument("--ref", metavar="FILE",
                   help="reference transcripts, one line per input (or use the manifest's text): print WER and CER")
    p.add_argument("--config", metavar="FILE", help="YAML file of option defaults, e.g. `beam: 500` (see configs/asr.yaml)")
    add_common_options(p)
    add_corpus_options(p)
    if config:  # its values parsed as the flags parse theirs (ranges, choices), said as a usage error
        try:
            d = config_values(p, d, f"--config {config}")
        except MMSError as e:
            print(f"mms asr: error: {e}", file=sys.stderr)
            raise SystemExit(2)
        p.set_defaults(**{a.dest: d[a.dest] for a in p._actions
                          if a.dest in d and a.option_strings and a.default is not argparse.SUPPRESS})
    p.set_defaults(run=run, config_defaults=d)
    add_tune_rerank_parser(commands)
    return p


TUNE_RERANK_EXAMPLES = """\
examples:
  mms tune-rerank --manifest dev.tsv --ref dev.wrd --ref-lang dev.lang -o rerank.yaml
  mms tune-rerank --model mms-1b-all --lid-model mms-lid-4017 --manifest dev.jsonl --rerank 10 \\
                  --features slid,asr,len --trials 10000 --seed 0 -o rerank.yaml   # no zero-shot model
  mms tune-rerank --manifest dev.jsonl --rerank-lm eng=eng.arpa --rerank-lm fra=fra.arpa -o rerank.yaml
  mms asr --lang auto --rerank 10 --rerank-weights rerank.yaml test/*.wav

dev set: --manifest (fairseq .tsv, JSONL, or a list of paths), references from --ref (one line per dev file; .wrd,
.ltr, .tsv, JSONL) or the manifest's text, reference languages from --ref-lang (one ISO 639-3 code per line) or the
JSONL manifest's `lang`.

The models run once per dev file; their candidates and features are cached (--cache), so a rerun with other
--trials, --seed, --features (except a newly added uasr) or a smaller --rerank runs no model. Reported (stderr and
the YAML's `dev:`): LID accuracy against the reference languages and the corpus error rate (WER; CER for adx bod cmn
dzo jpn khg khm lao mya tha yue), before (LID alone) and after re-ranking, and the oracle error rate.
"""


def add_tune_rerank_parser(commands) -> argparse.ArgumentParser:
    p = commands.add_parser(
        "tune-rerank", help="search the N-best LID + ASR re-ranking weights on a dev set",
        description="Run LID's N best languages and a greedy transcript in each on every dev file once (cached),\n"
                    "then search the feature weights of `mms asr --rerank` (fairseq lid_rerank's random search:\n"
                    "slid, wlid in [0, 100), asr, lm, uasr in [0, 10), len in [-0.5, 0.5)) for the lowest corpus\n"
                    "error rate, and write them as YAML for --rerank-weights (see docs/zeroshot.md).",
        epilog=TUNE_RERANK_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", required=True,
                   help="dev set: fairseq .tsv, JSONL (audio, text, lang) or list of paths")
    p.add_argument("--ref", metavar="FILE",
                   help="reference transcripts, one per dev file (default: the manifest's text)")
    p.add_argument("--ref-lang", metavar="FILE",
                   help="reference languages, one ISO 639-3 code per dev file (default: the manifest's lang)")
    p.add_argument("--output", "-o", required=True, help="weights YAML to write ('-': stdout)")
    p.add_argument("--model", "-m", help="ASR model with adapters (default: mms-1b-all)")
    p.add_argument("--lid-model", metavar="MODEL", help="LID model (default: the --model's own LID head, as the "
                                                        "demo's; else the registry's, mms-lid-4017)")
    p.add_argument("--dict", dest="dict_path", metavar="FILE", help="fairseq dictionary file of the ASR model")
    p.add_argument("--rerank", type=int, default=10, metavar="N",
                   help="candidate languages per file (default: %(default)s)")
    p.add_argument("--features", metavar="A,B,...",
                   help="features searched, of slid, wlid, asr, lm, uasr, len; the others weigh 0 (default: "
                        "slid,asr,uasr,len, plus lm with --rerank-lm and wlid with --rerank-wlid)")
    p.add_argument("--zeroshot-model", metavar="MODEL", help="zero-shot model of the uasr feature (default: "
                                                             "mms-zeroshot-300m)")
    p.add_argument("--rerank-lm", action="append", metavar="LANG=FILE|DIR",
                   help="ARPA n-gram LM of a language for the lm feature (repeatable), or a directory of LANG.arpa "
                        "files: a stand-in, not the reference's 7B LLM (see docs/zeroshot.md)")
    p.add_argument("--rerank-wlid", metavar="MODEL.bin",
                   help="fastText text LID model for the wlid feature (needs the fasttext package)")
    p.add_argument("--trials", type=positive(int), default=10000, help="random draws (default: %(default)s, as the reference)")
    p.add_argument("--seed", type=seed, default=0, help="of the draws (default: %(default)s)")
    p.add_argument("--cache", metavar="DIR", help="feature cache (default: ~/.cache/mms/rerank)")
    add_device_options(p)
    add_common_options(p)
    p.set_defaults(run=run_tune_rerank)
    return p


def run_tune_rerank(args: argparse.Namespace) -> int:
    from mms.asr.rerank_features import parse_lm_specs
    from mms.asr.tune_rerank import tune_rerank, weights_yaml
    from mms.files import check_writable, write_text_atomic

    check_writable(args.output)  # now, not after every candidate has been computed
    plugins = {}
    if args.rerank_lm:
        plugins["lm"] = parse_lm_specs(args.rerank_lm)
    if args.rerank_wlid:
        plugins["wlid"] = args.rerank_wlid
    result = tune_rerank(args.manifest, refs=args.ref, ref_langs=args.ref_lang, model=args.model,
                         lid_model=args.lid_model, zeroshot_model=args.zeroshot_model, n=args.rerank,
                         features=args.features, plugins=plugins, trials=args.trials, seed=args.seed,
                         dict_path=args.dict_path, device=args.device, dtype=args.dtype, cache=args.cache,
                         log=lambda line: say("mms tune-rerank", line))
    write_text_atomic(args.output, weights_yaml(result))
    dev, w = result["dev"], result["weights"]
    say("mms tune-rerank", f"{dev['files']} dev files ({dev['failed']} failed), {dev['candidates']} candidates, "
                           f"{dev['trials']} draws in {result['seconds']:.2f} s")
    for when in ("before", "after"):
        label = "before (LID alone)" if when == "before" else "after re-ranking"
        say("mms tune-rerank", f"{label}: LID accuracy {100 * dev[when]['lid_acc']:.2f}%, error rate "
                               f"{dev[when]['wer']:.2f}%")
    say("mms tune-rerank", f"oracle error rate {dev['oracle_wer']:.2f}%; weights "
                           + " ".join(f"{name} {value:g}" for name, value in w.items()))
    return 0


def _peek_config(argv: list[str]) -> str | None:
    """The --config of an `mms asr` command line (the parser is built for every command: others have their own
    --config or none)."""
    command = next((arg for arg in argv[1:] if not arg.startswith("-")), None)
    if command != "asr":
        return None
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    return None


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from mms.command import output_format, run_corpus, say
    from mms.manifest import collect_inputs
    from mms.options import ASROptions, from_namespace

    output_format(args, formats("asr"))
    items = collect_inputs(args.audio, args.manifest, keep_bad_lines=True)
    if not items:
        raise MMSError("no inputs: give audio files or --manifest")
    timestamps = None if args.timestamps == "none" else args.timestamps
    if args.format in ("srt", "vtt") and len(items) > 1:  # one clock per file: cues of several would interleave
        raise MMSError(f"--format {args.format}: one recording per subtitle file, and {len(items)} inputs were given; "
                       f"run once per file, or use --format jsonl (word times of every input)")
    if timestamps is not None and args.format in ("txt", "tsv"):
        raise MMSError(f"--timestamps {timestamps}: --format {args.format} has no times; use --format jsonl or json "
                       f"(or srt / vtt subtitles)")
    if args.format in ("srt", "vtt") and timestamps == "char":
        raise MMSError(f"--timestamps char: --format {args.format} cues are made of word times; leave --timestamps "
                       f"out, or use --format json or jsonl for character times")
    if args.format in ("srt", "vtt") and timestamps is None:
        timestamps = "word"  # subtitles are made of word times
    # options that would do nothing: refused, not ignored
    if args.time_offsets is not None and timestamps is None:
        raise MMSError("--time-offsets shifts word and character times: add --timestamps word or char (or --format "
                       "srt / vtt)")
    if args.uroman_lang and not args.words:
        raise MMSError("--uroman-lang picks uroman's rules for spelling --words: add --words")
    if args.lid_model and args.lang != "auto":
        raise MMSError("--lid-model identifies the language for --lang auto: add --lang auto")
    beam = beam_options(args)
    zeroshot = None
    if args.words:
        from pathlib import Path

        from mms.files import missing_file

        if why := missing_file(args.words):
            raise MMSError(f"--words {args.words}: {why}")
        from mms.hub.languages import check_code

        if args.uroman_lang:
            check_code(args.uroman_lang, "--uroman-lang")
        if args.lang and args.lang != "auto":
            check_code(args.lang)  # it picks the word list's normalisation rules
        zeroshot = {"words": str(Path(args.words).resolve()), "auto_lm": args.auto_lm, "uroman_lang": args.uroman_lang}
    rerank = None
    if args.rerank is not None:
        from mms.asr.rerank import RerankWeights, load_weights

        if args.lang != "auto":
            raise MMSError("--rerank re-ranks the languages of --lang auto: add --lang auto")
        if args.rerank < 1:
            raise MMSError("--rerank N needs N >= 1")
        weights = load_weights(args.rerank_weights) if args.rerank_weights else RerankWeights()
        weights.plugins = rerank_plugins(args, weights)
        rerank = {"n": args.rerank, "weights": weights.weights, "plugins": weights.plugins,
                  "zeroshot_model": rerank_zeroshot_model(args, weights)}
    elif args.rerank_weights or args.zeroshot_model or args.rerank_lm or args.rerank_wlid:
        raise MMSError("--rerank-weights, --zeroshot-model, --rerank-lm and --rerank-wlid need --rerank N")
    settings = {"rerank": rerank, "model": args.model, "lang": args.lang, "dict_path": args.dict_path, "tokenizer": args.tokenizer,
                "adapter_dir": args.adapter,
                "lid_model": args.lid_model, "device": args.device, "dtype": args.dtype, "timestamps": timestamps,
                "input_langs": sorted({item.lang for item in items if item.lang}),
                "options": asdict(from_namespace(ASROptions, args)), "beam": beam, "zeroshot": zeroshot}
    rows = [{"index": i, "audio": item.audio, "lang": item.lang, "text": item.text,
             **({"error": item.error} if item.error is not None else {})} for i, item in enumerate(items)]
    computed = (args.chunk_seconds + 2 * args.context_seconds) / args.chunk_seconds
    if computed > 8:  # each second of a long input is computed `computed` times over
        say("mms asr", f"note: windows of {args.chunk_seconds:g} s with {args.context_seconds:g} s of context on "
                       f"each side compute a long input {computed:.0f} times over; raise --chunk-seconds or lower "
                       "--context-seconds")
    scorer = normalized_scorer = None
    with_text = sum(item.text is not None for item in items)
    if not args.ref and 0 < with_text < len(items):  # references for some inputs only: no corpus score to print
        say("mms asr", f"note: not scored: {len(items) - with_text} of {len(items)} inputs have no reference text "
                       "(give --ref FILE for all)")
    elif args.ref or with_text:
        from mms.scoring import CorpusScorer, read_texts, texts_from_items

        references = read_texts(args.ref, len(items)) if args.ref else texts_from_items(items)
        scorer = CorpusScorer()
        # references with capitals or punctuation, which MMS models never write: also scored normalised, as the
        # trainers score their dev sets
        from mms.text.normalize import normalize_transcript

        langs = [item.lang or (None if args.lang in (None, "auto") else args.lang) for item in items]
        normalized = [normalize_transcript(ref, lang) for ref, lang in zip(references, langs)]
        normalized_scorer = CorpusScorer() if normalized != list(references) else None

    failed = 0

    def score(record):  # a failed input counts as empty output, as fairseq scores it (and that is said)
        nonlocal failed
        failed += bool(record.get("error"))
        scorer.add(references[record["index"]], None if record.get("error") else record["text"])
        if normalized_scorer is not None:  # both sides, as `mms score --normalize` (a model may write capitals)
            i = record["index"]
            normalized_scorer.add(normalized[i], None if record.get("error") else
                                  normalize_transcript(record["text"], record.get("lang") or langs[i]))

    status = run_corpus(args, "asr", settings, rows, args.format, {"single": len(items) == 1},
                        score if scorer is not None else None,
                        describe=lambda r: f"{r.name} ({r.get('duration') or 0:.1f} s)")
    if scorer is not None and scorer.utterances:  # corpus WER and CER of this run's inputs, as fairseq computes them
        from mms.scoring import format_summary

        say("mms asr", format_summary(scorer.summary())
            + (f"; failed inputs scored as empty transcripts: {failed}" if failed else ""))
        if normalized_scorer is not None:
            say("mms asr", "against the references normalised as MMS transcripts are (lower case, no punctuation; "
                           "as `mms train` scores its dev set): " + format_summary(normalized_scorer.summary()))
    elif scorer is not None and args.engine == "ray":  # the records are in the actors' parts, not seen here
        say("mms asr", f"note: not scored here (the Ray actors wrote the records): mms merge {args.output_dir} -o "
                       f"hyps.jsonl, then mms score --ref REFERENCES --hyp hyps.jsonl")
    return status


def rerank_plugins(args: argparse.Namespace, weights) -> dict:
    """The text-feature plug-ins of --rerank: --rerank-lm / --rerank-wlid, else those of the weights file; only the
    features with a weight are kept, and each of those must have one."""
    from mms.asr.rerank_features import build_features, check_specs, parse_lm_specs

    plugins = dict(weights.plugins)
    if args.rerank_lm:
        plugins["lm"] = parse_lm_specs(args.rerank_lm)
    if args.rerank_wlid:
        plugins["wlid"] = args.rerank_wlid
    plugins = check_specs(plugins)
    used = [name for name in ("lm", "wlid") if weights.used(name)]
    build_features(plugins, used)  # a missing file or package fails here, before any audio (models load later)
    unused = [name for name in ("lm", "wlid") if getattr(args, f"rerank_{name}") and name not in used]
    if unused:
        say("mms asr", f"note: the weight of {' and '.join(unused)} is 0: --rerank-{unused[0]} is not used")
    return {name: spec for name, spec in plugins.items() if name in used}


def rerank_zeroshot_model(args: argparse.Namespace, weights) -> str:
    """The zero-shot model of the uasr feature: --zeroshot-model, else the one the weights were tuned with (`mms
    tune-rerank` records it), else mms-zeroshot-300m; another than the recorded one is said."""
    recorded = weights.extra.get("zeroshot_model")
    recorded = str(recorded) if recorded else None
    if args.zeroshot_model and recorded and args.zeroshot_model != recorded and weights.used("uasr"):
        say("mms asr", f"note: {args.rerank_weights} was tuned with the zero-shot model {recorded}; the uasr feature "
                       f"now comes from {args.zeroshot_model}")
    return args.zeroshot_model or recorded or "mms-zeroshot-300m"


# beam-search settings a preset (--words) may set when neither the command line nor --config does
PRESET_KNOBS = ("beam", "beam_size_token", "beam_threshold", "lm_weight", "word_score", "sil_weight")


def beam_options(args: argparse.Namespace) -> dict | None:
    """BeamOptions fields (JSON-able, for the corpus workers) or None for greedy decoding. With --words the
    lexicon and LM are made by the worker, and the knobs given neither here nor in --config are left None for
    the zero-shot preset (mms.asr.zeroshot.preset) to fill."""
    words = getattr(args, "words", None)
    if words and (args.lexicon or args.unit_lm):
        raise MMSError("--words makes the lexicon: do not give --lexicon or --unit-lm with it")
    if getattr(args, "auto_lm", None) is not None and not words:
        raise MMSError("--auto-lm / --no-auto-lm need --words")
    if not words and (args.lm or args.lexicon or args.unit_lm):  # now, not after the model has loaded
        from mms.decoding.beam import check_combination

        check_combination(args.lm, args.lexicon, args.unit_lm)
    defaults = load_defaults(None)
    config = getattr(args, "config_defaults", None) or load_defaults(getattr(args, "config", None))
    if not args.lm and not words and not args.lexicon:  # greedy: the beam-search options would do nothing
        given = [knob for knob in PRESET_KNOBS if hasattr(args, knob)] + [
            knob for knob in ("unk_weight", "decode_workers") if getattr(args, knob) != defaults[knob]]
        if given:
            raise MMSError(f"--{given[0].replace('_', '-')} is an option of beam search: give --lm and/or --lexicon "
                           f"(or --words), or leave it out")
        unused = [knob for knob in PRESET_KNOBS + ("unk_weight",) if config[knob] != defaults[knob]]
        if unused:  # a preset may serve greedy and beam runs alike: said, not refused
            say("mms asr", f"note: --config {args.config} sets beam-search options ({', '.join(unused)}), which do "
                           f"nothing without --lm, --lexicon or --words: decoding greedily")
        return None
    if args.unit_lm and not args.lexicon and hasattr(args, "word_score"):
        say("mms asr", "note: --word-score does nothing with --unit-lm and no --lexicon (flashlight's lexicon-free "
                       "decoder has no word score); --sil-weight is its bonus (`mms tune --unit-lm` searches it)")
    options = {"lm": args.lm, "lexicon": args.lexicon, "unit_lm": args.unit_lm, "unk_weight": args.unk_weight}
    for knob in PRESET_KNOBS:
        if hasattr(args, knob):  # given on the command line
            options[knob] = getattr(args, knob)
        elif config[knob] != defaults[knob] or not words:
            options[knob] = config[knob]
        else:
            options[knob] = None
    if args.lm and options["lm_weight"] == 0:
        source = "--lm-weight 0" if hasattr(args, "lm_weight") else f"--config {args.config} sets lm_weight 0"
        say("mms asr", f"warning: {source}: the LM {args.lm} has no effect (a preset tuned without an LM?)")
    return options
