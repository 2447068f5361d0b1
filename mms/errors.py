"""The project's one error base class.

Every error that means "this input, option, file or model is not usable" derives from MMSError and carries a
one-line message naming the thing and the reason. The command-line runner (mms.command) turns an MMSError into
that one line and exit status 2; any other exception is a bug and is reported as one.

MMSError subclasses ValueError so that API users who caught the older ValueError-based errors keep working;
the runner never catches plain ValueError.
"""

from __future__ import annotations


class MMSError(ValueError):
    """A usage, input, file or model error, with a one-line message for the user."""
