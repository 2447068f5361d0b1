"""Forced alignment (MMS data_prep): `from mms.align import Aligner, forced_align` (torch is imported on first
use, not on package import, so that `mms align --help` stays light)."""


def __getattr__(name):
    if name in ("Aligner", "Alignment", "Line", "Pair"):
        from mms.align import aligner

        return getattr(aligner, name)
    if name in ("forced_align", "AlignmentError"):
        from mms.align import viterbi

        return getattr(viterbi, name)
    raise AttributeError(name)
