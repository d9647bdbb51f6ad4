"""The console's keys: the session's own, then those the devices' modalities declare.

The session keys answer the runner's prompts and steer the session (C A S N,
P R, K, X, E; M pauses the alarm sound for a while); a modality adds keys for
its own device through ``Modality.console_actions`` (the IPL trigger, F), each sent to that device
with the signed-in operator's id. Every key also has a button, in the same
order. A device key must be one lower-case letter that no other key takes
(H opens the help): a clash is a ConfigError naming both, before the console
starts, never a key that silently does the other thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from devicectl.errors import ConfigError
from devicectl.modality import Modality

# (key, action, button label); the actions are ConsoleApp's action_* methods. The
# devices' keys come after the first three: next to Start, which they follow.
SESSION_FIRST = (
    ("c", "confirm", "Confirm (C)"),
    ("a", "arm", "Arm (A)"),
    ("s", "start", "Start (S)"),
)
SESSION_THEN = (
    ("n", "next_zone", "Next zone (N)"),
    ("p", "pause", "Pause (P)"),
    ("r", "resume", "Resume (R)"),
    ("k", "acknowledge", "Acknowledge (K)"),
    ("m", "silence", "Silence (M)"),
    ("x", "abort", "Abort (X)"),
    ("e", "end", "End (E)"),
)
CONSOLE_KEYS = {"h": "help"}  # bound by the app itself


@dataclass(frozen=True)
class KeyAction:
    key: str
    action: str  # a Textual action string, run on the app
    label: str  # the button's label
    button_id: str


def _session(key: str, action: str, label: str) -> KeyAction:
    return KeyAction(key, f"app.{action}", label, f"do-{action}")


def key_actions(devices: Mapping[str, Modality]) -> list[KeyAction]:
    """Every key of the main screen, the devices' (``devices``: name -> modality of
    each device of the station, in registry order) after Start."""
    taken = {key: f"the console's {action}" for key, action, _ in SESSION_FIRST + SESSION_THEN}
    taken.update({key: f"the console's {action}" for key, action in CONSOLE_KEYS.items()})
    added: list[KeyAction] = []
    for name, mod in devices.items():
        for key, action, label in mod.console_actions:
            if len(key) != 1 or not ("a" <= key <= "z"):
                raise ConfigError(
                    f"modality {name!r}: console key {key!r} for {action!r} is not one "
                    "lower-case letter"
                )
            if key in taken:
                raise ConfigError(
                    f"modality {name!r}: console key {key!r} for {action!r} is taken by "
                    f"{taken[key]}"
                )
            taken[key] = f"{name} {action}"
            added.append(
                KeyAction(
                    key,
                    f"app.device_action({name!r}, {action!r})",
                    label,
                    f"do-device-{len(added)}",
                )
            )
    return [_session(*a) for a in SESSION_FIRST] + added + [_session(*a) for a in SESSION_THEN]
