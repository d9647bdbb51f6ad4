"""What a treatment modality is to the rest of devicectl, and the registry of them.

A modality (RF, IPL, LED, a third party's cryo handpiece) is a package that
registers one :class:`Modality` under the ``devicectl.modalities`` entry-point
group, exactly as drivers register under ``devicectl.drivers``. Everything that
differs between modalities lives behind this class: the controller and its
limits, the protocol-file step kind and its validation, the runner's plan for a
step, the console's panel, the trace channels and the report's section.

The station, the runner, the protocol-file reader, the console, the CLI, the
report, the diagram and the pytest plugin iterate :func:`modalities` and never
name a modality. Guarantees:

- :func:`modalities` loads every registered modality once per process, in
  ``order`` then name order; a package that fails to load is a
  :class:`ConfigError` naming it.
- :func:`modality` of an unknown name is a ConfigError listing what is installed.
- The step kind of a protocol file is the modality's ``name``; "manual" is the
  session's own step and cannot be registered.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Mapping
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from devicectl.errors import ConfigError

if TYPE_CHECKING:
    from transitions import Machine

    from devicectl.clock import Clock
    from devicectl.control.events import Event
    from devicectl.records.models import EventRecord, TracePoint
    from devicectl.step_table import StepTable

MODALITY_GROUP = "devicectl.modalities"
RESERVED_KINDS = frozenset({"manual", "session", "loop", "console"})

Wait = Callable[[], bool]
Plan = Generator[Wait, None, None]


class PlanRun(Protocol):
    """What a modality's plan may ask of the session runner (see ``runner.py``)."""

    auto_confirm: bool
    simulated: bool
    operator_gates: bool
    author: str

    def device(self, kind: str) -> Any: ...

    def do(self, kind: str, action: str, operator_id: str | None = None, **args: Any) -> Any: ...

    def gate(self, progress: Any, action: str, prompt: str) -> Iterator[Wait]: ...

    def gated_by(self) -> str | None: ...

    def wait_confirmation(
        self, progress: Any, prompt: str, action: str = "confirm"
    ) -> Iterator[Wait]: ...

    def confirmed_by(self) -> str | None: ...

    def move_to_next_site(self, kind: str) -> Iterator[Wait]: ...

    def results_start(self, progress: Any, kind: str, results: list[Any]) -> int: ...

    def memo(self, progress: Any) -> dict[str, Any]: ...


