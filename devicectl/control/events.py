"""What flows through the control loop: alarms and events out, commands in.

Alarm priorities follow IEC 60601-1-8: HIGH for over-temperature, sensor
faults and comms loss; MEDIUM for approaching a limit or contact lost; LOW for
information such as a step finished.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class AlarmPriority(enum.IntEnum):
    LOW = 1
    MEDIUM = 2
    HIGH = 3


@dataclass(frozen=True)
class Alarm:
    """A condition the operator must see; ``latches`` means it puts the device in fault.

    ``message`` names the device, the condition, the value and the limit, and
    ``doc`` says where to read more.
    """

    device: str
    code: str
    priority: AlarmPriority
    message: str
    latches: bool
    value: float | None = None
    limit: float | None = None
    doc: str = "docs/safety.md"


def fault_alarm(
    device: str,
    code: str,
    message: str,
    value: float | None = None,
    limit: float | None = None,
    *,
    doc: str | None = None,
) -> Alarm:
    """A HIGH, latching alarm whose doc link is the code's section of docs/safety.md
    (or ``doc``: a third-party modality links to its own documentation)."""
    return Alarm(
        device=device,
        code=code,
        priority=AlarmPriority.HIGH,
        message=f"{device}: {message}",
        latches=True,
        value=value,
        limit=limit,
        doc=doc if doc is not None else f"docs/safety.md#{code.replace('.', '-')}",
    )


@dataclass(frozen=True)
class Event:
    """Something that happened at clock time ``t_s``: what front-ends and the record see."""

    t_s: float
    kind: str
    device: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Command:
    """A request to a controller, carried to the loop thread through its queue."""

    device: str
    action: str
    args: dict[str, Any] = field(default_factory=dict)
    operator_id: str | None = None
