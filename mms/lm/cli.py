"""`mms lexicon`, `mms lm build`, `mms score`, `mms tune` (no torch here; heavy modules load in `run`)."""

from __future__ import annotations

import argparse
import json

from mms.command import add_common_options, add_device_options, non_negative, positive, say, seed
from mms.lm.tune import TuneSettings  # light: the search runs in mms.lm.tune.tune, imported by run_tune

KENLM_MAX_ORDER = 6  # the highest order flashlight-text's KenLM loads (its wheels keep KenLM's default build)


def add_parser(commands) -> None:
    raw = argparse.RawDescriptionHelpFormatter

    p = commands.add_parser(
        "lexicon", help="spell corpus words in a model's units, for --lexicon",
        description="Write a lexicon (`word<TAB>u n i t s |`) of the words of a text corpus, spelled in the units "
                    "of a model's language. The corpus gets MMS text normalisation first; words with characters "
                    "outside the vocabulary are dropped and counted.", formatter_class=raw,
        epilog="examples:\n  mms lexicon --model mms1b_all.pt --lang yor corpus.txt -o lexicon.txt\n"
               "  mms lexicon --uroman words.txt -o lexicon.txt      # for the zero-shot model (mms-zeroshot-300m)")
    p.add_argument("corpus", nargs="+", help="UTF-8 text files, one sentence per line")
    p.add_argument("--model", "-m", help="the ASR model: a path or a published name such as demo (only its vocabulary is read); not with --uroman")
    p.add_argument("--uroman", action="store_true",
                   help="spell each word in uroman letters (a-z ') for the MMS zero-shot model, as its reference does; "
                        "words without a romanisation are dropped and reported")
    p.add_argument("--uroman-lang", metavar="CODE", help="with --uroman: ISO 639-3 code for uroman's language rules")
    p.add_argument("--dedupe", action="store_true",
                   help="with --uroman: one word per spelling (the most frequent, then the shortest), for decoding "
                        "without an LM")
    p.add_argument("--lang", "-l", help="language of the adapter (and of the text normalisation)")
    p.add_argument("--dict", dest="dict_path", metavar="FILE",
                   help="fairseq dictionary file (dict.ltr.txt) instead of the model's; enough alone")
    p.add_argument("--min-count", type=positive(int), default=1, help="drop words seen fewer times (default: %(default)s)")
    p.add_argument("--no-normalize", action="store_true", help="take the corpus as it is")
    p.add_argument("--output", "-o", default="-", help="lexicon file (default: stdout)")
    p.add_argument("--offline", action="store_true",
                   help="use only models already on disk or in the cache, never the network (as HF_HUB_OFFLINE=1)")
    p.set_defaults(run=run_lexicon)

    p = commands.add_parser(
        "lm", help="build an n-gram language model (ARPA)",
        description="Language-model tools.", formatter_class=raw,
        epilog="example:\n  mms lm build corpus.txt --order 4 --lang yor -o lm.arpa")
    sub = p.add_subparsers(dest="lm_command", metavar="SUBCOMMAND", required=True)
    b = sub.add_parser("build", help="modified Kneser-Ney n-gram LM -> ARPA (KenLM's lmplz when on PATH)",
                       description="Estimate an interpolated modified Kneser-Ney n-gram model and write it as ARPA, "
                                   "loadable by KenLM / `mms asr --lm`. Uses KenLM's lmplz when it is on PATH.")
    b.add_argument("corpus", nargs="+", help="UTF-8 text files, one sentence per line")
    b.add_argument("--order", type=positive(int), default=4,
                   help=f"n-gram order (default: %(default)s; `mms asr --lm` loads up to {KENLM_MAX_ORDER})")
    b.add_argument("--lang", "-l", help="apply MMS text normalisation for this language first (recommended)")
    b.add_argument("--units", action="store_true",
                   help="a unit (character) LM for `mms asr --unit-lm`: sentences become `h e l l o | ...`")
    b.add_argument("--no-lmplz", action="store_true", help="never use lmplz")
    b.add_argument("--output", "-o", required=True, help="ARPA file to write")
    b.set_defaults(run=run_lm_build, prog="mms lm build")

    p = commands.add_parser(
        "score", help="WER and CER of hypotheses against references",
        description="Word and character error rates as fairseq computes them (corpus level: edit operations over "
                    "reference length), per utterance and in total, as JSON. References and hypotheses are text "
                    "files (one line per utterance), fairseq .wrd/.ltr/.tsv, manifests or `mms asr` JSON/JSONL.",
        formatter_class=raw, epilog="example:\n  mms score --ref dev.wrd --hyp hyps.jsonl")
    p.add_argument("--ref", required=True, help="references")
    p.add_argument("--hyp", required=True, help="hypotheses")
    p.add_argument("--ignore-spaces", action="store_true", help="CER without spaces (as MMS's lid_rerank)")
    p.add_argument("--normalize", action="store_true",
                   help="normalise both sides as MMS transcripts are (lower case, punctuation removed; MMS data "
                        "prep, as `mms train` scores its dev set) before scoring")
    p.add_argument("--lang", "-l", help="with --normalize: the language's own rules (ISO 639-3)")
    p.add_argument("--output", "-o", default="-", help="JSON file (default: stdout)")
    p.set_defaults(run=run_score)

    p = commands.add_parser(
        "tune", help="search --lm-weight / --word-score on a dev set",
        description="Compute the model's emissions of a dev set once (cached on disk), then search LM weight and "
                    "word score for the lowest WER (or CER: --metric cer) with KenLM beam search, and write the best "
                    "as a preset for `mms asr --config`. With --lexicon and no --lm (e.g. the zero-shot model's "
                    "uroman lexicon) only the word score is searched; with --unit-lm and no lexicon, the LM weight "
                    "and the silence score (--sil-weight).", formatter_class=raw,
        epilog="example:\n  mms tune --model M --lang yor --manifest dev.tsv --ref dev.wrd --lm lm.bin "
               "--lexicon lex.txt -o yor-lm.yaml\n  mms asr --model M --lang yor --lm lm.bin --lexicon lex.txt "
               "--config yor-lm.yaml test/*.wav\n"
               "  mms lexicon --uroman --dedupe words.txt -o lex.txt      # zero-shot, lexicon only:\n"
               "  mms tune --model mms-zeroshot-300m --lexicon lex.txt --manifest dev.jsonl --word-score=-7:1 "
               "-o zs.yaml\n  mms asr --model mms-zeroshot-300m --words words.txt --config zs.yaml test/*.wav")
    p.add_argument("--model", "-m", required=True, help="the ASR model: a path or a published name (as mms asr)")
    p.add_argument("--lang", "-l", help="the adapter's language (ISO 639-3), for a multilingual model")
    p.add_argument("--dict", dest="dict_path", metavar="FILE",
                   help="fairseq dictionary (dict.ltr.txt) of a fine-tuned checkpoint without its own vocabulary")
    p.add_argument("--manifest", required=True, help="dev set: fairseq .tsv, JSONL or list of paths")
    p.add_argument("--ref", help="references (default: the manifest's text)")
    p.add_argument("--lm", help="KenLM language model (ARPA or binary); without it, --lexicon alone (LM weight 0)")
    p.add_argument("--lexicon", help="lexicon: `word u n i t s |` per line (see `mms lexicon`)")
    p.add_argument("--unit-lm", action="store_true", help="the LM is over the model's units (`mms lm build --units`)")
    d = TuneSettings  # the defaults are typed once, there
    p.add_argument("--lm-weight", default="%g:%g" % d.lm_weight, metavar="LO:HI",
                   help="range searched (default: %(default)s)")
    p.add_argument("--word-score", default="%g:%g" % d.word_score, metavar="LO:HI",
                   help="range searched (default: %(default)s); with --unit-lm and no --lexicon the decoder has no "
                        "word score, and --sil-weight is searched instead")
    p.add_argument("--sil-weight", default="%g:%g" % d.sil_weight, metavar="LO:HI",
                   help="range searched with --unit-lm and no --lexicon (default: %(default)s)")
    p.add_argument("--metric", choices=("wer", "cer"), default=d.metric,
                   help="what the best setting minimises (default: %(default)s; cer suits a character LM)")
    search = p.add_mutually_exclusive_group()
    search.add_argument("--trials", type=positive(int), default=d.trials,
                        help="random settings tried (default: %(default)s)")
    search.add_argument("--grid", type=positive(int), metavar="N",
                        help="N evenly spaced values of each searched option instead of random trials: N x N "
                             "settings, or N when only one option is searched (no --lm)")
    p.add_argument("--beam", type=positive(int), default=d.beam, help="beam size (default: %(default)s)")
    p.add_argument("--beam-size-token", type=positive(int),
                   help="tokens considered per frame (default: the whole vocabulary)")
    p.add_argument("--beam-threshold", type=non_negative(float), default=d.beam_threshold,
                   help="prune hypotheses this far below the best (default: %(default)s)")
    p.add_argument("--seed", type=seed, default=d.seed, help="seed of the random trials (default: %(default)s)")
    p.add_argument("--decode-workers", type=non_negative(int), default=d.decode_workers,
                   help="beam-search processes (0: in-process; default: %(default)s)")
    p.add_argument("--cache", metavar="DIR", help="emission cache (default: ~/.cache/mms/emissions)")
    add_device_options(p)
    add_common_options(p)
    p.add_argument("--output", "-o", default="-", help="preset YAML for `mms asr --config` (default: stdout)")
    p.set_defaults(run=run_tune)


