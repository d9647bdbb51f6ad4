"""The keys the console offers now, from what the runner and the devices would accept.

The session's view carries ``offers`` (``devicectl/session/offers.py``, read on
the loop thread in this process or by the station service): the session's
actions, ``acknowledge``, and the devices' own as ``device.action``. Here they
become the keys a person presses, with the word each key does, in the order
of the key row. Escape (the emergency stop) is always offered: there is never
a moment without a way out.
"""

from __future__ import annotations

from collections.abc import Iterable

from devicectl.console.keys import SESSION_FIRST, SESSION_THEN
from devicectl.modality import modalities

ESTOP_OFFER = ("Esc", "E-STOP")
_SESSION_KEYS = {
    action: (key.upper(), label.split(" (")[0].lower())
    for key, action, label in (
        *SESSION_FIRST,
        *SESSION_THEN,
    )
}


def key_of(action: str) -> tuple[str, str] | None:
    """(KEY, what it does) of an offered action: a session action, ``acknowledge``, or
    a device's own ``device.action`` (its modality's console key); None if no key."""
    if action in _SESSION_KEYS:
        return _SESSION_KEYS[action]
    device, _, device_action = action.partition(".")
    mod = modalities().get(device)
    if mod is None:
        return None
    for key, name, label in mod.console_actions:
        if name == device_action:
            return key.upper(), f"{label.split(' (')[0].lower()}"
    return None


def offered_keys(offers: Iterable[str], *, skip: Iterable[str] = ()) -> list[tuple[str, str]]:
    """The keys of ``offers`` (less ``skip``), then Escape."""
    skipped = set(skip)
    keys = [k for a in offers if a not in skipped and (k := key_of(a)) is not None]
    return [*keys, ESTOP_OFFER]


def offers_text(offers: Iterable[str], *, skip: Iterable[str] = ()) -> str:
    """One line: ``now: R resume  P pause  X abort  Esc E-STOP``."""
    return "now: " + "  ".join(f"{key} {what}" for key, what in offered_keys(offers, skip=skip))
