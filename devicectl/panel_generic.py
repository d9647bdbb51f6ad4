"""The panel of a modality that brings none of its own, and what every view shares.

A modality registered without console hooks is still shown: its state, the
output its device reports (not what was asked) and its latched fault. Its view
is read on the loop thread with ``getattr``, so a third-party controller that
is not a ``ControllerCore`` shows what it has and "NO READING" for the rest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from devicectl.panel_style import header, output_badge, with_fault


@dataclass(frozen=True)
class DeviceView:
    state: str
    output_on: bool | None  # None: no reading from the device
    fault: str | None


def state_of(controller: Any) -> str:
    """The controller's state value ("idle", "fault", ...), "?" if it has none."""
    state = getattr(controller, "state", None)
    return str(getattr(state, "value", state if state is not None else "?"))


def fault_of(controller: Any) -> str | None:
    """The latched fault's message, "emergency stop" in estop, else None."""
    alarm = getattr(controller, "fault_alarm", None)
    if alarm is not None:
        return str(alarm.message)
    return "emergency stop" if state_of(controller) == "estop" else None


def generic_view(controller: Any) -> DeviceView:
    reported = getattr(controller, "reported_energy", None)
    output_on = reported() if callable(reported) else None
    return DeviceView(state_of(controller), output_on, fault_of(controller))


def render_generic(title: str, view: Any) -> Text:
    """Any view with ``state`` (and ``output_on`` and ``fault`` if it has them)."""
    out = header(
        title, str(getattr(view, "state", "?")), output_badge(getattr(view, "output_on", None))
    )
    return with_fault(out, getattr(view, "fault", None))


def generic_view_from_status(status: Mapping[str, Any]) -> DeviceView:
    """The generic view of a device from the station service's snapshot of it."""
    output_on = status.get("output_on")
    fault = status.get("fault")
    return DeviceView(
        str(status.get("state", "?")),
        output_on if isinstance(output_on, bool) else None,
        str(fault) if fault is not None else None,
    )


def frozen_view(cls: type, status: Mapping[str, Any]) -> Any | None:
    """A modality's view dataclass ``cls`` from the ``console`` part of a device of the
    station's snapshot (lists back to tuples); None if it is missing or incomplete."""
    data = status.get("console")
    if not isinstance(data, Mapping) or not dataclasses.is_dataclass(cls):
        return None
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            return None
        value = data[f.name]
        values[f.name] = tuple(value) if isinstance(value, list) else value
    return cls(**values)
