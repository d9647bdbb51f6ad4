"""Every alarm code the controller can raise has its own section in docs/safety.md.

Alarms carry a ``doc`` link to ``docs/safety.md#<code with . as ->``; a code
without that anchor sends the technician and the QA engineer to nowhere. The
codes are collected from the source: string literals ``"rf.x"``/``"ipl.x"``/
``"led.x"``/``"records.x"``/``"console.x"``/``"session.x"``/``"loop.x"``,
``_host_fault("x")`` (prefixed with the modality of the controller module, or
every modality in ``base.py``), and the f-string codes built from
``{self.modality}`` in ``base.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

from devicectl.modality import modalities

ROOT = Path(__file__).resolve().parents[1]
CONTROL = ROOT / "devicectl" / "control"
PACKAGES = ROOT / "devicectl" / "modalities"
MODALITIES = tuple(name for name in modalities() if (PACKAGES / name).is_dir())
SHARED = ("base.py", "lifecycle.py")  # code every controller runs, for every modality
NOT_ALARMS = {"records.sqlite"}  # a file name, not a code


def module_modalities(path: Path) -> tuple[str, ...]:
    """The modalities whose codes a module's ``_host_fault``/``self.modality`` build."""
    if path.parent == CONTROL and path.name in SHARED:
        return MODALITIES
    if path.parent.parent == PACKAGES and path.parent.name in MODALITIES:
        return (path.parent.name,)
    return ()


def raised_codes() -> set[str]:
    codes: set[str] = set()
    for path in (ROOT / "devicectl").rglob("*.py"):
        text = path.read_text()
        prefixes = "|".join((*MODALITIES, "records", "console", "session", "loop"))
        codes |= set(re.findall(rf'"((?:{prefixes})\.[a-z_]+)"', text))
        modalities = module_modalities(path)
        for condition in re.findall(r'_host_fault\(\s*"([a-z_]+)"', text):
            codes |= {f"{m}.{condition}" for m in modalities}
        for condition in re.findall(r'f"\{self\.modality\}\.([a-z_]+)"', text):
            codes |= {f"{m}.{condition}" for m in modalities}
    return codes - NOT_ALARMS


def test_the_scan_finds_the_codes_it_should() -> None:
    codes = raised_codes()
    # One of each way a code is written, so a broken scan cannot pass quietly.
    assert {"rf.runaway", "ipl.block_stuck", "led.stale", "records.lagging"} <= codes
    assert {"rf.contact_timeout", "ipl.flash_unconfirmed", "led.interlock_timeout"} <= codes
    assert {"rf.estop", "ipl.connect", "led.safe_state_unconfirmed"} <= codes
    assert {f"{m}.energy_while_latched" for m in MODALITIES} <= codes
    assert {"console.estop", "ipl.charge_dumped", "led.sensor_fall"} <= codes


def test_every_alarm_code_has_a_section_in_the_safety_case() -> None:
    doc = (ROOT / "docs" / "safety.md").read_text()
    anchors = set(re.findall(r'<a id="([a-z_-]+)"></a>', doc))
    missing = sorted(c for c in raised_codes() if c.replace(".", "-") not in anchors)
    assert not missing, f"docs/safety.md has no section for: {', '.join(missing)}"
