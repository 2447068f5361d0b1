"""Every task's options and their defaults, defined once (whisper's DecodingOptions shape): the Python APIs take
these dataclasses and the command-line parsers read their defaults from them. No torch here, so `mms --help`
stays light."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace


@dataclass
class ASROptions:
    batch_seconds: float | None = None  # padded audio per forward pass; None: 200 on CUDA, 10 on CPU
    chunk_seconds: float = 30.0  # inputs longer than this are transcribed in windows of this length ...
    context_seconds: float = 5.0  # ... each seeing this much more audio on both sides (its frames are dropped)
    buffer_seconds: float | None = None  # audio decoded ahead; None: max(4 batches, 600 s)
    decode_workers: int = 1  # beam-search processes beside the acoustic model (0: in-process)
    time_offsets: tuple[float, float] | None = None  # added to word/char times; None: the model's measured lag
    quantize: str | None = None  # "int8": dynamic int8 linear layers (CPU)


@dataclass
class LIDOptions:
    top_k: int | str = 5  # languages reported per input; "all": every candidate
    max_seconds: float = 30.0  # without a window, classify the first this many seconds of each input
    window_seconds: float | None = None  # classify the whole input in windows this long, probabilities averaged
    batch_seconds: float | None = None  # padded audio per forward pass; None: 200 on CUDA, 10 on CPU
    buffer_seconds: float | None = None  # audio read ahead; None: max(4 batches, 600 s)
    quantize: str | None = None  # "int8": dynamic int8 linear layers (CPU)


@dataclass
class AlignOptions:
    chunk_seconds: float = 30.0  # data_prep's emission windows ...
    context_seconds: float = 3.0  # ... and their extra audio on both sides
    batch_seconds: float = 120.0  # audio per forward pass
    romanize: bool | None = None  # spell the text in uroman; None: when the model has no word-boundary token
    normalize_audio: bool | None = None  # standardise the waveform; None: as the model's format says
    time_offsets: tuple[float, float] | None = None  # added to word/char times; None: the model's measured lag
    quantize: str | None = None  # "int8": dynamic int8 linear layers (CPU)


GPU_BATCH_TOKENS = 1000  # TTSOptions.batch_tokens off the CPU: about 40 s of speech per pass


# bounds of the settings that take arbitrary numbers, shared by the command line's flags and the APIs' checks
SEED_LIMIT = 2 ** 62  # torch's generators take 64-bit seeds; sentence j of a TTS input uses seed + j
MAX_PAUSE = 60  # seconds of silence between sentences: more is surely a mistake (and a huge array)
SAMPLE_RATES = (1000, 384000)  # output sample rates (Hz) a resampled TTS output may have
# train-tts: new discriminators at most this factor on VITS's channel counts (parameters grow with its square: 4 is
# about 750M parameters, 16 times VITS's own; 1000 asked the allocator for terabytes)
MAX_DISCRIMINATOR_WIDTH = 4.0


@dataclass
class TTSOptions:
    max_chars: int = 300  # longest sentence synthesised at once
    batch_tokens: int | None = None  # padded input ids per forward pass; None: one sentence per pass on the CPU
    # (padded batches were 1.2-1.3x slower there, measured), GPU_BATCH_TOKENS elsewhere
    pause: float = 0.2  # seconds of silence between sentences
    split: str = "sentences"  # "sentences": cut long text into sentences; "none": each input whole
    speaking_rate: float | None = None  # >1 faster; None: the voice's (1.0)
    noise_scale: float | None = None  # voice variation; None: the voice's (0.667)
    noise_scale_duration: float | None = None  # rhythm variation; None: the voice's (0.8)
    seed: int | None = None  # the same text and seed give the same speech
    sample_rate: int | None = None  # resample the output; None: the voice's
    numbers: str = "words"  # "words": spell digits in the voice's language (mms/text/numbers.py); "as-is": as the
    # references do (a voice without digits drops them)


@dataclass
class BeamOptions:
    lm: str | None  # ARPA or KenLM binary; None: lexicon-only search (flashlight's ZeroLM; needs a lexicon)
    lexicon: str | None = None  # `word u n i t s |` lines; None = lexicon-free (needs unit_lm)
    unit_lm: bool = False  # the LM is over the model's units (characters), not words
    beam: int = 100  # fairseq's MMS README uses 500 (slow: see docs/lm.md)
    beam_size_token: int | None = None  # None = whole vocabulary (fairseq); the MMS README uses 50
    beam_threshold: float = 50.0
    lm_weight: float = 2.0
    word_score: float = -1.0
    unk_weight: float = -math.inf
    sil_weight: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def from_namespace(cls, namespace, **overrides):
    """An options dataclass from the same-named attributes of an argparse Namespace (missing ones keep their
    defaults), then `overrides`."""
    values = {f.name: getattr(namespace, f.name) for f in fields(cls) if hasattr(namespace, f.name)}
    return replace(cls(**values), **overrides)
