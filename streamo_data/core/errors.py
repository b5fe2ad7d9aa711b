"""The one exception type for input a user can fix (a wrong path, a damaged file, a nonsense number).

Library code raises :class:`UserError` with a message that names the item and the reason; the CLI turns
it into one red line and exit code 2 in one place (``streamo_data.cli.common``), so no command needs its
own try/except and no user sees a traceback for their own mistake. It is a ``ValueError``, so callers
that already handle bad values keep working.
"""

from __future__ import annotations


class UserError(ValueError):
    """Bad input, with a message fit to show as it is: ``<item>: <reason>[; what to do]``."""


class MissingInput(UserError, FileNotFoundError):
    """A file or folder the command needs is not there (also a ``FileNotFoundError`` for older callers)."""
