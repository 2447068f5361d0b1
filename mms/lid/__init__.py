"""Spoken language identification. `from mms.lid import LID` (imports torch on first use, not on package import).

    from mms.lid import LID
    lid = LID.load("mms1b_l126.pt", device="cpu")
    for result in lid.identify(["a.wav", "b.flac"], top_k=3):
        print(result.audio, result.lang, result.predictions)   # [("eng", 0.98), ("fra", 0.01), ...]
"""

# Defaults shared by the API and `mms lid` (kept here: the CLI must not import torch to show them).
TOP_K = 5
MAX_SECONDS = 30.0  # without a window, classify the first this many seconds of each input
BATCH_SECONDS = None  # padded audio per forward pass; None: 200 s on CUDA, 30 s on CPU


def __getattr__(name):
    if name in ("LID", "LanguageResult"):
        from mms.lid import identifier

        return getattr(identifier, name)
    raise AttributeError(name)
