"""User-facing errors.

Anything a user can cause (bad path, bad file, bad name, bad option) raises a subclass of
:class:`BiotuneError`. The CLI prints its message on one line and exits non-zero, without a traceback.
Messages name the file / line / field at fault and say how to fix it.
"""


class BiotuneError(Exception):
    """An error caused by input the user can fix."""


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none): what a one-line error
    quotes of a library's exception."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def excerpt(value, limit: int = 40) -> str:
    """A value read from a user's file, quoted for an error message and cut to `limit` characters: a message
    names what is wrong without echoing a file's content (which may be anything, secrets included)."""
    text = str(value)
    return repr(text if len(text) <= limit else text[:limit] + "…")


class UnknownNameError(BiotuneError, KeyError):
    """A name that is not in a registry; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class DataFormatError(BiotuneError):
    """A data file that does not have the expected format; the message names file and line."""

    def __init__(self, path, line: int | None, problem: str):
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")
        self.path, self.line = path, line


class MissingSplitError(BiotuneError):
    """A dataset split whose file is not on disk."""
