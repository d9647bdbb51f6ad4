"""The drivers build their per-tick readings with ``frozen_constructor``:
the objects must be the ones the dataclasses themselves build."""

from __future__ import annotations

import dataclasses
import math

import pytest

from devicectl.devices import (
    IPLReading,
    IPLStatus,
    LEDFault,
    LEDReading,
    RFReading,
    RFStatus,
    frozen_constructor,
)

CASES = [
    (RFReading, (1.25, 33.1, 33.2, 120.0, 5.0, True, RFStatus(3))),
    (IPLReading, (2.5, IPLStatus(0), 0.0, 5.5, math.nan, 3, 12.5, 590, 99.0)),
    (LEDReading, (3.0, 633, 60.0, 59.8, True, 30.1, 34.2, True, 12.3, LEDFault(0))),
]


@pytest.mark.parametrize(("cls", "values"), CASES)
def test_the_fast_constructor_builds_what_the_class_builds(cls: type, values: tuple) -> None:
    fast = frozen_constructor(cls)(*values)
    slow = cls(*values)
    assert type(fast) is cls
    assert repr(fast) == repr(slow)
    assert list(vars(fast)) == list(vars(slow))
    if not any(isinstance(v, float) and math.isnan(v) for v in values):
        assert fast == slow and hash(fast) == hash(slow)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.t_s = 0.0
    assert dataclasses.replace(fast, t_s=9.0).t_s == 9.0
    names = [f.name for f in dataclasses.fields(cls)]
    assert repr(frozen_constructor(cls)(**dict(zip(names, values, strict=True)))) == repr(slow)


def test_only_plain_frozen_dataclasses() -> None:
    @dataclasses.dataclass
    class Mutable:
        x: int

    @dataclasses.dataclass(frozen=True)
    class Checked:
        x: int

        def __post_init__(self) -> None:
            pass

    for cls in (Mutable, Checked, int):
        with pytest.raises(TypeError):
            frozen_constructor(cls)
