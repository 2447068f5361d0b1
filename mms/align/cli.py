"""Options of `mms align` (no torch here; mms.align.aligner is imported only to run)."""

from __future__ import annotations

import argparse
import os

from mms.command import add_common_options, add_corpus_options, add_device_options, check_engine_options, add_time_offsets_option, positive, say, stream_results
from mms.errors import MMSError
from mms.options import AlignOptions, from_namespace

PROG = "mms align"

EXAMPLES = """\
examples:
  mms align --model ctc_alignment_mling_uroman_model.pt --audio chapter.mp3 --text chapter.txt --lang ful \\
            --outdir out/ --star
  mms align --model mms1b_all.pt --lang fra --audio talk.wav --text talk.txt --outdir talk/
  mms align --model mms-300m-1130-forced-aligner/ --manifest corpus.jsonl --outdir aligned/

output (in --outdir; one segment per line of the text file):
  manifest.json     JSON lines as fairseq data_prep writes them, keys in its order: audio_start_sec,
                    audio_filepath, duration, text, normalized_text, uroman_tokens
  segment{i}.flac   the audio of line i (16 kHz, channel 0)
  alignment.json    lines, words and characters with start, end (seconds) and score (mean probability)
  subtitles.srt/.vtt one cue per line
With --star a `<star>` token that can absorb any audio comes first (segment 0 is then that audio).

--manifest: JSON lines with audio (or audio_filepath), text (the transcript; lines split at newlines) or
text_filepath, and optionally lang; or a fairseq .tsv with its .wrd. Each pair goes to --outdir/<audio
name>/, and --outdir/manifest.json gathers every segment. A pair whose alignment.json exists is skipped, so
an interrupted run resumes where it stopped; a pair that fails is reported and the others go on.

--model: the MMS alignment model (fairseq data_prep / torchaudio MMS_FA .pt with dictionary.txt beside it, or
a Hugging Face CTC directory such as mms-300m-1130-forced-aligner), or any MMS ASR model with --lang (then
the text is aligned in that language's own characters, not romanised).

exit status: 0 all aligned, 1 a pair failed (its audio or transcript unreadable, nothing to align; with
--manifest the others are written), 2 a usage, model or output error (a bad manifest, a non-empty --outdir),
3 a bug.
"""


