"""Errors that carry a one-line message meant for the user.

Library code raises :class:`RankzcError` (or a subclass) for bad input: a missing
file, a malformed record, a rule of the search space broken. The CLI prints the
message on one line and exits non-zero, without a traceback. ``ValueError`` is
its base class so that Python callers can catch it as the usual kind of error.
"""


class RankzcError(ValueError):
    """Bad input or a user mistake; ``str(err)`` names the file, field or rule at fault."""


class StoreError(RankzcError):
    """A benchmark store that cannot be opened, read or written."""


def describe_error(err: BaseException) -> str:
    """``Type: first line of the message``: one line that says what went wrong.

    The one describer used wherever a failure is recorded or shown (failed runs, missing
    proxy scores, corrupted files).
    """
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")
