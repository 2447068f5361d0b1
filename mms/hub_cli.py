"""`mms models` (list, download, path) and `mms langs` (the language catalogue). Light: the parsers need only the
task names of the registry (mms.hub imports nothing heavy); the rest is imported to run."""

from __future__ import annotations

import argparse
import json
import sys

from mms.command import error
from mms.hub.registry import DEMO_TASKS, TASKS

MODELS_EXAMPLES = """\
examples:
  mms models list                                  # known models: task, languages, size, cached?
  mms models list --task lid
  mms models download mms-1b-all --lang fra,deu    # base weights + 2 adapters (not all 1,162)
  mms models download mms-tts --lang amh,eng       # two TTS voices (also: mms models download mms-tts-amh)
  mms models download mms-lid-126 --source url     # the original fairseq checkpoint and dict.lang.txt
  mms models path mms-1b-all                       # where it is cached (exit 1 if it is not)

Models are cached where huggingface_hub caches them (HF_HOME, default ~/.cache/huggingface; HF_HUB_CACHE),
original fairseq files under $HF_HOME/mms/. HF_ENDPOINT selects a mirror, HF_TOKEN a token. With
HF_HUB_OFFLINE=1 (or --offline) nothing is downloaded: cached models work, missing ones are an error naming the
command that fetches them. The MMS weights are licensed CC-BY-NC 4.0 (non-commercial use).
"""

LANGS_EXAMPLES = """\
examples:
  mms langs --search swahili                       # code, English name, script, models that have it
  mms langs --task asr --search azerbaijani        # azj-script_cyrillic, azj-script_latin
  mms langs --model mms-lid-256                    # every language of a model
  mms langs fra --format json

Codes are ISO 639-3; a suffix names a script (azj-script_latin: North Azerbaijani written in Latin script)
or a dialect (cak-dialect_central). Names come from ISO 639-3 (pycountry). Lists are shipped for
mms-1b-all and mms-lid-256; the others are read from the model's own files once it is downloaded.
"""


