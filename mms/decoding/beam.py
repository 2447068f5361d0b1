"""CTC beam search with a KenLM language model, through flashlight-text, fed exactly as fairseq feeds it.

fairseq's W2lKenLMDecoder (examples/speech_recognition/w2l_decoder.py), which the published MMS lm-weight /
word-score values were tuned with:
  * emissions are the RAW CTC logits (not log-softmax), blank = index 0, silence = `|`;
  * with a lexicon: LexiconDecoder over a trie of the lexicon's spellings, each word inserted with its unigram
    LM score from the start state, then smeared with MAX; the text is the decoder's words;
  * without a lexicon (`unit_lm`): LexiconFreeDecoder with an LM over the model's units; the text is the
    units with fairseq's `letter` post-processing.
Per-frame tokens give the same units and frame times as greedy decoding.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from mms.decoding.ctc import Hypothesis, Unit, collapse, split_pieces, units_to_text
from mms.errors import MMSError
from mms.files import missing_file
from mms.options import BeamOptions  # defined with the other options (torch- and numpy-free)
from mms.text.vocab import Vocabulary

INSTALL_HINT = "KenLM beam search needs flashlight-text: pip install 'mms[lm]' (or pip install flashlight-text)"


class BeamSearchError(MMSError):
    """An LM, lexicon or decoder setting that cannot be used (or flashlight-text missing); one line."""


def _flashlight():
    try:
        from flashlight.lib.text import decoder, dictionary
    except ImportError:
        raise BeamSearchError(INSTALL_HINT) from None
    try:
        from flashlight.lib.text.decoder.kenlm import KenLM
    except ImportError:  # flashlight-text < 0.0.7
        KenLM = decoder.KenLM
    return decoder, dictionary, KenLM


@contextlib.contextmanager
def _quiet_stderr():
    """KenLM prints a progress bar on the C++ stderr while it reads an ARPA file."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def load_kenlm(path: str, word_dict, error=None):
    """KenLM's model of `path` (ARPA or binary) over `word_dict`; what KenLM throws becomes one line naming the file
    (`error`: the MMSError class raised, BeamSearchError by default)."""
    import re

    _, _, KenLM = _flashlight()
    try:
        with _quiet_stderr():
            return KenLM(path, word_dict)
    except Exception as e:  # noqa: BLE001 - KenLM throws C++ exceptions as RuntimeError: `... threw FormatLoadException.`
        message = (str(e).splitlines() or [""])[0]
        thrown = re.search(r"threw (\w+)", message)
        # flashlight-text's KenLM is built with KENLM_MAX_ORDER 6; its message says so on a later line
        too_high = re.search(r"model has order (\d+) but KenLM was compiled to support up to (\d+)", str(e))
        if too_high:
            order, most = too_high.groups()
            reason = (f"its order is {order}, and the KenLM in flashlight-text loads orders up to {most} (rebuild it "
                      f"with `mms lm build --order {most}` or lower)")
        elif isinstance(e, UnicodeDecodeError):  # KenLM's message quotes the file's bytes, which are not text
            reason = "not an ARPA file or KenLM binary"
        else:
            reason = f"not an ARPA file or KenLM binary ({thrown.group(1)})" if thrown else message
        raise (error or BeamSearchError)(f"{path}: KenLM cannot load it: {reason}") from None


def pseudo_bigram(arpa: str) -> str:
    """An order-1 ARPA text made loadable: KenLM refuses unigram models ("This ngram implementation assumes at least
    a bigram model"), so add one bigram, `<s> </s>`, with the probability of `</s>` (every unigram backoff is 0, so
    every score stays the unigram one), as the MMS zero-shot Space does. Other orders are returned unchanged."""
    lines = arpa.splitlines()
    counts = [line for line in lines if line.startswith("ngram ")]
    if len(counts) != 1:
        return arpa
    eos = next((line.split()[0] for line in lines if len(line.split()) >= 2 and line.split()[1] == "</s>"), None)
    if eos is None:
        raise BeamSearchError("the unigram ARPA has no </s>")
    out = []
    for line in lines:
        if line.strip() == "\\end\\":
            out += ["\\2-grams:", f"{eos}\t<s> </s>", ""]
        out.append(line)
        if line.startswith("ngram 1="):
            out.append("ngram 2=1")
    return "\n".join(out) + "\n"


def arpa_words(path: str | Path) -> set[str] | None:
    """The words of an ARPA file's 1-grams (<s>, </s>, <unk> left out); None for a KenLM binary or a file that
    cannot be read (KenLM will say why)."""
    try:
        with open(path, "rb") as f:
            if not f.read(64).lstrip().startswith(b"\\data\\"):
                return None
        words, inside = set(), False
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line == "\\1-grams:":
                    inside = True
                elif inside and line.startswith("\\"):
                    break
                elif inside and len(fields := line.split()) >= 2:
                    words.add(fields[1])
    except (OSError, UnicodeDecodeError):
        return None
    return words - {"<s>", "</s>", "<unk>"}