def add_parser(commands) -> argparse.ArgumentParser:
    p = commands.add_parser(
        "align", help="forced alignment of a transcript to long audio (segments, word times, subtitles)",
        description="Align text to audio with an MMS CTC model, as fairseq's MMS data_prep does (text "
                    "normalisation, uroman, <star>, 30 s windows, one global Viterbi alignment).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", "-m", help="alignment model (.pt, directory, published name) or MMS ASR model with "
                                          "--lang (default: the registry's alignment model, mms-fa; `demo`: the "
                                          "small model shipped in the package, no download)")
    p.add_argument("--audio", "--audio_filepath", "-a", dest="audio", help="audio file (any format and rate)")
    p.add_argument("--text", "--text_filepath", "-t", dest="text", help="transcript: one output segment per line")
    p.add_argument("--manifest", metavar="FILE", help="many (audio, text) pairs: JSONL or fairseq .tsv + .wrd")
    p.add_argument("--outdir", "-o", required=True, help="output directory")
    p.add_argument("--lang", "-l", help="ISO 639-3 code: normalisation and uroman rules, ASR adapter")
    p.add_argument("--star", "--use_star", "-s", action="store_true",
                   help="prepend a <star> token that absorbs audio before the first line")
    p.add_argument("--dict", dest="dict_path", metavar="FILE", help="model dictionary (one token per line)")
    p.add_argument("--romanize", action=argparse.BooleanOptionalAction, default=AlignOptions.romanize,
                   help="spell the text in uroman (default: when the model has no word-boundary token)")
    p.add_argument("--normalize-audio", action=argparse.BooleanOptionalAction, default=AlignOptions.normalize_audio,
                   help="standardise the waveform (default: as the model's format says; data_prep does not "
                        "for the alignment model, torchaudio's MMS_FA bundle does)")
    add_time_offsets_option(p)
    p.add_argument("--overwrite", action="store_true", help="write into an existing --outdir, redo finished pairs")
    add_device_options(p, quantize=True)
    p.add_argument("--batch-seconds", type=positive(float), default=AlignOptions.batch_seconds,
                   help="audio seconds per forward pass (default: %(default)s)")
    p.add_argument("--uroman_path", "-u", help=argparse.SUPPRESS)  # data_prep's; uroman is built in here
    add_common_options(p)
    add_corpus_options(p, output_files=False)  # --outdir: a folder per pair, finished pairs skipped
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    if bool(args.manifest) == bool(args.audio or args.text):
        raise MMSError("give either --audio and --text, or --manifest")
    if bool(args.audio) != bool(args.text):
        raise MMSError("--audio and --text go together")
    if not args.manifest and (args.shard or args.engine != "local"):
        raise MMSError("--shard and --engine split a --manifest of pairs")
    if not args.manifest and args.progress:
        raise MMSError("--progress shows the progress of a --manifest run (one pair has none to show)")
    check_engine_options(args)
    from mms.writers import get_writer

    # first, so that a non-empty --outdir is refused before the model loads
    writer = get_writer("align", "dir", args.outdir, single=not args.manifest, overwrite=args.overwrite)
    from mms.align.aligner import Aligner, Pair, read_pairs

    if not args.manifest:
        try:
            aligner = Aligner.load(args.model, lang=args.lang, device=args.device, dtype=args.dtype,
                                   dict_path=args.dict_path, options=from_namespace(AlignOptions, args))
            if aligner.needs_lang:
                raise MMSError(f"{args.model}: a model of {len(aligner.runner.languages)} languages: give the text's "
                               f"language with --lang")
        except BaseException:
            writer.close(complete=False)  # (the --outdir it made, still empty, goes)
            raise
        if args.verbose:
            ckpt = aligner.runner.checkpoint
            say(PROG, f"{ckpt.format} model {ckpt.path}, device {aligner.runner.device}, romanize "
                      f"{aligner.romanize}, normalize audio {aligner.normalize_audio}")
        results = aligner.align_iter([Pair(args.audio, args.text)], star=args.star, lang=args.lang, keep_audio=True)
        from mms.align.aligner import stretched_lines, unlikely_lines

        results = (warn_unspelled(r, r.audio, r.unspelled, r.lost_words, unlikely_lines(r.lines),
                                  stretched_lines(r.lines)) for r in results)
        return stream_results(PROG, results, writer, total=1, verbose=args.verbose,
                              describe=lambda r: f"{r.audio}: {len(r.lines)} lines, {r.duration:.1f} s")
    return run_manifest(args, writer, read_pairs(args.manifest))


