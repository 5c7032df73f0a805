"""Errors that carry a one-line message meant for the user.

Library code raises :class:`RankzcError` (or a subclass) for bad input: a missing
file, a malformed record, a rule of the search space broken. The CLI prints the
message on one line and exits non-zero, without a traceback. ``ValueError`` is
its base class so that Python callers can catch it as the usual kind of error.
"""


class RankzcError(ValueError):
    """Bad input or a user mistake; ``str(err)`` names the file, field or rule at fault."""


class UsageError(RankzcError):
    """A choice of options that cannot work (e.g. a model that cannot read the chosen
    features), refused before any work: exit code 2, like click's usage errors."""

    exit_code = 2


class PartialFailure(RankzcError):
    """Some of the requested work failed after the rest was reported (e.g. a model that
    could not be fitted on the data): exit code 3."""

    exit_code = 3


class StoreError(RankzcError):
    """A benchmark store that cannot be opened, read or written."""


def describe_error(err: BaseException) -> str:
    """One line that says what went wrong: the first line of a :class:`RankzcError`'s
    message (already written for the user), else ``Type: first line of the message``.

    The one describer used wherever a failure is recorded or shown (failed runs, missing
    proxy scores, models that could not be fitted, corrupted files). An error raised in a
    Ray task (``RayTaskError``, whose first line only names the task) is described by the
    exception the task raised.
    """
    cause = getattr(err, "cause", None)
    if isinstance(cause, BaseException) and type(err).__name__.startswith("RayTaskError"):
        return describe_error(cause)
    lines = str(err).strip().splitlines()
    text = lines[0] if lines else ""
    if isinstance(err, RankzcError) and text:
        return text
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
