"""mms: Massively Multilingual Speech, simply working."""

import os

__version__ = "0.1.0"

# oneDNN (torch's CPU kernels) keeps up to 1,024 compiled kernels, one per input shape, some of several MB: a run
# over inputs of many lengths (TTS sentences, ASR files) grew to 1 GB for a 3 MB voice. 64 bounds that (a 200-
# sentence TTS run: 0.99 -> 0.50 GB resident, same speed). Read by oneDNN at its first use; a value set by the
# user wins.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "64")