def lm_mismatch(vocab: Vocabulary, options: BeamOptions) -> str | None:
    """A warning when the LM is not over what the search asks it about: a word LM given as --unit-lm (its words
    are not the model's units), or a lexicon whose words the LM hardly knows (a unit LM without --unit-lm).
    Either decodes, into nonsense, so it is said."""
    words = arpa_words(options.lm) if options.lm else None
    if not words:
        return None
    if options.unit_lm and not options.lexicon:
        units = len(words & set(vocab.tokens))
        if units < len(words) / 2:
            return (f"--lm {options.lm}: {units} of its {len(words)} words are units of the model: a word LM? "
                    f"--unit-lm takes an LM over the model's units (`mms lm build --units`)")
    elif options.lexicon:
        try:
            lexicon = {line.split()[0] for line in Path(options.lexicon).read_text(encoding="utf-8").splitlines()
                       if line.split()}
        except (OSError, UnicodeDecodeError):
            return None  # (the decoder names the file)
        known = len(lexicon & words)
        if lexicon and known < len(lexicon) / 10:
            return (f"--lm {options.lm}: knows {known} of the {len(lexicon)} words of --lexicon {options.lexicon}; "
                    f"the others score as <unk> (an LM over units? that one goes with --unit-lm and no lexicon)")
    return None


def read_lexicon(path: str | Path, vocab: Vocabulary) -> dict[str, list[list[str]]]:
    """word -> spellings; every spelling unit must be in the vocabulary (fairseq asserts the same)."""
    lexicon: dict[str, list[list[str]]] = {}
    known = set(vocab.tokens)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise BeamSearchError(f"{path}: not UTF-8 text ({e.reason})") from None
    for n, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 2:
            raise BeamSearchError(f"{path}:{n}: expected 'word u n i t s |', got {line!r}")
        word, spelling = fields[0], fields[1:]
        if spelling[-1] != vocab.word_delimiter:
            # `word w o r d` without the closing `|` (or a delimiter that is a space, lost in the split): a
            # spelling must end a word, or the search runs words together and repeats them ("good good")
            spelling.append(vocab.word_delimiter)
        unknown = [u for u in spelling if u not in known]
        if unknown:
            raise BeamSearchError(f"{path}:{n}: units {' '.join(unknown)} of '{word}' are not in the model's "
                                  "vocabulary (build the lexicon with `mms lexicon`)")
        lexicon.setdefault(word, []).append(spelling)
    if not lexicon:
        raise BeamSearchError(f"{path}: empty lexicon")
    return lexicon


def check_combination(lm: str | None, lexicon: str | None, unit_lm: bool) -> None:
    """What flashlight's decoders can run: a lexicon (with a word LM or none), or a unit LM without a lexicon.
    `mms asr` checks its flags with this before the model loads; the decoder again when it is built."""
    if lexicon and unit_lm:  # (KenLM would be asked for unit ids of the word dictionary)
        raise BeamSearchError("--unit-lm decodes without a lexicon (an LM over the model's units); with a lexicon "
                              "the LM is over words: give one of the two")
    if unit_lm and lm is None:
        raise BeamSearchError("--unit-lm needs --lm (a unit LM: `mms lm build --units`)")
    if lm is None and not lexicon:
        raise BeamSearchError("beam search needs a language model, a lexicon or both")
    if not lexicon and not unit_lm:
        raise BeamSearchError("decoding without a lexicon needs a unit (character) LM: add --unit-lm")


