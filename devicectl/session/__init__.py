"""Sessions: protocol files, the runner that walks them, and the simulated station.

:mod:`devicectl.session.protocol_file` reads and checks a protocol file (TOML);
the format is documented in ``docs/protocols/session-files.md``.
"""

from devicectl.session.protocol_file import (
    KINDS,
    IPLStep,
    LEDExposureStep,
    ManualStep,
    RFStep,
    SessionLimits,
    SessionProtocol,
    Step,
    load_protocol,
    loads_protocol,
    planned_s,
    protocol_problems,
    total_planned_s,
    validate_protocol,
)

__all__ = [
    "KINDS",
    "IPLStep",
    "LEDExposureStep",
    "ManualStep",
    "RFStep",
    "SessionLimits",
    "SessionProtocol",
    "Step",
    "load_protocol",
    "loads_protocol",
    "planned_s",
    "protocol_problems",
    "total_planned_s",
    "validate_protocol",
]
