"""Drivers and simulators found through entry points, never a hard-coded list.

The built-in RF driver and simulator are registered in ``pyproject.toml``
exactly as a third-party package would register its own, so "pluggable" is
exercised by every run.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from devicectl.errors import ConfigError

DRIVER_GROUP = "devicectl.drivers"
SIMULATOR_GROUP = "devicectl.simulators"


@dataclass(frozen=True)
class PluginInfo:
    group: str
    name: str
    target: str  # "module:attr"
    distribution: str


def _entry_points(group: str) -> list[EntryPoint]:
    return sorted(entry_points(group=group), key=lambda ep: ep.name)


def list_plugins(group: str) -> list[PluginInfo]:
    """Every plugin registered in ``group``, sorted by name."""
    found = []
    for ep in _entry_points(group):
        dist = ep.dist.name if ep.dist is not None else "?"
        found.append(PluginInfo(group=group, name=ep.name, target=ep.value, distribution=dist))
    return found


def load_plugin(group: str, name: str) -> Any:
    """Load the object registered as ``name`` in ``group``.

    Raises :class:`ConfigError` naming what is installed when ``name`` is not.
    """
    for ep in _entry_points(group):
        if ep.name == name:
            try:
                return ep.load()
            except ImportError as exc:
                raise ConfigError(
                    f"{group} plugin {name!r} is installed but fails to load: {exc}"
                ) from exc
    installed = ", ".join(ep.name for ep in _entry_points(group)) or "none"
    raise ConfigError(f"no {group} plugin named {name!r} (installed: {installed})")
