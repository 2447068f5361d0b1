"""Optional text features of N-best re-ranking (mms.asr.rerank): `lm` and `wlid`, off unless configured.

A text feature is a callable `feature(text, lang, adapter=None) -> float`: the score of a candidate's transcript
`text` in its candidate language (`lang`: the LID label, e.g. "cmn"; `adapter`: the ASR adapter it was transcribed
with, e.g. "cmn-script_simplified"). Two implementations work offline:

  lm    KenLMFeature: ln P(text) under a per-language n-gram LM (ARPA files, read by KenLM through
        flashlight-text): the natural log of the product of each word's probability given <s> and the words
        before it, not length-normalised, no </s> (as the reference sums a causal LM's token log-probabilities);
        0 for an empty text. A language without an LM scores LM_MISSING_PER_WORD per word. This is a cheap
        stand-in, NOT the reference's feature, which is the log-probability under the 7B LLM MaLA-500.
  wlid  FastTextLID: ln P(language | text) under a fastText text LID model (the reference uses NLLB's
        lid218e.bin): labels `__label__eng_Latn` -> `eng` (with the reference's remapping, e.g. zho -> cmn), the
        most probable label of the candidate's language; WLID_MISSING (-1000) when the model has none. Needs the
        optional `fasttext` package.

Plug-in specifications are plain JSON (they travel with the weights to corpus workers): {"lm": {lang: path},
"wlid": path}; `build_features` turns them into callables, once per process.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Callable, Protocol

from mms.errors import MMSError
from mms.files import missing_file

LM_MISSING_PER_WORD = math.log(1e-9)  # a word of a language that has no LM (the floor of the uasr feature)
WLID_MISSING = -1000.0  # the reference's (nllb/infer.py) score of a language the text LID model does not have
# nllb/infer.py: NLLB-LID codes -> the codes MMS LID uses
NLLB_REMAP = {"arb": "ara", "azj": "aze", "pes": "fas", "fuv": "ful", "lvs": "lav", "khk": "mon", "zsm": "zlm",
              "gaz": "orm", "pbt": "pus", "uzn": "uzb", "zho": "cmn"}
TEXT_FEATURES = ("lm", "wlid")


class FeatureError(MMSError):
    """A text feature that cannot be set up (a missing file or package); one line."""


class TextFeature(Protocol):
    name: str

    def __call__(self, text: str, lang: str, adapter: str | None = None) -> float: ...


def _iso(code: str) -> str:
    return code.split("-")[0].split("_")[0].lower()


# -- lm: per-language KenLM n-gram models ----------------------------------------------------------------------

def check_arpa_header(path: str | Path) -> None:
    """A FeatureError unless the file begins as ARPA text does (a `\\data\\` line in its first 4 kB)."""
    try:
        with open(path, encoding="utf-8") as f:
            head = f.read(4096)
    except UnicodeDecodeError as e:
        raise FeatureError(f"{path}: not an ARPA file (not UTF-8 text: {e.reason})") from None
    except OSError as e:
        raise FeatureError(f"{path}: cannot read the LM ({e.strerror or e})") from None
    if "\\data\\" not in head:
        raise FeatureError(f"{path}: not an ARPA file (the lm feature reads ARPA text, not KenLM binaries)")


def arpa_words(path: str | Path) -> list[str]:
    """The unigram vocabulary of an ARPA file (KenLM maps every other word to <unk>)."""
    check_arpa_header(path)
    words, in_unigrams = [], False
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line == "\\1-grams:":
                    in_unigrams = True
                elif in_unigrams:
                    if not line or line.startswith("\\"):
                        break
                    fields = line.split()
                    if len(fields) >= 2:
                        words.append(fields[1])
    except UnicodeDecodeError as e:
        raise FeatureError(f"{path}: not an ARPA file (not UTF-8 text: {e.reason})") from None
    except OSError as e:
        raise FeatureError(f"{path}: cannot read the LM ({e.strerror or e})") from None
    if not words:
        raise FeatureError(f"{path}: no unigrams (not an ARPA language model?)")
    return words


class _KenLM:
    """One ARPA model with a dictionary of its own vocabulary."""

    def __init__(self, path: str):
        from mms.decoding.beam import _flashlight, load_kenlm

        _, dictionary, _ = _flashlight()
        self.words = dictionary.Dictionary()
        for word in dict.fromkeys(["<unk>", *arpa_words(path)]):
            self.words.add_entry(word)
        self.unk = self.words.get_index("<unk>")
        self.lm = load_kenlm(path, self.words, FeatureError)

    def log10_prob(self, words: list[str]) -> float:
        state, total = self.lm.start(False), 0.0
        for word in words:
            index = self.words.get_index(word) if self.words.contains(word) else self.unk
            state, score = self.lm.score(state, index)
            total += score
        return total


class KenLMFeature:
    """`lm`: ln P(text) under the n-gram LM of the candidate's language (see the module docstring). `models`:
    language code -> ARPA path; a candidate is looked up by its adapter, then its LID label, then the ISO 639 part
    of either. Models are loaded when first needed."""

    name = "lm"

    def __init__(self, models: dict[str, str]):
        for lang, path in models.items():
            if why := missing_file(path):
                raise FeatureError(f"--rerank-lm {lang}={path}: {why}")
            check_arpa_header(path)  # now, before any model runs (the LM itself loads when first needed)
        self.models = dict(models)
        self._loaded: dict[str, _KenLM] = {}
        self.missing = 0  # candidates scored without an LM

    def path_for(self, lang: str, adapter: str | None = None) -> str | None:
        for code in (adapter, lang):
            if code and code in self.models:
                return self.models[code]
        for code in (adapter, lang):
            if code:
                match = next((path for key, path in sorted(self.models.items()) if _iso(key) == _iso(code)), None)
                if match:
                    return match
        return None

    def __call__(self, text: str, lang: str, adapter: str | None = None) -> float:
        words = text.split()
        if not words:
            return 0.0
        path = self.path_for(lang, adapter)
        if path is None:
            self.missing += 1
            return LM_MISSING_PER_WORD * len(words)
        if path not in self._loaded:
            self._loaded[path] = _KenLM(path)
        return self._loaded[path].log10_prob(words) * math.log(10)


def parse_lm_specs(specs: list[str] | None) -> dict[str, str]:
    """`--rerank-lm` values: LANG=FILE (repeatable) or a directory of LANG.arpa files -> {lang: absolute path}."""
    models: dict[str, str] = {}
    for spec in specs or []:
        if "=" in spec:
            lang, path = spec.split("=", 1)
            lang, path = lang.strip(), path.strip()
            if not lang or not path:
                raise FeatureError(f"--rerank-lm {spec!r}: expected LANG=FILE or a directory of LANG.arpa files")
            if why := missing_file(path):
                raise FeatureError(f"--rerank-lm {spec}: {why}")
            models[lang] = str(Path(path).resolve())
        elif Path(spec).is_dir():
            found = sorted(Path(spec).glob("*.arpa"))
            if not found:
                raise FeatureError(f"--rerank-lm {spec}: no LANG.arpa files in the directory")
            for path in found:
                models.setdefault(path.stem, str(path.resolve()))
        else:
            raise FeatureError(f"--rerank-lm {spec}: expected LANG=FILE or a directory of LANG.arpa files")
    return models


# -- wlid: a fastText text LID model -----------------------------------------------------------------------------

def fasttext_code(label: str) -> str:
    """`__label__eng_Latn` -> `eng` (the second-to-last `_` field, as nllb/infer.py), remapped to MMS LID codes."""
    parts = label.split("_")
    code = parts[-2] if len(parts) >= 2 else label
    return NLLB_REMAP.get(code, code)


class FastTextLID:
    """`wlid`: ln P(language | text) of a fastText LID model (see the module docstring)."""

    name = "wlid"

    def __init__(self, path: str):
        try:
            import fasttext
        except ImportError:
            raise FeatureError("the wlid feature needs the fasttext package, which is not installed: "
                               "pip install fasttext (or fasttext-wheel)") from None
        if why := missing_file(path):
            raise FeatureError(f"--rerank-wlid {path}: {why}")
        self._fasttext, self.path, self._model = fasttext, str(path), None
        self._cache: dict[str, list[tuple[str, float]]] = {}

    @property
    def model(self):
        """The fastText model, loaded when first used (NLLB's is 1.2 GB)."""
        if self._model is None:
            try:
                self._model = self._fasttext.load_model(self.path)
            except Exception as e:  # noqa: BLE001 - fastText's own message, in one line
                raise FeatureError(f"--rerank-wlid {self.path}: fastText cannot load it "
                                   f"({(str(e).splitlines() or [''])[0]})") from None
        return self._model

    def predictions(self, text: str) -> list[tuple[str, float]]:
        """Every label's (code, probability), most probable first."""
        text = " ".join(text.split())  # fastText refuses newlines
        if text not in self._cache:
            try:
                labels, probs = self.model.predict(text, k=-1)
                pairs = list(zip(labels, (float(p) for p in probs)))
            except ValueError:  # fasttext 0.9.2's predict fails under numpy 2 (np.array(copy=False)): its core
                pairs = [(label, float(p)) for p, label in self.model.f.predict(text, -1, 0.0, "strict")]
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[text] = [(fasttext_code(label), p) for label, p in pairs]
        return self._cache[text]

    def __call__(self, text: str, lang: str, adapter: str | None = None) -> float:
        wanted = {_iso(lang), NLLB_REMAP.get(_iso(lang), _iso(lang))}
        for code, probability in self.predictions(text):
            if code in wanted:
                return math.log(max(probability, 1e-300))
        return WLID_MISSING


# -- plug-in specifications -> callables ---------------------------------------------------------------------

def check_specs(plugins: dict) -> dict:
    """Validate {"lm": {lang: path}, "wlid": path} (absolute paths, files present); returns it without empty
    entries."""
    if not isinstance(plugins, dict):
        raise FeatureError("feature plug-ins must be a mapping {lm: {LANG: FILE}, wlid: FILE}")
    unknown = sorted(set(plugins) - set(TEXT_FEATURES))
    if unknown:
        raise FeatureError(f"unknown feature plug-ins {', '.join(map(str, unknown))} (known: lm, wlid)")
    out = {}
    if plugins.get("lm"):
        if not isinstance(plugins["lm"], dict):
            raise FeatureError("the lm plug-in must map language codes to ARPA files")
        for lang, path in plugins["lm"].items():
            if not Path(str(path)).is_file():
                raise FeatureError(f"the lm feature's model for {lang}, {path}: no such file")
        out["lm"] = {str(k): os.path.abspath(str(v)) for k, v in plugins["lm"].items()}
    if plugins.get("wlid"):
        if not Path(str(plugins["wlid"])).is_file():
            raise FeatureError(f"the wlid feature's model {plugins['wlid']}: no such file")
        out["wlid"] = os.path.abspath(str(plugins["wlid"]))
    return out


_BUILT: dict[str, TextFeature] = {}


def build_feature(name: str, plugins: dict) -> TextFeature:
    """The callable of text feature `name` from its specification (built once per process and specification)."""
    spec = plugins.get(name)
    if not spec:
        flag = "--rerank-lm LANG=FILE" if name == "lm" else "--rerank-wlid MODEL.bin"
        raise FeatureError(f"the {name} feature has a weight but no model: give {flag}")
    key = json.dumps([name, spec], sort_keys=True)
    if key not in _BUILT:
        _BUILT[key] = KenLMFeature(spec) if name == "lm" else FastTextLID(spec)
    return _BUILT[key]


def build_features(plugins: dict, names) -> dict[str, Callable[[str, str, str | None], float]]:
    """{name: callable} for the text features `names` (those with a weight)."""
    return {name: build_feature(name, plugins) for name in names if name in TEXT_FEATURES}