def add_parser(commands) -> None:
    models = commands.add_parser(
        "models", help="published models: list, download (once, cached), path",
        description="The published MMS models by name: list them, fetch them into the cache, show where they are.",
        epilog=MODELS_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = models.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="known models, their task, languages, size and whether cached")
    listing.add_argument("--task", choices=TASKS, help="only models of this task")
    listing.add_argument("--format", "-f", choices=("table", "json"), default="table")
    listing.set_defaults(run=run_list, prog="mms models list")

    download = actions.add_parser("download", help="fetch models into the cache (for offline use, or a cluster)",
                                  epilog=MODELS_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    download.add_argument("names", nargs="+", metavar="NAME", help="model name (mms models list) or Hugging Face repo id")
    _model_options(download)
    download.add_argument("--refresh", action="store_true",
                          help="ask the Hub for a newer revision even when the files are cached")
    download.add_argument("--force", action="store_true",
                          help="fetch every file again even when it is cached (a damaged or incomplete download)")
    download.set_defaults(run=run_download, prog="mms models download")

    path = actions.add_parser("path", help="print where a model is cached (exit 1 when it is not)")
    path.add_argument("name", metavar="NAME")
    _model_options(path)
    path.set_defaults(run=run_path, prog="mms models path")

    langs = commands.add_parser(
        "langs", help="language catalogue: codes, names, scripts, which models have them",
        description="Search the languages of the MMS models by code or English name.",
        epilog=LANGS_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    langs.add_argument("query", nargs="?", default="", help="same as --search")
    langs.add_argument("--search", "-s", default="", help="a code (fra, fr) or part of an English name (swahili)")
    langs.add_argument("--task", choices=("asr", "lid", "tts"), help="only languages of models of this task")
    langs.add_argument("--model", "-m", help="only the languages of this model (name, Hugging Face repo id or path)")
    langs.add_argument("--format", "-f", choices=("table", "tsv", "json"), default="table")
    langs.set_defaults(run=run_langs)


def _model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lang", "-l", default="",
                        help="language(s), comma-separated: the adapters of an ASR model, the voices of mms-tts")
    parser.add_argument("--source", choices=("hf", "url"),
                        help="hf: the Hugging Face repo; url: the original fairseq files (default: per model)")
    parser.add_argument("--task", choices=TASKS, default="asr",
                        help="task of a Hugging Face repo id that is not a known name (default: %(default)s)")
    parser.add_argument("--offline", action="store_true",
                        help="use only the cache, download nothing (the same as HF_HUB_OFFLINE=1; mms.command "
                             "applies it)")


def _find(name: str, task: str):
    from mms import hub
    from mms.hub.registry import unknown_model

    info = hub.find_model(name, task)
    if info is None:
        raise hub.HubError(unknown_model(name))
    return info


def _split(langs: str) -> list[str]:
    return [x.strip() for x in langs.split(",") if x.strip()]


# ---------------------------------------------------------------------------------------------------------


def run_list(args: argparse.Namespace) -> int:
    from mms import hub

    rows = []
    for info in hub.registry().values():
        if args.task and info.task != args.task:
            continue
        rows.append({"name": info.name, "task": info.task, "languages": info.languages, "size": info.size_text,
                     "hf": info.hf, "url": list(info.url), "source": info.source, "cached": _cached_text(info),
                     "default": hub.defaults().get(info.task) == info.name,
                     "description": info.description})
    demo = _demo_row(args.task)
    if not args.task or args.task in demo["tasks"]:
        rows.append(demo)
    name, url = hub.licence()
    if args.format == "json":
        print(json.dumps({"licence": name, "licence_url": url, "models": rows}, indent=2))
        return 0
    table = [("NAME", "TASK", "LANGS", "SIZE", "FROM", "CACHED")]
    for r in rows:
        table.append((r["name"] + (" *" if r["default"] else ""), ",".join(r.get("tasks", [r["task"]])), str(r["languages"] or ""), r["size"],
                      r["source"], r["cached"] or "-"))
    print(_format_table(table))
    held_out = next((r["held_out"] for r in rows if r.get("held_out")), None)
    if held_out:
        print("\ndemo on sentences of words it never heard (CER / WER / LID accuracy, %): " + ", ".join(
            f"{lang} {m['cer']:.1f} / {m['wer']:.1f} / {m['lid_accuracy']:.0f}" for lang, m in sorted(held_out.items())))
    voice = next((r["voice"] for r in rows if r.get("voice")), None)
    if voice:
        print(f"demo voice (eng) read back by the demo model on sentences of words it never heard: CER "
              f"{voice['cer']:.1f} %, real-time factor {voice['real_time_factor']:.3f} on the CPU it was measured on")
    print(f"\n* default for its task. Sizes: fp32 weights (an ASR adapter adds about 10 MB). Cache: {hub.hub_cache()}"
          f"\nWeights licence: {name} ({url}), non-commercial use. demo: shipped with mms (ASR fp16, voice fp32), trained on "
          f"synthetic speech only.")
    return 0


def _demo_row(task: str | None = None) -> dict:
    """The `demo` model shipped inside the package (no download; not an MMS release, not CC-BY-NC), as listed for
    `task`: tts lists the voice alone (English, its own size); asr, lid and align leave the voice out."""
    from mms import hub

    metrics = {}
    try:
        path = hub.demo_model("asr")
        languages = len(json.loads((path / "vocab.json").read_text()))
        size = sum(p.stat().st_size for p in path.rglob("*.safetensors"))
        size_text, cached = f"{size / 1e6:.1f} MB", "shipped"
        metrics = json.loads((path / "metrics.json").read_text()).get("held_out", {}).get("per_language", {})
    except (hub.HubError, OSError, ValueError):
        languages, size_text, cached = None, "-", ""
    tasks, voice, voice_size = list(DEMO_TASKS), {}, 0
    try:
        voice_path = hub.demo_model("tts")
        voice = json.loads((voice_path / "metrics.json").read_text())
        voice_size = (voice_path / "model.safetensors").stat().st_size
        if cached:  # the size shipped: ASR model and voice
            size_text = f"{(size + voice_size) / 1e6:.1f} MB"
    except (hub.HubError, OSError, ValueError):
        tasks.remove("tts")  # no voice shipped in this build
    if task == "tts" and voice:
        languages, size_text, metrics = 1, f"{voice_size / 1e6:.1f} MB", {}
    elif task:
        voice = {}
    return {"name": hub.DEMO, "task": DEMO_TASKS[0], "tasks": tasks, "languages": languages, "size": size_text, "hf": None,
            "url": [], "source": "package", "cached": cached, "default": False, "held_out": metrics,
            "voice": voice.get("round_trip", {}),
            "description": "tiny model trained on synthetic espeak-ng speech (eng, ell, hin, rus): try the "
                           "commands offline; not for real recordings"}


def _check_demo_languages(task: str, langs: list[str]) -> None:
    from mms import hub
    from mms.langs import model_languages

    known = model_languages(hub.DEMO, task) or []
    unknown = [lang for lang in langs if lang not in known]
    if unknown:
        raise hub.HubError(f"demo ({task}) has no language {', '.join(unknown)} (it has {', '.join(known)})")


def _demo_path(task: str) -> None:
    from mms import hub

    print(hub.demo_model(task))  # a task the demo model has not: HubError


def _cached_text(info) -> str:
    from mms import hub

    parts = []
    if info.per_language:
        voices = hub.cached_languages(info)
        if voices:
            parts.append(f"{len(voices)} voice{'s' if len(voices) > 1 else ''}: {_short_list(voices)}")
        return "; ".join(parts)
    if info.hf and hub.hf_snapshot(info) is not None:
        adapters = hub.cached_languages(info)
        parts.append(f"hf, adapters: {_short_list(adapters)}" if adapters else "hf")
    if info.url and hub.url_path(info) is not None:
        parts.append("url")
    return "; ".join(parts)


def _short_list(items: list[str], n: int = 6) -> str:
    return ", ".join(items[:n]) + (f" (+{len(items) - n})" if len(items) > n else "")


def _format_table(rows: list[tuple]) -> str:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def run_download(args: argparse.Namespace) -> int:
    from mms import hub

    langs, failed = _split(args.lang), 0
    # names first: a misspelt one is a usage error (exit 2, as `path`), found before anything is fetched
    infos = {name: _find(name, args.task) for name in args.names if name != hub.DEMO}
    jobs = []  # (name, info, languages of one fetch)
    for name in args.names:
        info = infos.get(name)
        if info is not None and info.per_language and not info.lang and langs:
            jobs += [(name, info, [lang]) for lang in langs]  # one model per language: each fetched on its own
        else:
            jobs.append((name, info, langs))
    for name, info, job_langs in jobs:
        try:
            if name == hub.DEMO:  # shipped: nothing to fetch
                _check_demo_languages(args.task, job_langs)
                _demo_path(args.task)
                continue
            if info.per_language and not info.lang and not job_langs:
                raise hub.HubError(f"{name} has one model per language: give --lang, e.g. --lang eng")
            if job_langs and not info.adapter and not info.per_language:  # (a typo there was accepted, unread)
                raise hub.HubError(f"{name} has no per-language files (one output layer for all its languages): "
                                   f"leave out --lang")
            path = hub.fetch(info, job_langs, source=args.source, refresh=args.refresh, force=args.force)
        except (hub.HubError, OSError) as e:
            error("mms models download", str(e))
            failed += 1
            continue
        print(path, flush=True)
    return 1 if failed else 0


def run_path(args: argparse.Namespace) -> int:
    from mms import hub

    if args.name == hub.DEMO:
        _check_demo_languages(args.task, _split(args.lang))
        _demo_path(args.task)
        return 0
    info = _find(args.name, args.task)  # a HubError: one line, exit 2 (mms.command.execute)
    langs = _split(args.lang)
    if info.per_language and not info.lang and len(langs) != 1:
        raise hub.HubError(f"{info.name} has one model per language: give one --lang, or a name like "
                           f"{info.name}-eng")
    if langs and info.adapter:  # a language the model has not: said now, not as a download hint that would fail
        from mms.hub import languages as catalogue

        catalogue.check_languages(info, langs, catalogue.known_languages(info))
    sources = [args.source] if args.source else [info.source] + [s for s in hub.SOURCES if s != info.source]
    for source in sources:
        path = hub.hf_snapshot(info, langs) if source == "hf" else hub.url_path(info, langs)
        if path is not None:
            print(path)
            return 0
    error("mms models path", f"{args.name}{' (' + ','.join(langs) + ')' if langs else ''} is not in the cache; "
                         f"fetch it with: {hub.fetch_command(info, langs, args.source)}")
    return 1


def run_langs(args: argparse.Namespace) -> int:
    from mms import hub, langs as catalogue

    query = args.search or args.query
    try:
        found = catalogue.search(query, task=args.task, model=args.model)
    except (ValueError, hub.HubError) as e:
        error("mms langs", str(e))
        return 1 if isinstance(e, hub.NotCachedError) else 2  # (not downloaded yet, as `models path`; else usage)
    if args.format == "json":
        print(json.dumps([lang.to_dict() for lang in found], indent=2, ensure_ascii=False))
    else:
        rows = [(x.code, x.name or "?", x.script or "", ", ".join(x.models)) for x in found]
        if args.format == "tsv":
            print("\n".join("\t".join(row) for row in [("code", "name", "script", "models")] + rows))
        elif rows:
            print(_format_table([("CODE", "NAME", "SCRIPT", "MODELS")] + rows))
    if args.model is None:
        _, unknown = catalogue.catalogue(args.task)
        notes = []
        if unknown:
            notes.append(f"not included (list known once downloaded): {', '.join(unknown)}")
        anywhere = [info.name for info in hub.registry().values()
                    if info.any_language and args.task in (None, info.task)]
        if anywhere:
            notes.append(f"any language, from a word list (no list): {', '.join(anywhere)}")
        if args.task in (None, "tts"):
            voices = hub.cached_languages(hub.registry()["mms-tts"])
            notes.append("TTS voices: one per language, facebook/mms-tts-<code> (list not shipped)"
                         + (f"; cached: {', '.join(voices)}" if voices else ""))
        for note in notes:
            print(f"mms langs: {note}", file=sys.stderr)
    if not found:
        print(f"mms langs: no language matches '{query}'", file=sys.stderr)
        return 1
    return 0
