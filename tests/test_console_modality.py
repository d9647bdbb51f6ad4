"""The console names no modality: a modality registered at run time is shown and keyed.

A fake "cooler" modality is added to the registry for one test (and taken out
again), with a loop member standing in for its controller. Without console
hooks it gets the generic panel: its name, state, the output its device
reports and its fault; with ``console_actions`` its key sends its action to
its device with the operator's id; a key another key already takes is refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar

import pytest
from console_helpers import SIZE, make_app, press
from textual.pilot import Pilot

from devicectl.console.app import ConsoleApp
from devicectl.console.keys import key_actions
from devicectl.console.panels import TextPanel, device_renderer
from devicectl.console.screens import MainScreen
from devicectl.console.snapshot import take_snapshot
from devicectl.control.events import Alarm, AlarmPriority, Command
from devicectl.errors import ConfigError
from devicectl.modality import Modality, _registry, modalities

NAME = "cooler"


class CoolerState(Enum):
    IDLE = "idle"
    COOLING = "cooling"
    FAULT = "fault"
    ESTOP = "estop"


class _Machine:
    def get_triggers(self, state: object) -> list[str]:
        return []


class FakeCooler:
    """A loop member with the little a third-party controller shows the console."""

    name = NAME

    def __init__(self) -> None:
        self.state = CoolerState.IDLE
        self.fault_alarm: Alarm | None = None
        self.output_on: bool | None = False
        self.machine = _Machine()
        self.commands: list[Command] = []

    @property
    def latched(self) -> bool:
        return self.state in (CoolerState.FAULT, CoolerState.ESTOP)

    def reported_energy(self) -> bool | None:
        return self.output_on

    def sample(self, now_s: float) -> None: ...

    def supervise(self, now_s: float) -> None: ...

    def act(self, now_s: float) -> None: ...

    def handle(self, command: Command) -> bool:
        self.commands.append(command)
        if command.action == "estop":
            self.emergency_stop(command.operator_id)
        elif command.action == "acknowledge":
            self.state, self.fault_alarm = CoolerState.IDLE, None
        elif command.action == "cool":
            self.state, self.output_on = CoolerState.COOLING, True
        return True

    def emergency_stop(self, operator_id: str | None = None) -> bool:
        self.state, self.output_on = CoolerState.ESTOP, False
        return True


class _NoStep:
    pass


@dataclass(frozen=True)
class _NoLimits:
    pass


class Cooler(Modality):
    """A modality with no console hook at all."""

    name: ClassVar[str] = NAME
    title: ClassVar[str] = "contact cooler"
    default_driver: ClassVar[str] = "none"
    order: ClassVar[int] = 90
    step_type: ClassVar[type] = _NoStep

    def limits(self) -> _NoLimits:
        return _NoLimits()


class KeyedCooler(Cooler):
    console_actions: ClassVar[tuple[tuple[str, str, str], ...]] = (("g", "cool", "Cool (G)"),)


@pytest.fixture
def register(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Add a modality to the registry for one test (and a cooler to every station
    the console builds); the registry is as it was afterwards."""
    registry = _registry()
    before = dict(registry)
    coolers: list[FakeCooler] = []
    import devicectl.console.backend as backend_module

    build = backend_module.build_station

    def build_with_cooler(*args: Any, **kwargs: Any) -> Any:
        station, technician = build(*args, **kwargs)
        cooler = FakeCooler()
        station.loop.add(cooler)
        coolers.append(cooler)
        return station, technician

    monkeypatch.setattr(backend_module, "build_station", build_with_cooler)

    def add(mod: Modality) -> list[FakeCooler]:
        registry[mod.name] = mod
        return coolers

    yield add
    registry.clear()
    registry.update(before)
    assert NAME not in modalities()


def _drive(app: ConsoleApp, until: Any, max_s: float = 60.0) -> None:
    assert app.backend.station.loop.run(until=until, max_duration_s=max_s), "condition not met"


async def _show(pilot: Pilot[Any], app: ConsoleApp) -> None:
    app.refresh_from_loop()
    loop = app.backend.station.loop
    loop.run(max_duration_s=loop.period_s)
    app.refresh_from_loop()
    await pilot.pause()


def _panel_text(app: ConsoleApp, name: str) -> str:
    main = app.screen
    assert isinstance(main, MainScreen)
    index = list(app.backend.modalities).index(name)
    panel = main.query_one(f"#device-{index}", TextPanel)
    assert panel.region.height > 0, "the panel is on the screen"
    return str(getattr(panel.render(), "plain", panel.render()))