class BeamSearchDecoder:
    def __init__(self, vocab: Vocabulary, options: BeamOptions):
        decoder, dictionary, KenLM = _flashlight()
        self.vocab, self.options = vocab, options
        for name in ("lm", "lexicon"):
            value = getattr(options, name)
            if value and (why := missing_file(value, "language model file" if name == "lm" else "lexicon file")):
                raise BeamSearchError(f"{value}: {why}")
        silence = vocab.index(vocab.word_delimiter)
        if silence is None:
            raise BeamSearchError(f"the vocabulary has no word delimiter {vocab.word_delimiter!r}")
        size = len(vocab)
        token_beam = options.beam_size_token or size
        check_combination(options.lm, options.lexicon, options.unit_lm)
        if options.lexicon:
            lexicon = read_lexicon(options.lexicon, vocab)
            # flashlight's load_words adds "<unk>" with no spelling; the LM maps unknown words to it
            self.word_dict = dictionary.create_word_dict({"<unk>": [], **lexicon})
            if options.lm is None:  # every word scores 0: only the lexicon and word_score constrain the search
                self.lm = decoder.ZeroLM()
            else:
                self.lm = load_kenlm(options.lm, self.word_dict)
            trie = decoder.Trie(size, silence)
            start = self.lm.start(False)
            for word, spellings in lexicon.items():
                word_index = self.word_dict.get_index(word)
                _, score = self.lm.score(start, word_index)
                for spelling in spellings:
                    trie.insert([vocab.index(u) for u in spelling], word_index, score)
            trie.smear(decoder.SmearingMode.MAX)
            opts = decoder.LexiconDecoderOptions(
                beam_size=options.beam, beam_size_token=token_beam, beam_threshold=options.beam_threshold,
                lm_weight=options.lm_weight, word_score=options.word_score, unk_score=options.unk_weight,
                sil_score=options.sil_weight, log_add=False, criterion_type=decoder.CriterionType.CTC)
            self.decoder = decoder.LexiconDecoder(opts, trie, self.lm, silence, vocab.blank,
                                                  self.word_dict.get_index("<unk>"), [], options.unit_lm)
        else:
            self.word_dict = dictionary.create_word_dict({t: [[t]] for t in vocab.tokens})
            self.lm = load_kenlm(options.lm, self.word_dict)
            opts = decoder.LexiconFreeDecoderOptions(
                beam_size=options.beam, beam_size_token=token_beam, beam_threshold=options.beam_threshold,
                lm_weight=options.lm_weight, sil_score=options.sil_weight, log_add=False,
                criterion_type=decoder.CriterionType.CTC)
            self.decoder = decoder.LexiconFreeDecoder(opts, self.lm, silence, vocab.blank, [])

    def decode(self, emissions: np.ndarray) -> Hypothesis:
        """emissions: [T, V] raw logits of one input's valid frames."""
        emissions = np.ascontiguousarray(emissions, dtype=np.float32)
        frames, size = emissions.shape
        if size != len(self.vocab):
            raise BeamSearchError(f"emissions have {size} classes, the vocabulary {len(self.vocab)}")
        if frames == 0:
            return Hypothesis("", [], 0.0)
        best = self.decoder.decode(emissions.ctypes.data, frames, size)[0]
        frame_tokens = np.asarray(best.tokens[1:frames + 1])  # flashlight pads one silence on each side
        labels, starts, ends = collapse(frame_tokens)
        units = [Unit(self.vocab.tokens[label], int(s), int(e)) for label, s, e in zip(labels.tolist(), starts, ends)
                 if label != self.vocab.blank and label not in self.vocab.silent]
        units = split_pieces(units, self.vocab)  # SentencePiece pieces ("▁the"): words and times as for letters
        if self.options.lexicon:  # the lexicon's words (a zero-shot word list: not their romanised spelling)
            spelled = [self.word_dict.get_entry(w) for w in best.words if w >= 0]
            return Hypothesis(" ".join(spelled), units, float(best.score), lexicon_words=spelled)
        return Hypothesis(units_to_text([u.token for u in units], self.vocab), units, float(best.score))


# ---------------------------------------------------------------------------------------------------------
# Decoding in worker processes, so that beam search never holds up the acoustic model.

_WORKER_DECODERS: dict = {}


def _decode_in_worker(tokens: tuple, vocab: Vocabulary, options: BeamOptions, emissions: np.ndarray) -> Hypothesis:
    key = (tokens, tuple(sorted(options.to_dict().items())))
    if key not in _WORKER_DECODERS:  # the LM and trie are built once per worker and language
        _WORKER_DECODERS.clear()
        _WORKER_DECODERS[key] = BeamSearchDecoder(vocab, options)
    return _WORKER_DECODERS[key].decode(emissions)


class DecoderPool:
    """Beam search over `workers` processes (0: in this process). `submit` returns a Future."""

    def __init__(self, options: BeamOptions, workers: int = 1):
        from concurrent.futures import Future, ProcessPoolExecutor

        _flashlight()  # fail early with the install hint
        self.options, self.workers = options, workers
        self._future = Future
        self._executor = None
        if workers > 0:
            import multiprocessing

            # spawn, not fork: the parent runs torch threads, and the workers never need torch
            self._executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))

    def check(self, vocab: Vocabulary) -> None:
        """Build a decoder once, so a bad LM or lexicon is reported before any audio is processed. It is built
        where it will be used (a worker, or this process with workers=0), not loaded here in addition."""
        self.submit(vocab, np.zeros((0, len(vocab)), np.float32)).result()

    def submit(self, vocab: Vocabulary, emissions: np.ndarray, options: BeamOptions | None = None):
        """Decode in a worker; `options` overrides the pool's (e.g. other LM weights while tuning)."""
        options = options or self.options
        if self._executor is not None:
            return self._executor.submit(_decode_in_worker, tuple(vocab.tokens), vocab, options, emissions)
        future = self._future()
        try:
            future.set_result(_decode_in_worker(tuple(vocab.tokens), vocab, options, emissions))
        except Exception as e:  # noqa: BLE001 - reported per input
            future.set_exception(e)
        return future

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(cancel_futures=True)
            self._executor = None
