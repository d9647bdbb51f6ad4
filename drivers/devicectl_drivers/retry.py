"""Bounded retries for the reads of a driver (never for an energy command).

A read whose reply timed out or arrived damaged can be asked again with a
fresh sequence number; a rejection or a port failure goes up at once. The
last error carries a note saying how many tries were made.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from devicectl.errors import DeviceTimeout, ProtocolError

_T = TypeVar("_T")


def note_tries(exc: BaseException, tries: int) -> None:
    if tries > 1:
        exc.add_note(f"gave up after {tries} tries, each with a fresh sequence number")


def retry_reads(attempt: Callable[[], _T], tries: int) -> _T:
    """Run ``attempt`` up to ``tries`` times while it times out or gets a bad frame."""
    left = tries
    while True:
        try:
            return attempt()
        except (DeviceTimeout, ProtocolError) as exc:
            left -= 1
            if not left:
                note_tries(exc, tries)
                raise