def run_lexicon(args) -> int:
    from mms.errors import MMSError

    if args.uroman:
        return run_uroman_lexicon(args)
    if args.dedupe or args.uroman_lang:  # options of the uroman lexicon: ignored here, they would mislead
        raise MMSError(f"{'--dedupe' if args.dedupe else '--uroman-lang'} goes with --uroman")

    fairseq_dict = args.dict_path and not str(args.dict_path).endswith(".model")
    if not args.model and not fairseq_dict:
        raise MMSError("give --model (the vocabulary to spell in), --dict (a fairseq dictionary) or --uroman")
    from mms.checkpoints import load_vocabulary
    from mms.files import write_text_atomic
    from mms.lm.lexicon import build_lexicon, lexicon_text, read_corpus

    from mms.hub import resolve_model

    # a published name (demo, mms-1b-all) as in `mms asr --model`; only the vocabulary is read (a fairseq
    # dictionary alone is a vocabulary)
    model = None if fairseq_dict else resolve_model(args.model, "asr", args.lang, vocabulary_only=True)
    if model is not None and not args.lang and not args.dict_path:
        from mms.checkpoints import list_languages

        languages = list_languages(model) or []
        if len(languages) > 1:  # (it spelled in the default adapter's alphabet, saying nothing)
            raise MMSError(f"{args.model} has {len(languages)} languages, each with its own alphabet: give --lang "
                           f"(e.g. --lang {languages[0]})")
    vocab = load_vocabulary(model, args.lang, args.dict_path)
    lines = (line for path in args.corpus for line in read_corpus(path))
    entries, stats = build_lexicon(lines, vocab, args.lang, args.min_count, not args.no_normalize)
    if not entries:  # mms asr and mms tune refuse an empty lexicon: say so here, where the cause is
        raise MMSError(f"{', '.join(map(str, args.corpus))}: no word could be spelled ({stats.words} words read, "
                       f"{stats.dropped} with characters the vocabulary lacks, {stats.rare} rarer than "
                       f"--min-count); nothing written")
    write_text_atomic(args.output, lexicon_text(entries))
    note = f"; characters missing from the vocabulary: {' '.join(stats.unknown_characters)}" if stats.dropped else ""
    rare = f", {stats.rare} seen fewer than --min-count {args.min_count} times" if stats.rare else ""
    say("mms lexicon", f"{stats.kept} words spelled, {stats.dropped} of {stats.words} dropped{note}{rare}")
    return 0