class Modality:
    """One treatment modality: subclass it, set the class attributes, register it.

    Required: ``name``, ``title``, ``default_driver``, ``step_type`` and the
    methods that raise NotImplementedError. The rest have working defaults.
    """

    name: ClassVar[str]  # device kind and protocol-file step kind ("rf")
    title: ClassVar[str]  # how people call it ("RF handpiece")
    default_driver: ClassVar[str]  # a devicectl.drivers entry point
    simulator: ClassVar[str]  # a devicectl.simulators entry point
    sim_options: ClassVar[str] = ""  # query options of its sim:// URL
    # Where it comes in lists and screens (lower first; then by name): the order a
    # session usually uses the devices in, not a ranking.
    order: ClassVar[int] = 100
    step_type: ClassVar[type]
    step_keys: ClassVar[tuple[str, ...]] = ("kind", "title")
    # An unattended run may not do this modality's steps on real devices (a person
    # must be at the chair: eye protection, every trigger).
    needs_person_on_real_devices: ClassVar[bool] = False

    # -- the device ---------------------------------------------------------------

    # The controller class (a ``ControllerCore`` taking ``opener, clock, name=,
    # limits=, emit=``) and the limit-set class: set them, or override the methods.
    controller_type: ClassVar[type | None] = None
    limits_type: ClassVar[type | None] = None

    def limits(self) -> Any:
        """The default limit set (a frozen dataclass that validates itself)."""
        if self.limits_type is None:
            raise NotImplementedError
        return self.limits_type()

    def controller(
        self,
        opener: Callable[[], Any],
        clock: Clock,
        *,
        name: str,
        limits: Any | None,
        emit: Callable[[Event], None] | None,
    ) -> Any:
        """A controller (``ControllerCore``) for one device of this modality."""
        if self.controller_type is None:
            raise NotImplementedError
        return self.controller_type(opener, clock, name=name, limits=limits, emit=emit)

    def machine(self, model: object, *, graph: bool = False) -> Machine:
        """The controller's state machine from its live table (``devicectl diagram``)."""
        raise NotImplementedError

    # -- protocol files -------------------------------------------------------------

    def read_step(self, t: StepTable, limits: Any, memo: dict[str, Any]) -> Any | None:
        """The step of a ``[[step]]`` table of this kind, or None (problems recorded).

        ``memo`` is this modality's scratch space for the whole document (rules
        that span steps, such as one script for every zone name)."""
        raise NotImplementedError

    def step_problems(self, step: Any, limits: Any, memo: dict[str, Any]) -> list[str]:
        """Every problem of a step built in Python (the file reader's line format)."""
        raise NotImplementedError

    def planned_s(self, step: Any, limits: Any) -> float:
        """A rough duration of the step, for progress display only."""
        return 0.0

    # -- the session -----------------------------------------------------------------

    def plan(self, run: PlanRun, step: Any, progress: Any) -> Plan:
        """The runner's plan for one step: a generator of wait conditions."""
        raise NotImplementedError

    def on_secure(self, run: PlanRun, controller: Any, progress: Any, action: str | None) -> None:
        """Called before the session makes this device safe with ``action``
        ("pause", "abort" or None): account what the interruption cuts short."""

    def progress_line(self, controller: Any, progress: Any) -> tuple[float, str]:
        """(fraction done, one status line) while the step runs."""
        return 0.0, str(controller.state.value)

    def milestone(self, controller: Any, progress: Any) -> str | None:
        """What the step is on now, when it moves on in steps a person follows (the
        zone under the handpiece, flashes so far): a progress line is printed each
        time it changes. None: only the step's start and end are printed."""
        return None

    def summary_line(self, step: Mapping[str, Any]) -> str:
        """The result column of a finished step in the run summary."""
        return ""

    # -- record, report --------------------------------------------------------

    def trace_channels(self, controller: Any, reading: Any) -> list[tuple[str, float | None]]:
        """The traced channels of a reading (None where not measured)."""
        return []

    def report_parts(
        self, points: list[TracePoint], events: list[EventRecord], controller_limits: Any
    ) -> list[str]:
        """The report's HTML parts (plots with their alt text) for this modality."""
        return []

    # -- the technician console -------------------------------------------------------
    # A modality that defines none of these still gets a panel: the generic one
    # (state, the output its device reports, the latched fault), and no keys.

    # The console's keys for this modality's device: (key, action, button label). The
    # key (one lower-case letter the console keeps free: see the console's help)
    # sends ``action``, a command of the controller's ``handle``, to the device with
    # the signed-in operator's id; the controller refuses it where its state does not
    # allow it. The IPL trigger is ``("f", "fire", "Flash (F)")``.
    console_actions: ClassVar[tuple[tuple[str, str, str], ...]] = ()

    def console_view(self, controller: Any, runner: Any) -> Any:
        """What the console shows of ``controller``, copied out of it now.

        Called on the loop thread at the end of a tick (``runner``: the session
        runner, or None before sign-in): read the controller, never command it.
        Return a frozen dataclass with a ``state: str`` field (the controller's
        state value): two views of an unchanged device must compare equal, so the
        panel skips its redraw. Default: the generic view (state, output reported
        by the device, fault)."""
        from devicectl.panel_generic import generic_view

        return generic_view(controller)

    def render_panel(self, view: Any) -> Any:
        """The panel of a view from :meth:`console_view`: a rich renderable (``Text``)
        or a list of lines. Called on the UI thread; a pure function of ``view``.
        Default: the generic panel (the name, state, output badge and fault)."""
        from devicectl.panel_generic import render_generic

        return render_generic(self.name.upper(), view)

    def view_from_status(self, status: Mapping[str, Any]) -> Any:
        """The view :meth:`render_panel` draws, rebuilt from a device of the station
        service's snapshot (``docs/api.md``: its status, ``state``, ``output_on``,
        ``fault``, and ``console``: :meth:`console_view` as plain data). This is how
        a console that is a client of the station draws the same panel. Called on
        the UI thread; returns a frozen dataclass like :meth:`console_view`.
        Default: the generic view from ``state``, ``output_on`` and ``fault``."""
        from devicectl.panel_generic import generic_view_from_status

        return generic_view_from_status(status)

    def energy_summary(self, controller: Any) -> str | None:
        """What ``controller`` will deliver when its energy goes on, as loaded now (the
        zone, the pass, the exposure, and what is left of it), in one line a person
        reads before confirming: the console shows it with the prompt that arms or
        starts the device, and asks for it again before a paused device resumes.
        Read on the loop thread, never a command; None when nothing is loaded (an idle
        device, or one whose plan is complete).
        Default: None (the console then asks without a summary)."""
        return None

    def console_trace(self, controller: Any) -> tuple[str, float | None] | None:
        """The skin temperature the console's live trace may show: (label, degC, None
        when not measured), read on the loop thread; None if this modality has none.
        The trace shows the first modality, in registry order, with readings."""
        return None

    def console_trace_lines(self, view: Any) -> tuple[tuple[str, float], ...]:
        """The levels drawn across this device's trace chart, from its console view
        (:meth:`console_view`, or :meth:`view_from_status` on a station client): (label,
        degC) of its target, alarm and cut-off, say. Called on the UI thread; a pure
        function of ``view``. Default: none."""
        return ()


@cache
def _registry() -> dict[str, Modality]:
    found: dict[str, Modality] = {}
    for ep in sorted(entry_points(group=MODALITY_GROUP), key=lambda e: e.name):
        try:
            cls = ep.load()
        except ImportError as exc:
            raise ConfigError(
                f"modality {ep.name!r} is installed but fails to load: {exc}"
            ) from exc
        mod = cls() if isinstance(cls, type) else cls
        if not isinstance(mod, Modality):
            raise ConfigError(f"modality {ep.name!r} ({ep.value}) is not a devicectl Modality")
        if mod.name != ep.name or mod.name in RESERVED_KINDS:
            raise ConfigError(
                f"modality {ep.value} registers as {ep.name!r} but names itself {mod.name!r}"
                if mod.name != ep.name
                else f"modality name {mod.name!r} is reserved"
            )
        found[mod.name] = mod
    return dict(sorted(found.items(), key=lambda item: (item[1].order, item[0])))


def modalities() -> dict[str, Modality]:
    """Every registered modality by name (a copy: callers may not change the registry)."""
    return dict(_registry())


def modality(name: str) -> Modality:
    """The modality registered as ``name``."""
    found = _registry().get(name)
    if found is None:
        installed = ", ".join(_registry()) or "none"
        raise ConfigError(f"no modality named {name!r} (installed: {installed})")
    return found


def modality_of_step(step: Any) -> Modality | None:
    """The modality whose step type ``step`` is (None for a manual step)."""
    for mod in _registry().values():
        if isinstance(step, mod.step_type):
            return mod
    return None