def run_manifest(args: argparse.Namespace, writer, pairs: list) -> int:
    """A manifest of pairs as a corpus run (mms.engines): pairs finished before are skipped (resume is the
    default), --shard K/N takes every Nth pair, --engine ray spreads them over model actors; the gathered
    --outdir/manifest.json lists every finished pair, in pair order."""
    from dataclasses import asdict

    from mms import engines
    from mms.results import Record

    k, n = engines.parse_shard(args.shard)
    # in order: each pair's place in manifest.json; a line that could not be read is never done
    finished = [pair.error is None and writer.done(pair.name) for pair in pairs]
    rows = [{"index": i, "audio": pair.audio, "text_path": pair.text_path, "lang": pair.lang, "text": pair.text,
             "name": pair.name, "error": pair.error}
            for i, (pair, done) in enumerate(zip(pairs, finished)) if not done and i % n == k]
    skipped = sum(1 for i, done in enumerate(finished) if done and i % n == k)
    settings = {"model": args.model, "lang": args.lang, "dict_path": args.dict_path, "device": args.device,
                "dtype": args.dtype, "star": args.star, "outdir": args.outdir,
                "options": asdict(from_namespace(AlignOptions, args))}
    # the run's settings and pairs (transcripts included) in --outdir/run.json, as for the other tasks: finished
    # pairs are skipped by name, so a resume with other settings or other pairs would mix alignments
    run_file = os.path.join(args.outdir, "run.json")
    description = engines.run_description("align", settings, [pair_identity(pair) for pair in pairs])
    if any(finished) and not os.path.exists(run_file):  # an --outdir of a version before run.json: kept
        say(PROG, f"note: {args.outdir} has no run.json (a run of an earlier version): its finished pairs are "
                  f"taken as this run's, and its settings recorded from now on")
    # --overwrite redoes every pair: the run starts anew, with its own settings; else they must be the run's
    existing = None  # the run description of the run this one continues
    if not args.overwrite and not engines.check_run(run_file, description):
        run_file, existing = None, run_file
    if skipped:  # (said once the settings are known to be the run's)
        say(PROG, f"resuming: {skipped} pairs done before, {len(rows)} to do")
    status = 0
    if rows and args.engine == "ray":
        from mms.engines.ray import run_ray, workers

        workers(args.workers)
        if run_file:
            engines.write_run(run_file, description, not args.overwrite)
        status = run_ray("align", settings, rows, args.outdir, args)
    elif rows:
        worker = engines.make_worker("align", settings)
        engines.record_precision(description, worker, existing)
        if run_file:
            engines.write_run(run_file, description, not args.overwrite)
        if args.verbose:
            say(PROG, worker.describe())
        progress = engines.Progress(rows, args.progress)

        def records():
            for row in engines.run_local(worker, rows):
                progress.update(row["index"], seconds=row.get("duration"))
                yield warn_unspelled(Record(row), row["audio"], row.get("unspelled"), row.get("lost_words"),
                                     row.get("unlikely"), row.get("stretched"))

        try:
            status = stream_results(PROG, records(), NoWriter(), total=len(rows), verbose=args.verbose,
                                    describe=lambda r: f"{r['audio']}: {r['lines']} lines, {r['duration']:.1f} s")
        finally:
            progress.close()
    writer.gather([pair.name for pair in pairs if pair.error is None])
    writer.close()
    return status


def pair_identity(pair) -> dict:
    """What run.json's digest reads of a pair: its audio, language and transcript (a transcript file by its
    content, which an edit changes)."""
    import hashlib

    text = pair.text
    if pair.text_path is not None:
        try:
            with open(pair.text_path, "rb") as f:
                text = "sha256:" + hashlib.sha256(f.read()).hexdigest()
        except OSError:
            text = pair.text_path  # its error comes when the pair is aligned
    return {"audio": pair.audio, "lang": pair.lang, "text": text if isinstance(text, (str, type(None))) else
            "\n".join(text)}


def warn_unspelled(result, audio: str, unspelled: list[str] | None, lost_words: list[str] | None,
                   unlikely: list | None = None, stretched: list | None = None):
    """Say which characters of a transcript the model has no token for (left out of the alignment, as data_prep
    does silently), which words had nothing left (they get no times), which lines the audio hardly supports
    (a transcript of other speech aligns anyway, with scores near 0) and which lines span far more audio than
    their text takes (speech the transcript lacks, taken in by its neighbours); -> the result."""
    if stretched:
        shown = ", ".join(f"{index} ({seconds:g} s)" for index, seconds in stretched[:5])
        many = len(stretched) > 1
        say(PROG, f"warning: {audio}: {len(stretched)} line{'s' if many else ''} (alignment.json index, span) "
                  f"{'last' if many else 'lasts'} far longer than {'their' if many else 'its'} text takes: {shown}"
                  f"{', ...' if len(stretched) > 5 else ''}; does the transcript lack lines there?")
    if unlikely:
        from mms.align.aligner import UNLIKELY_SCORE

        shown = ", ".join(f"{index} ({score:.4f})" for index, score in unlikely[:5])
        say(PROG, f"warning: {audio}: {len(unlikely)} line{'s' if len(unlikely) > 1 else ''} (alignment.json "
                  f"index, score) scored below "
                  f"{UNLIKELY_SCORE}: {shown}{', ...' if len(unlikely) > 5 else ''}; is the transcript that of "
                  f"this audio?")
    if unspelled:
        lost = f"; words left out: {' '.join(lost_words)}" if lost_words else ""
        from mms.text import show_chars

        say(PROG, f"warning: {audio}: characters the model cannot spell, left out: {show_chars(unspelled)}{lost}")
    return result


class NoWriter:
    """The worker has written each pair's directory already."""

    def write(self, record) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass
