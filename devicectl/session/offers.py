"""What the operator can do now: the actions the runner and the devices would accept.

A console must never leave the operator at a dead end: whatever the session's
state, it shows the keys that would be taken at that moment. Those keys come
from here, read on the loop thread from the runner and the controllers with the
same rules their ``handle`` applies, so what is offered is what would be
accepted (the controller's own guards still decide when the key arrives):

- a session action (``confirm``, ``pause``, ``resume``, ``end`` ...) by the
  runner's state: the prompt's answer while it waits, ``resume`` while it is
  paused, while it is faulted with no device latched, or while it runs with a
  device that paused itself (contact lost, a charge dumped unused);
- ``acknowledge`` while a device is latched;
- a device's own console action (``ipl.fire``) when its state machine has that
  trigger now and no session hold refuses it.

Also here: the devices found paused (the runner's resume resumes them through
their own guards) and what will be delivered at the next key that puts energy
on (the modalities' ``energy_summary``), which a console shows with the prompt
that arms or starts a device and asks to confirm before a resume.
"""

from __future__ import annotations

from typing import Any

from devicectl.modality import modalities

# The session's own actions, in the order a console lists them.
SESSION_ORDER = ("confirm", "arm", "start", "next_zone", "resume", "pause", "end", "abort")


def paused_devices(devices: dict[str, Any]) -> list[str]:
    """The devices whose machine can ``resume`` now (paused, whoever paused them)."""
    return [
        name
        for name, controller in devices.items()
        if not controller.latched and "resume" in controller.machine.get_triggers(controller.state)
    ]


def latched_devices(devices: dict[str, Any]) -> list[str]:
    return [name for name, controller in devices.items() if controller.latched]


def session_offers(runner: Any, devices: dict[str, Any]) -> list[str]:
    """The session actions ``runner.handle`` would take now (its rules, read-only)."""
    state = runner.state.value
    offered: list[str] = []
    if state == "waiting_confirm" and runner.awaiting:
        offered.append(runner.awaiting)
    if state in ("running", "waiting_confirm"):
        if paused_devices(devices):
            offered.append("resume")
        offered.append("pause")
    elif state == "paused":
        offered.append("resume")
    elif state == "faulted":
        if not latched_devices(devices):
            offered.append("resume")
        offered.append("end")
    if state not in ("complete", "aborted", "ended"):
        offered.append("abort")
    return sorted(offered, key=SESSION_ORDER.index)


def device_offers(devices: dict[str, Any]) -> list[str]:
    """``device.action`` of each device's console actions its controller would take now."""
    offered = []
    registry = modalities()
    for name, controller in devices.items():
        mod = registry.get(getattr(controller, "modality", name))
        if mod is None or controller.latched:
            continue
        triggers = controller.machine.get_triggers(controller.state)
        for _key, action, _label in mod.console_actions:
            held = action in controller.ENERGY_ACTIONS and controller.session_hold is not None
            if action in triggers and not held:
                offered.append(f"{name}.{action}")
    return offered


def offers(runner: Any, devices: dict[str, Any]) -> tuple[str, ...]:
    """Every action a console may offer now: the session's, ``acknowledge`` while a
    device is latched, and the devices' own (``ipl.fire``)."""
    found = session_offers(runner, devices)
    if runner.state.value not in ("complete", "aborted", "ended"):
        found += device_offers(devices)
    if latched_devices(devices):
        found.insert(0, "acknowledge")  # the first thing to do about a latched fault
    return tuple(found)


def energy_summary(runner: Any, devices: dict[str, Any]) -> str | None:
    """What goes on at the next key, one line a device (its modality's
    ``energy_summary``): the paused devices' if a resume would resume some, else the
    current step's device while a prompt waits; None otherwise (nothing to confirm,
    and nothing that changes every tick while energy is delivered)."""
    names = paused_devices(devices)
    if not names and runner.awaiting is not None and runner.current < len(runner.steps):
        names = [runner.steps[runner.current].kind]
    registry = modalities()
    lines = []
    for name in names:
        controller = devices.get(name)
        mod = registry.get(getattr(controller, "modality", name))
        summary = mod.energy_summary(controller) if mod is not None else None
        if summary:
            lines.append(summary)
    return "\n".join(lines) or None