def run_uroman_lexicon(args) -> int:
    from collections import Counter

    from mms.asr.zeroshot import WordList, build_uroman_lexicon, lexicon_text
    from mms.errors import MMSError
    from mms.files import write_text_atomic
    from mms.lm.lexicon import read_corpus

    if args.model or args.dict_path:
        raise MMSError("--uroman spells in the zero-shot model's uroman letters: do not give --model or --dict")
    from mms.hub.languages import check_code

    if args.uroman_lang:
        check_code(args.uroman_lang, "--uroman-lang")  # uroman would silently apply no language's rules
    if args.lang:
        check_code(args.lang)  # (the normalisation rules of no language)
    words = WordList.read((line for path in args.corpus for line in read_corpus(path)), args.lang,
                          not args.no_normalize)
    read = len(words.counts)
    words.counts = Counter({w: c for w, c in words.counts.items() if c >= args.min_count})
    if read and not words.counts:
        raise MMSError(f"{', '.join(map(str, args.corpus))}: none of its {read} words occurs --min-count "
                       f"{args.min_count} times; nothing written")
    lexicon = build_uroman_lexicon(words, args.uroman_lang, args.dedupe)
    if not lexicon.entries:
        raise MMSError(f"{', '.join(map(str, args.corpus))}: no word could be spelled in uroman ({read} "
                       f"words read); nothing written")
    write_text_atomic(args.output, lexicon_text(lexicon.entries))
    note = (f"; without a romanisation: {' '.join(lexicon.unspelled[:10])}" if lexicon.unspelled else "")
    merged = f", {lexicon.merged} sharing a spelling dropped" if lexicon.merged else ""
    say("mms lexicon", f"{len(lexicon.entries)} words spelled in uroman{merged}, {len(lexicon.unspelled)} of "
                       f"{len(words.counts)} dropped{note}")
    return 0


