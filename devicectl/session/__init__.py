"""Sessions: protocol files, the runner that walks them, and the simulated station.

:mod:`devicectl.session.protocol_file` reads and checks a protocol file (TOML);
the format is documented in ``docs/protocols/session-files.md``. The step type
of each device kind belongs to its modality; ``devicectl.session.<StepType>``
(``RFStep``, a third party's ``CryoStep``) finds it in the registry.
"""

from typing import Any

from devicectl.session.protocol_file import (
    ManualStep,
    SessionLimits,
    SessionProtocol,
    Step,
    kinds,
    load_protocol,
    loads_protocol,
    planned_s,
    protocol_problems,
    total_planned_s,
    validate_protocol,
)

__all__ = [
    "ManualStep",
    "SessionLimits",
    "SessionProtocol",
    "Step",
    "kinds",
    "load_protocol",
    "loads_protocol",
    "planned_s",
    "protocol_problems",
    "total_planned_s",
    "validate_protocol",
]


def __getattr__(name: str) -> Any:
    """A registered modality's step type by its class name (``RFStep``)."""
    from devicectl.modality import modalities

    for mod in modalities().values():
        if mod.step_type.__name__ == name:
            return mod.step_type
    raise AttributeError(f"module 'devicectl.session' has no attribute {name!r}")