def test_a_modality_without_console_hooks_shows_a_generic_panel(register: Any) -> None:
    coolers = register(Cooler())
    app = make_app(start_loop=False)
    cooler = coolers[0]
    assert list(app.backend.devices)[-1] == NAME  # registry order: after the built-ins

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await press(pilot, *"tech-042", "enter")
            desk = app.backend.desk
            _drive(app, lambda: desk.runner is not None and desk.runner.awaiting == "confirm")
            await _show(pilot, app)
            snap = app.snapshot
            assert snap is not None
            assert [name for name, _ in snap.devices][-1] == NAME
            text = _panel_text(app, NAME)
            assert text.startswith("COOLER  ") and " IDLE " in text and "output off" in text

            cooler.state, cooler.output_on = CoolerState.COOLING, None
            await _show(pilot, app)
            text = _panel_text(app, NAME)
            assert " COOLING " in text and "NO READING" in text

            cooler.state, cooler.output_on = CoolerState.FAULT, False
            cooler.fault_alarm = Alarm(
                NAME, "cooler.plate", AlarmPriority.HIGH, "plate too cold", latches=True
            )
            await _show(pilot, app)
            assert " FAULT " in _panel_text(app, NAME)
            assert _panel_text(app, NAME).endswith("\nplate too cold")
            assert app.snapshot is not None and app.snapshot.device_states()[NAME] == "fault"

            await press(pilot, "escape")  # the E-stop reaches it like every device
            _drive(app, lambda: cooler.state is CoolerState.ESTOP)
            await _show(pilot, app)
            text = _panel_text(app, NAME)
            assert " ESTOP " in text and "output off" in text

    asyncio.run(scenario())
    assert [c.action for c in cooler.commands] == ["estop"]


def test_a_modality_declares_its_own_console_key(register: Any) -> None:
    coolers = register(KeyedCooler())
    app = make_app(start_loop=False)
    cooler = coolers[0]

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await press(pilot, *"tech-042", "enter")
            desk = app.backend.desk
            _drive(app, lambda: desk.runner is not None and desk.runner.awaiting == "confirm")
            await press(pilot, "g")
            _drive(app, lambda: cooler.state is CoolerState.COOLING)
            await _show(pilot, app)
            assert "OUTPUT ON" in _panel_text(app, NAME)
            buttons = [str(b.label) for b in app.screen.query("#actions Button")]
            assert buttons.index("Cool (G)") == buttons.index("Flash (F)") + 1

    asyncio.run(scenario())
    assert [(c.device, c.action, c.operator_id) for c in cooler.commands] == [
        (NAME, "cool", "tech-042")
    ]


def test_a_device_key_taken_by_another_key_is_refused() -> None:
    class Clashing(Cooler):
        console_actions: ClassVar[tuple[tuple[str, str, str], ...]] = (("s", "cool", "Cool (S)"),)

    with pytest.raises(ConfigError, match=r"'s'.*taken by the console's start"):
        key_actions({NAME: Clashing()})
    with pytest.raises(ConfigError, match="not one lower-case letter"):
        key_actions({NAME: type("Upper", (Cooler,), {"console_actions": (("G", "a", "A"),)})()})


def test_the_generic_view_and_panel_need_nothing_of_the_controller() -> None:
    class Bare:
        name = NAME

    mod = Cooler()
    view = mod.console_view(Bare(), None)
    assert view == mod.console_view(Bare(), None)  # equal views: no redraw
    text = device_renderer(NAME, mod)(view)
    assert "COOLER" in str(text) and "NO READING" in str(text)
    assert "not used by this protocol" in str(device_renderer(NAME, mod)(None))
    assert take_snapshot(0.0, 0, {NAME: Bare()}, None).devices == ()  # not registered


def test_the_console_names_no_modality() -> None:
    """No module of the console names a built-in modality or imports its controller."""
    import re
    from pathlib import Path

    import devicectl.console

    root = Path(devicectl.console.__file__).parent
    names = "|".join(sorted(modalities()))
    pattern = re.compile(
        rf"""(["'])({names})\1|(RF|IPL|LED)(Controller|Status|View)|control\.(rf|ipl|led)_"""
    )
    offenders = [
        f"{path.name}:{n}: {line.strip()}"
        for path in sorted(root.glob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not offenders, offenders
