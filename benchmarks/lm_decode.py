"""Beam-search decoding throughput with a KenLM word LM: mms (flashlight-text, as fairseq feeds it) vs
pyctcdecode, on the same emissions, the same ARPA LM and the same words, in one run.

    pip install pyctcdecode kenlm      # the reference (kenlm builds from source: needs a compiler)
    python benchmarks/lm_decode.py [--utterances 40] [--beams 50,500]

Emissions are synthetic: sentences of a random word list spelled in 27 letters, 1-2 frames per letter and
some blanks, Gaussian noise on the logits (so greedy decoding makes errors and the LM matters). Both decoders run in this process, one utterance at
a time; the ratio is mms utterances per second / pyctcdecode utterances per second at the same beam width.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from mms.decoding.beam import BeamOptions, BeamSearchDecoder
from mms.lm.kneser_ney import build_arpa
from mms.scoring import score
from mms.text.vocab import Vocabulary

LETTERS = list("abcdefghijklmnopqrstuvwxyz'")


def synthetic(n_utts: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    words = ["".join(rng.choice(LETTERS[:26], size=rng.integers(2, 8))) for _ in range(2000)]
    corpus = [" ".join(rng.choice(words, size=rng.integers(5, 15))) for _ in range(5000)]
    symbols = ["<s>", "<pad>", "</s>", "<unk>", "|"] + LETTERS
    index = {s: i for i, s in enumerate(symbols)}
    emissions, refs = [], []
    for _ in range(n_utts):
        sentence = corpus[rng.integers(len(corpus))]
        labels = []
        for word in sentence.split():
            labels += [index[c] for c in word] + [index["|"]]
        frames = []
        for label in labels:
            frames += [label] * int(rng.integers(1, 3)) + [0] * int(rng.integers(0, 2))
        logits = rng.normal(0, 1.0, (len(frames), len(symbols))).astype(np.float32)
        logits[np.arange(len(frames)), frames] += 2.5
        emissions.append(logits)
        refs.append(sentence)
    return symbols, words, corpus, emissions, refs


def log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--utterances", type=int, default=40)
    parser.add_argument("--beams", default="50,500")
    args = parser.parse_args()

    symbols, words, corpus, emissions, refs = synthetic(args.utterances)
    tmp = Path(tempfile.mkdtemp())
    arpa = tmp / "lm.arpa"
    build_arpa(corpus, arpa, order=3, use_lmplz=False)
    lexicon = tmp / "lexicon.txt"
    lexicon.write_text("".join(f"{w}\t{' '.join(w)} |\n" for w in sorted(set(words))))
    vocab = Vocabulary.from_fairseq_symbols(symbols)
    lm_weight, word_score = 1.0, 0.0

    try:
        from pyctcdecode import build_ctcdecoder
    except ImportError:
        build_ctcdecoder = None
    frames = sum(len(e) for e in emissions) / len(emissions)
    print(f"{args.utterances} utterances of {frames:.0f} frames on average, vocabulary {len(symbols)}, "
          f"{len(set(words))} words, 3-gram KN LM of {len(corpus)} sentences")
    print(f"{'decoder':<34}{'beam':>6}{'utt/s':>10}{'WER':>8}")
    greedy_wer = score(refs, [" ".join("".join(symbols[i] for i in _collapse(e.argmax(-1))).replace("|", " ").split())
                              for e in emissions], per_utterance=False)["wer"]
    print(f"{'greedy (no LM)':<34}{'':>6}{'':>10}{greedy_wer:>8.2f}")
    for beam in (int(b) for b in args.beams.split(",")):
        ours = BeamSearchDecoder(vocab, BeamOptions(lm=str(arpa), lexicon=str(lexicon), beam=beam,
                                                    beam_size_token=beam, lm_weight=lm_weight, word_score=word_score))
        started = time.perf_counter()
        hyps = [ours.decode(e).text for e in emissions]
        ours_speed = len(emissions) / (time.perf_counter() - started)
        print(f"{'mms (flashlight-text LexiconDecoder)':<34}{beam:>6}{ours_speed:>10.2f}"
              f"{score(refs, hyps, per_utterance=False)['wer']:>8.2f}")
        if build_ctcdecoder is None:
            print("pyctcdecode not installed: no reference measured")
            continue
        # pyctcdecode: "" = blank, " " = word delimiter; the never-emitted specials as single placeholder characters
        labels = ["", "\u2400", "\u2401", "\u2402", " "] + LETTERS
        reference = build_ctcdecoder(labels, kenlm_model_path=str(arpa), unigrams=sorted(set(words)),
                                     alpha=lm_weight, beta=word_score)
        log_probs = [log_softmax(e) for e in emissions]
        started = time.perf_counter()
        ref_hyps = [reference.decode(lp, beam_width=beam) for lp in log_probs]
        ref_speed = len(emissions) / (time.perf_counter() - started)
        print(f"{'pyctcdecode':<34}{beam:>6}{ref_speed:>10.2f}"
              f"{score(refs, ref_hyps, per_utterance=False)['wer']:>8.2f}")
        print(f"{'ratio mms / pyctcdecode':<34}{beam:>6}{ours_speed / ref_speed:>10.2f}x")


def _collapse(ids):
    out, previous = [], None
    for i in ids:
        if i != previous and i != 0:
            out.append(int(i))
        previous = i
    return out


if __name__ == "__main__":
    main()
