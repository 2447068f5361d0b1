"""Spoken language identification. `from mms.lid import LID` (imports torch on first use, not on package import).

    from mms.lid import LID
    lid = LID.load("mms1b_l126.pt", device="cpu")
    for result in lid.identify(["a.wav", "b.flac"], top_k=3):
        print(result.name, result.lang, result.predictions)   # [("eng", 0.98), ("fra", 0.01), ...]

Options and their defaults: mms.options.LIDOptions.
"""


def __getattr__(name):
    if name in ("LID", "LanguageResult"):
        from mms.lid import identifier

        return getattr(identifier, name)
    raise AttributeError(name)
