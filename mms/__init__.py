"""mms: Massively Multilingual Speech, simply working."""

import logging
import os

__version__ = "0.1.0"

# oneDNN (torch's CPU kernels) keeps up to 1,024 compiled kernels, one per input shape, some of several MB: a run
# over inputs of many lengths (TTS sentences, ASR files) grew to 1 GB for a 3 MB voice. 64 bounds that (a 200-
# sentence TTS run: 0.99 -> 0.50 GB resident, same speed). Read by oneDNN at its first use; a value set by the
# user wins.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "64")

# a library's warnings (a cut-off file, characters a voice drops) go where the application sends its logging; with
# none set up they are not printed (Python's last-resort handler would print them, and `Speech.dropped` and the
# like carry them already). The commands print them as `mms CMD: warning: ...` (mms.command, mms.tts.cli).
logging.getLogger("mms").addHandler(logging.NullHandler())