def run_lm_build(args) -> int:
    from mms.files import check_writable
    from mms.lm.kneser_ney import LMError, build_arpa
    from mms.lm.lexicon import normalizer, read_corpus

    if args.lang:
        from mms.hub.languages import check_code

        check_code(args.lang)
    norm = normalizer(args.lang) if args.lang else (lambda line: " ".join(line.split()))

    def sentences():
        for path in args.corpus:
            for line in read_corpus(path):
                text = norm(line)
                if args.units:  # "hello world" -> "h e l l o | w o r l d |", the units the model emits
                    text = " ".join(" ".join(word) + " |" for word in text.split())
                if text:
                    yield text

    if args.order > KENLM_MAX_ORDER:  # still built: other KenLM builds (KENLM_MAX_ORDER raised) can load it
        say("mms lm build", f"warning: order {args.order}: `mms asr --lm` (flashlight-text's KenLM) loads orders up "
                            f"to {KENLM_MAX_ORDER} only")
    check_writable(args.output)
    try:
        stats = build_arpa(sentences(), args.output, order=args.order, use_lmplz=False if args.no_lmplz else None)
    except LMError as e:
        if str(e).startswith("the corpus has no words"):  # the estimator reads sentences, not files: name them
            raise LMError(f"{', '.join(map(str, args.corpus))}: {e}") from None
        raise
    if stats.order < args.order:
        say("mms lm build", f"order {stats.order}, not {args.order}: no sentence has {args.order - 2} words or more")
    say("mms lm build", json.dumps(stats.to_dict()))
    return 0


def run_score(args) -> int:
    from mms.errors import MMSError
    from mms.files import write_text_atomic
    from mms.scoring import format_summary, pair_by_audio, read_texts, score

    if args.lang and not args.normalize:
        raise MMSError("--lang is for --normalize (the language's normalisation rules)")
    if args.lang:
        from mms.hub.languages import check_code

        check_code(args.lang)
    refs = read_texts(args.ref)
    if not refs:  # (it printed "WER 0.00% over 0 utterances" and exit 0)
        raise MMSError(f"{args.ref}: no reference lines: nothing to score")
    hyps = read_texts(args.hyp)
    if len(hyps) != len(refs):  # both named: either may be the odd one (a blank last line is an empty text)
        blank = [path for path, texts in ((args.ref, refs), (args.hyp, hyps)) if texts and texts[-1] == ""]
        raise MMSError(f"{args.hyp}: {len(hyps)} texts, {args.ref}: {len(refs)}; they must pair up one per input"
                       + (f" ({', '.join(blank)} ends with a blank line, which is an empty text)" if blank else ""))
    hyps = pair_by_audio(args.ref, args.hyp, hyps, lambda line: say("mms score", line))
    if args.normalize:
        from mms.text.normalize import normalize_transcript

        refs = [normalize_transcript(text, args.lang) for text in refs]
        hyps = [None if text is None else normalize_transcript(text, args.lang) for text in hyps]
    result = score(refs, hyps, ignore_spaces=args.ignore_spaces)
    write_text_atomic(args.output, json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    say("mms score", format_summary(result))
    return 0


def run_tune(args) -> int:
    from mms.files import check_writable, write_text_atomic
    from mms.lm.tune import parse_range, preset_yaml, tune

    defaults = TuneSettings()
    given = [name for name in ("lm_weight", "word_score", "sil_weight")
             if getattr(args, name) != "%g:%g" % getattr(defaults, name)]
    lexicon_free = args.unit_lm and not args.lexicon
    for name, useless, why in (("lm_weight", not args.lm, "without --lm the LM weight is fixed at 0"),
                               ("word_score", lexicon_free, "with --unit-lm and no --lexicon the decoder has no word "
                                                            "score; --sil-weight is searched"),
                               ("sil_weight", not lexicon_free, "it is searched with --unit-lm and no --lexicon; "
                                                                "with a lexicon --word-score is")):
        if name in given and useless:  # (a range given for nothing had been ignored)
            from mms.errors import MMSError

            raise MMSError(f"--{name.replace('_', '-')}: {why}")
    settings = TuneSettings(
        lm_weight=parse_range(args.lm_weight, "--lm-weight"), word_score=parse_range(args.word_score, "--word-score"),
        sil_weight=parse_range(args.sil_weight, "--sil-weight"), metric=args.metric, trials=args.trials,
        grid=args.grid, seed=args.seed, beam=args.beam, beam_size_token=args.beam_size_token,
        beam_threshold=args.beam_threshold, decode_workers=args.decode_workers)
    check_writable(args.output)  # now, not after the model and every trial have run
    result = tune(args.model, args.manifest, args.lm, lexicon=args.lexicon, lang=args.lang, refs=args.ref,
                  dict_path=args.dict_path, unit_lm=args.unit_lm, settings=settings, device=args.device,
                  dtype=args.dtype, cache=args.cache, log=lambda line: say("mms tune", line))
    write_text_atomic(args.output, preset_yaml(result))
    name = result["searched"]
    say("mms tune", f"best by {result['metric']}: WER {result['wer']:.2f}, CER {result['cer']:.2f} with "
                    f"lm_weight {result['lm_weight']} {name} {result[name]}")
    return 0
