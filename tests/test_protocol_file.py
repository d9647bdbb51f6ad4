"""Session protocol files: the shipped protocols, the documented example, and the
exact problem line for each way a file can be wrong (built from the valid
pore-patrol.toml text, one edit per case)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from devicectl.errors import ProtocolFileError, ValidationError
from devicectl.modalities.ipl.limits import IPLPass
from devicectl.modalities.led.limits import LEDStep
from devicectl.modalities.rf.limits import FACE_ZONES, RFLimits, RFZone
from devicectl.session import (
    IPLStep,
    LEDExposureStep,
    ManualStep,
    RFStep,
    SessionLimits,
    SessionProtocol,
    load_protocol,
    loads_protocol,
    planned_s,
    protocol_problems,
    total_planned_s,
    validate_protocol,
)

ROOT = Path(__file__).resolve().parent.parent
PROTOCOLS = ROOT / "protocols"
PORE = PROTOCOLS / "pore-patrol.toml"
DOC = ROOT / "docs" / "protocols" / "session-files.md"
PORE_TEXT = PORE.read_text(encoding="utf-8")
F = "pore-patrol.toml"


def problems_of(tmp_path: Path, text: str, name: str = F, **kw: object) -> list[str]:
    """The problem lines for ``text`` written as ``name`` (fails if the file loads)."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProtocolFileError) as caught:
        load_protocol(path, **kw)  # type: ignore[arg-type]
    assert caught.value.path == path
    return caught.value.problems


def edit(old: str, new: str, text: str = PORE_TEXT) -> str:
    """``text`` with the one occurrence of ``old`` replaced (the edit must apply)."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


# --------------------------------------------------------------------------- shipped files


def test_pore_patrol_is_the_session_the_issue_describes() -> None:
    p = load_protocol(PORE)
    assert p.path == PORE and p.name == "Pore Patrol" and p.version == "1.0"
    assert [s.kind for s in p.steps] == ["manual", "manual", "rf", "ipl", "manual", "led", "manual"]
    mask, micro, rf, ipl, hydrating, led, injections = p.steps
    assert isinstance(mask, ManualStep) and "salicylic" in mask.title.lower()
    assert isinstance(micro, ManualStep) and "microdermabrasion" in micro.title.lower()
    assert isinstance(hydrating, ManualStep) and "hydrating" in hydrating.title.lower()
    assert isinstance(injections, ManualStep) and "injection" in injections.title.lower()
    assert all(s.confirm for s in (mask, micro, hydrating, injections))
    assert isinstance(rf, RFStep)
    assert tuple(z.name for z in rf.zones) == FACE_ZONES
    assert tuple(z.name for z in rf.zones) == (
        "forehead",
        "left cheek",
        "right cheek",
        "nose",
        "chin",
    )
    assert all(z.target_c == 42.0 for z in rf.zones)
    assert isinstance(ipl, IPLStep) and ipl.ipl_pass.filter_nm in SessionLimits().ipl.filters_nm
    assert isinstance(led, LEDExposureStep)
    assert led.step == LEDStep(wavelength_nm=633, irradiance_mw_cm2=100.0, duration_s=1200.0)


def test_calm_redness_is_a_gentle_ipl_and_red_then_infrared_led_protocol() -> None:
    p = load_protocol(PROTOCOLS / "calm-redness.toml")
    kinds = [s.kind for s in p.steps]
    assert kinds == ["manual", "manual", "ipl", "manual", "led", "led", "manual"]
    assert "rf" not in kinds
    ipl = p.steps[2]
    pore_ipl = load_protocol(PORE).steps[3]
    assert isinstance(ipl, IPLStep) and isinstance(pore_ipl, IPLStep)
    assert ipl.ipl_pass.filter_nm == 560
    assert ipl.ipl_pass.fluence_j_cm2 < pore_ipl.ipl_pass.fluence_j_cm2
    leds = [s for s in p.steps if isinstance(s, LEDExposureStep)]
    assert [s.step.wavelength_nm for s in leds] == [633, 830]


def test_rf_express_zones_override_the_step_defaults() -> None:
    p = load_protocol(PROTOCOLS / "rf-express.toml")
    rf = p.steps[1]
    assert isinstance(rf, RFStep)
    assert rf.zones == (
        RFZone("forehead", 41.0, 90.0),
        RFZone("left cheek", 42.0, 90.0),
        RFZone("right cheek", 42.0, 90.0),
        RFZone("left jawline", 42.0, 120.0),
        RFZone("right jawline", 42.0, 120.0),
    )
    last = p.steps[-1]
    assert isinstance(last, ManualStep) and last.confirm is False
    led = p.steps[2]
    assert isinstance(led, LEDExposureStep) and led.step.duration_s == 480.0


@pytest.mark.parametrize("path", sorted(PROTOCOLS.glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_protocol_loads_and_passes_the_object_checks(path: Path) -> None:
    protocol = load_protocol(path)
    assert protocol_problems(protocol) == []
    assert protocol.description and total_planned_s(protocol) > 0
    # The objects are the ones the controllers validate on load.
    for step in protocol.steps:
        if isinstance(step, RFStep):
            for zone in step.zones:
                zone.validate(RFLimits())
        elif isinstance(step, IPLStep):
            step.ipl_pass.validate(SessionLimits().ipl)
        elif isinstance(step, LEDExposureStep):
            step.step.validate(SessionLimits().led)


def doc_example() -> str:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## A full example", 1)[1]
    match = re.search(r"```toml\n(.*?)```", section, re.DOTALL)
    assert match
    return match.group(1)


def test_the_documented_full_example_loads(tmp_path: Path) -> None:
    path = tmp_path / "example.toml"
    path.write_text(doc_example(), encoding="utf-8")
    p = load_protocol(path)
    assert [s.kind for s in p.steps] == ["manual", "rf", "ipl", "led"]
    assert p.notes and p.description
    rf = p.steps[1]
    assert isinstance(rf, RFStep)
    assert [(z.name, z.target_c, z.hold_s) for z in rf.zones] == [
        ("forehead", 42.0, 120.0),
        ("left cheek", 42.0, 120.0),
        ("right cheek", 42.0, 120.0),
        ("nose", 42.0, 60.0),
        ("chin", 41.0, 120.0),
    ]
    ipl = p.steps[2]
    assert isinstance(ipl, IPLStep)
    assert ipl.ipl_pass == IPLPass(560, 12.0, 4.0, 40, 2, 20.0)


def test_every_key_the_loader_knows_is_documented() -> None:
    from devicectl.modalities.rf import step as rf_step
    from devicectl.modality import modalities
    from devicectl.session import protocol_file as pf

    text = DOC.read_text(encoding="utf-8")
    keys = {
        *pf._SESSION_KEYS,
        *pf._MANUAL_KEYS,
        *rf_step.ZONE_KEYS,
        *(key for mod in modalities().values() for key in mod.step_keys),
    }
    assert {k for k in keys if f"`{k}`" not in text} == set()


# --------------------------------------------------------------------------- one problem, one line

STEP3 = f"{F}: step 3 (rf)"
STEP4 = f"{F}: step 4 (ipl)"
STEP6 = f"{F}: step 6 (led)"
STEP7 = f"{F}: step 7 (manual)"
SESSION = f"{F}: session"
ZONES = 'zones = ["forehead", "left cheek", "right cheek", "nose", "chin"]'

BROKEN = [
    # values out of limits, via the limits' own problems()
    ("target_c = 42.0", "target_c = 47.0", f"{STEP3}: target_c 47.0 is above the limit 42.0"),
    ("target_c = 42.0", "target_c = 37", f"{STEP3}: target_c 37.0 is below the limit 38.0"),
    ("target_c = 42.0", "target_c = nan", f"{STEP3}: target_c nan is not a number"),
    ("target_c = 42.0", "target_c = inf", f"{STEP3}: target_c inf is not a number"),
    ("hold_s = 120", "hold_s = 300", f"{STEP3}: hold_s 300.0 is above the limit 280.0"),
    ("hold_s = 120", "hold_s = 0", f"{STEP3}: hold_s 0.0 must be a positive number of seconds"),
    (
        ZONES,
        'zones = ["forehead", { name = "left cheek", target_c = 43.5 }, "nose"]',
        f"{STEP3}: zone 2 (left cheek): target_c 43.5 is above the limit 42.0",
    ),
    (
        ZONES,
        'zones = ["forehead", "nose", { name = "chin", hold_s = -5 }]',
        f"{STEP3}: zone 3 (chin): hold_s -5.0 must be a positive number of seconds",
    ),
    (
        "filter_nm = 560",
        "filter_nm = 550",
        f"{STEP4}: filter_nm 550 is not a known filter (515, 560, 590, 640, 695)",
    ),
    (
        "fluence_j_cm2 = 12.0",
        "fluence_j_cm2 = 30",
        f"{STEP4}: fluence_j_cm2 30.0 is above the limit 25.0",
    ),
    (
        "pulse_width_ms = 4.0",
        "pulse_width_ms = 0.5",
        f"{STEP4}: pulse_width_ms 0.5 is below the limit 1.0",
    ),
    ("flashes = 40", "flashes = 501", f"{STEP4}: flashes 501 is above the limit 500"),
    ("flashes = 40", "flashes = 0", f"{STEP4}: flashes 0 is below the limit 1"),
    ("pulse_count = 2", "pulse_count = 9", f"{STEP4}: pulse_count 9 is above the limit 5"),
    ("pulse_count = 2", "pulse_count = 0", f"{STEP4}: pulse_count 0 is below the limit 1"),
    (
        "pulse_delay_ms = 20.0",
        "pulse_delay_ms = 600",
        f"{STEP4}: pulse_delay_ms 600.0 is above the limit 500.0",
    ),
    (
        "pulse_count = 2",
        "pulse_count = 1",
        f"{STEP4}: pulse_delay_ms 20.0 must be 0 for a single pulse",
    ),
    (
        "pulse_delay_ms = 20.0\n",
        "",
        f"{STEP4}: pulse_delay_ms is missing: a train of 2 pulses needs the delay between "
        "them (5.0-500.0 ms)",
    ),
    (
        "wavelength_nm = 633",
        "wavelength_nm = 660",
        f"{STEP6}: wavelength_nm 660 is not available (633, 830)",
    ),
    (
        "irradiance_mw_cm2 = 100.0",
        "irradiance_mw_cm2 = 150",
        f"{STEP6}: irradiance_mw_cm2 150.0 is above the limit 110.0",
    ),
    (
        "irradiance_mw_cm2 = 100.0",
        "irradiance_mw_cm2 = 110",
        f"{STEP6}: dose 132.0 J/cm2 (irradiance x duration) is above the limit 130.0",
    ),
    (
        "duration_min = 20",
        "duration_min = 21",
        f"{STEP6}: duration_min 21.0 = duration_s 1260.0 is above the limit 1200.0",
    ),
    (
        "duration_min = 20",
        "duration_s = 1500",
        f"{STEP6}: duration_s 1500.0 is above the limit 1200.0",
    ),
    # types
    (
        "target_c = 42.0",
        'target_c = "42"',
        f"{STEP3}: target_c must be a number, not the text '42'",
    ),
    ("hold_s = 120", "hold_s = true", f"{STEP3}: hold_s must be a number, not the boolean true"),
    (
        "flashes = 40",
        "flashes = 40.5",
        f"{STEP4}: flashes must be a whole number, not the number 40.5",
    ),
    (
        "filter_nm = 560",
        'filter_nm = "560"',
        f"{STEP4}: filter_nm must be a whole number, not the text '560'",
    ),
    (
        "fluence_j_cm2 = 12.0",
        "fluence_j_cm2 = [12.0]",
        f"{STEP4}: fluence_j_cm2 must be a number, not an array",
    ),
    (
        "duration_min = 20",
        "duration_min = { minutes = 20 }",
        f"{STEP6}: duration_min must be a number, not a table",
    ),
    (
        'title = "Injections"',
        'title = "Injections"\nconfirm = "yes"',
        f"{STEP7}: confirm must be true or false, not the text 'yes'",
    ),
    ('title = "Injections"', "title = 7", f"{STEP7}: title must be text, not the number 7"),
    ('title = "Injections"', 'title = "  "', f"{STEP7}: title is empty"),
    ('version = "1.0"', "version = 1", f"{SESSION}: version must be text, not the number 1"),
    (
        'name = "Pore Patrol"',
        "name = 1979-05-27",
        f"{SESSION}: name must be text, not the date/time 1979-05-27",
    ),
    (
        ZONES,
        'zones = "forehead"',
        f"{STEP3}: zones must be an array (zones = [...] or [[step.zones]]), not the text "
        "'forehead'",
    ),
    (
        ZONES,
        'zones = ["forehead", 3]',
        f"{STEP3}: zone 2 must be a name or a table, not the number 3",
    ),
    # missing keys and empty values
    ('title = "Injections"\n', "", f"{STEP7}: title is missing"),
    ('name = "Pore Patrol"\n', "", f"{SESSION}: name is missing"),
    ('version = "1.0"\n', "", f"{SESSION}: version is missing"),
    ("filter_nm = 560\n", "", f"{STEP4}: filter_nm is missing"),
    ("fluence_j_cm2 = 12.0\n", "", f"{STEP4}: fluence_j_cm2 is missing"),
    ("wavelength_nm = 633\n", "", f"{STEP6}: wavelength_nm is missing"),
    ("duration_min = 20\n", "", f"{STEP6}: duration_s is missing (or give duration_min)"),
    (
        "duration_min = 20",
        "duration_min = 20\nduration_s = 1200",
        f"{STEP6}: duration_s and duration_min: give one of them, not both",
    ),
    (ZONES + "\n", "", f"{STEP3}: zones is missing: list the zones to treat"),
    (ZONES, "zones = []", f"{STEP3}: zones is empty: list at least one zone"),
    (ZONES, 'zones = ["forehead", {}]', f"{STEP3}: zone 2: name is missing"),
    (ZONES, 'zones = ["forehead", " "]', f"{STEP3}: zone 2: name is empty"),
    (
        ZONES,
        'zones = ["forehead", "nose", "Forehead "]',
        f"{STEP3}: zone 3 (Forehead ): name repeats zone 1: each zone is treated once per step",
    ),
    # kinds
    (
        'kind = "ipl"',
        'kind = "laser"',
        f"{F}: step 4: kind 'laser' is not one of manual, rf, ipl, led",
    ),
    ('kind = "ipl"\n', "", f"{F}: step 4: kind is missing (one of manual, rf, ipl, led)"),
    (
        'kind = "ipl"',
        "kind = 2",
        f"{F}: step 4: kind must be text (manual, rf, ipl, led), not the number 2",
    ),
    # unknown keys at every level
    (
        "[session]",
        'author = "x"\n[session]',
        f"{SESSION}: author is not a known key (known keys: session, step)",
    ),
    ("[session]", "[sessions]", None),  # two lines: see test_misspelt_session_table
    (
        'name = "Pore Patrol"',
        'name = "Pore Patrol"\ndescripton = "x"',
        f"{SESSION}: descripton is not a known key (did you mean description?)",
    ),
    (
        "target_c = 42.0",
        "targt_c = 42.0",
        f"{STEP3}: targt_c is not a known key (did you mean target_c?)",
    ),
    (
        "flashes = 40",
        "flashes = 40\nenergy_j = 3",
        f"{STEP4}: energy_j is not a known key (known keys: kind, title, filter_nm, "
        "fluence_j_cm2, pulse_width_ms, flashes, pulse_count, pulse_delay_ms)",
    ),
    (
        ZONES,
        'zones = ["forehead", { name = "nose", hold = 60 }]',
        f"{STEP3}: zone 2 (nose): hold is not a known key (did you mean hold_s?)",
    ),
    (
        'title = "Injections"',
        'title = "Injections"\n"odd key" = 1',
        f"{STEP7}: 'odd key' is not a known key (known keys: kind, title, instructions, confirm)",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [case for case in BROKEN if case[2] is not None],
    ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None,
)
def test_each_problem_is_exactly_one_line(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert problems_of(tmp_path, edit(old, new)) == [expected]


def test_misspelt_session_table(tmp_path: Path) -> None:
    assert problems_of(tmp_path, edit("[session]", "[sessions]")) == [
        f"{SESSION}: sessions is not a known key (did you mean session?)",
        f"{SESSION}: the [session] table is missing (name, version)",
    ]


def test_a_misspelt_required_key_is_unknown_and_missing(tmp_path: Path) -> None:
    assert problems_of(tmp_path, edit("duration_min = 20", "duration_mins = 20")) == [
        f"{STEP6}: duration_mins is not a known key (did you mean duration_min?)",
        f"{STEP6}: duration_s is missing (or give duration_min)",
    ]


def test_several_problems_in_one_file_are_all_reported_in_file_order(tmp_path: Path) -> None:
    text = PORE_TEXT
    text = edit('version = "1.0"', "version = 2", text)
    text = edit("target_c = 42.0", "target_c = 47.0\ncolour = 1", text)
    text = edit(ZONES, 'zones = ["forehead", { name = "nose", hold_s = 900 }]', text)
    text = edit("fluence_j_cm2 = 12.0", 'fluence_j_cm2 = "high"', text)
    text = edit("pulse_width_ms = 4.0", "pulse_width_ms = 200", text)
    text = edit("wavelength_nm = 633", "wavelength_nm = 590", text)
    text = edit("duration_min = 20", "duration_min = 30", text)
    text = edit('title = "Injections"', 'title = ""', text)
    assert problems_of(tmp_path, text) == [
        f"{SESSION}: version must be text, not the number 2",
        f"{STEP3}: colour is not a known key (known keys: kind, title, target_c, hold_s, zones)",
        f"{STEP3}: zone 2 (nose): hold_s 900.0 is above the limit 280.0",
        f"{STEP3}: target_c 47.0 is above the limit 42.0",
        f"{STEP4}: fluence_j_cm2 must be a number, not the text 'high'",
        f"{STEP4}: pulse_width_ms 200.0 is above the limit 100.0",
        f"{STEP6}: wavelength_nm 590 is not available (633, 830)",
        f"{STEP6}: duration_min 30.0 = duration_s 1800.0 is above the limit 1200.0",
        f"{STEP7}: title is empty",
    ]


def test_a_step_default_used_by_every_zone_is_reported_once(tmp_path: Path) -> None:
    lines = problems_of(tmp_path, edit("hold_s = 120", "hold_s = 400"))
    assert lines == [f"{STEP3}: hold_s 400.0 is above the limit 280.0"]


def test_a_bad_step_default_is_reported_even_when_every_zone_overrides_it(
    tmp_path: Path,
) -> None:
    text = edit(ZONES, 'zones = [{ name = "nose", target_c = 40 }]')
    text = edit("target_c = 42.0", "target_c = 50.0", text)
    assert problems_of(tmp_path, text) == [f"{STEP3}: target_c 50.0 is above the limit 42.0"]


def test_a_zone_override_within_limits_is_not_blamed_for_the_step_default(
    tmp_path: Path,
) -> None:
    text = edit(ZONES, 'zones = [{ name = "nose", target_c = 40 }, "chin"]')
    text = edit("target_c = 42.0", "target_c = 43.0", text)
    assert problems_of(tmp_path, text) == [f"{STEP3}: target_c 43.0 is above the limit 42.0"]


def test_a_bad_pulse_count_does_not_also_blame_the_delay(tmp_path: Path) -> None:
    text = edit("pulse_count = 2", 'pulse_count = "two"')
    assert problems_of(tmp_path, text) == [
        f"{STEP4}: pulse_count must be a whole number, not the text 'two'"
    ]


def test_a_bad_irradiance_does_not_also_report_a_dose(tmp_path: Path) -> None:
    text = edit("irradiance_mw_cm2 = 100.0", "irradiance_mw_cm2 = 200.0")
    assert problems_of(tmp_path, text) == [
        f"{STEP6}: irradiance_mw_cm2 200.0 is above the limit 110.0"
    ]


def test_an_unknown_kind_skips_the_rest_of_that_step_but_not_the_others(tmp_path: Path) -> None:
    text = edit('kind = "ipl"', 'kind = "laser"')
    text = edit("target_c = 42.0", "target_c = 47.0", text)
    assert problems_of(tmp_path, text) == [
        f"{STEP3}: target_c 47.0 is above the limit 42.0",
        f"{F}: step 4: kind 'laser' is not one of manual, rf, ipl, led",
    ]


# --------------------------------------------------------------------------- document shape


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ["session: the [session] table is missing (name, version)",
              "session: no steps: a protocol needs at least one [[step]]"]),
        ('[session]\nname = "x"\nversion = "1"\n',
         ["session: no steps: a protocol needs at least one [[step]]"]),
        ('step = []\n[session]\nname = "x"\nversion = "1"\n',
         ["session: no steps: a protocol needs at least one [[step]]"]),
        ('session = "x"\n[[step]]\nkind = "manual"\ntitle = "t"\ninstructions = "i"\n',
         ["session: session must be a table ([session]), not the text 'x'"]),
        ('[session]\nname = "x"\nversion = "1"\n[step]\nkind = "manual"\n',
         ["session: step must be an array of tables ([[step]]), not a table"]),
        ('step = [1, "two"]\n[session]\nname = "x"\nversion = "1"\n',
         ["step 1: must be a table ([[step]]), not the number 1",
          "step 2: must be a table ([[step]]), not the text 'two'"]),
        ('[session]\nname = "x"\nversion = "1"\n[[step]]\n[[step]]\nkind = "rf"\n',
         ["step 1: kind is missing (one of manual, rf, ipl, led)",
          "step 2 (rf): zones is missing: list the zones to treat"]),
    ],
)  # fmt: skip
def test_document_shape_problems(tmp_path: Path, text: str, expected: list[str]) -> None:
    assert problems_of(tmp_path, text, name="s.toml") == [f"s.toml: {e}" for e in expected]


def test_a_zone_name_repeated_in_another_unicode_form_is_a_repeat(tmp_path: Path) -> None:
    """'Joue \u00e9' typed here and 'Joue e\u0301' pasted from a macOS document look the
    same to the technician; they used to count as two zones, treating one twice
    (twice the dose, which the one-zone-per-step rule exists to prevent)."""
    text = edit(ZONES, 'zones = ["front", "joue \u00e9", "Joue e\u0301"]')
    [problem] = problems_of(tmp_path, text)
    assert problem.startswith(f"{STEP3}: zone 3 (")
    assert problem.endswith("name repeats zone 2: each zone is treated once per step")


def test_zones_as_an_array_of_tables(tmp_path: Path) -> None:
    text = edit(
        ZONES + "\n",
        '\n[[step.zones]]\nname = "forehead"\n\n[[step.zones]]\nname = "nose"\nhold_s = 30\n',
    )
    path = tmp_path / F
    path.write_text(text, encoding="utf-8")
    rf = load_protocol(path).steps[2]
    assert isinstance(rf, RFStep)
    assert rf.zones == (RFZone("forehead", 42.0, 120.0), RFZone("nose", 42.0, 30.0))


def test_defaults(tmp_path: Path) -> None:
    text = (
        '[session]\nname = "n"\nversion = "v"\n'
        '[[step]]\nkind = "manual"\ntitle = "t"\ninstructions = "i"\n'
        '[[step]]\nkind = "rf"\nzones = ["chin"]\n'
        '[[step]]\nkind = "ipl"\nfilter_nm = 590\nfluence_j_cm2 = 10\npulse_width_ms = 5\n'
        '[[step]]\nkind = "led"\nwavelength_nm = 830.0\nirradiance_mw_cm2 = 50\nduration_s = 60\n'
    )
    p = loads_protocol(text, "d.toml")
    assert p == SessionProtocol(
        Path("d.toml"),
        "n",
        "v",
        "",
        (
            ManualStep("t", "i", True),
            RFStep("RF", (RFZone("chin", 42.0, 180.0),)),
            IPLStep("IPL", IPLPass(590, 10.0, 5.0, 1, 1, 0.0)),
            LEDExposureStep("LED", LEDStep(830, 50.0, 60.0)),
        ),
        "",
    )
    led = p.steps[3]
    assert isinstance(led, LEDExposureStep) and type(led.step.wavelength_nm) is int


# --------------------------------------------------------------------------- unreadable files


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ProtocolFileError) as caught:
        load_protocol(path)
    assert caught.value.problems == [f"nope.toml: file not found ({path})"]


def test_directory(tmp_path: Path) -> None:
    path = tmp_path / "dir.toml"
    path.mkdir()
    with pytest.raises(ProtocolFileError) as caught:
        load_protocol(path)
    assert caught.value.problems == [f"dir.toml: is a directory, not a protocol file ({path})"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.toml"
    path.write_text(PORE_TEXT, encoding="utf-8")
    path.chmod(0)
    try:
        with pytest.raises(ProtocolFileError) as caught:
            load_protocol(path)
    finally:
        path.chmod(0o600)
    assert caught.value.problems == [f"secret.toml: permission denied reading {path}"]


# tomllib's own wording may change between Python versions; the position and the
# form of the line are ours.


def test_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    text = edit("target_c = 42.0", "target_c = 42.0 degC")
    line = text[: text.index("degC")].count("\n") + 1
    [problem] = problems_of(tmp_path, text)
    assert problem.startswith(f"{F}: line {line}, column 17: TOML syntax error: ")
    assert problem.endswith("Expected newline or end of document after a statement")


@pytest.mark.parametrize(
    ("text", "position", "what"),
    [
        ('[session]\nname = "x', "at end of file", "Unterminated string"),
        ("a = 1\na = 2\n", "line 2, column 6", "overwrite"),
        ("[[step]]\nkind = 1\n[step]\n", "line 3, column 6", "twice"),
        ("d = 2023-02-30\n", "line 1, column 5", "date"),
        ("a = " + "[" * 5000 + "]" * 5000 + "\n", "", ""),
    ],
)
def test_syntax_errors_are_one_line(tmp_path: Path, text: str, position: str, what: str) -> None:
    [problem] = problems_of(tmp_path, text, name="s.toml")
    assert problem.startswith(
        f"s.toml: {position}: TOML syntax error: " if position else "s.toml: "
    )
    assert what in problem and "\n" not in problem


HUGE = "1" + "0" * 400  # a TOML integer no float holds (tomllib reads any length)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("target_c = 42.0", f"target_c = {HUGE}", f"{STEP3}: target_c"),
        (ZONES, f'zones = ["forehead", {{ name = "nose", hold_s = -{HUGE} }}]', f"{STEP3}: zone 2"),
        ("flashes = 40", f"flashes = {HUGE}", f"{STEP4}: flashes"),
        ("pulse_count = 2", f"pulse_count = {HUGE}", f"{STEP4}: pulse_count"),
        ("duration_min = 20", f"duration_min = {HUGE}", f"{STEP6}: duration_min"),
    ],
    ids=["number", "zone", "whole", "pulse_count", "led"],
)
def test_a_huge_integer_is_one_line_not_a_crash(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    """tomllib reads integers of any length; one beyond 64 bits (the TOML limit) used
    to leave the loader as an OverflowError traceback instead of a problem line."""
    [problem] = problems_of(tmp_path, edit(old, new))
    assert problem.startswith(expected)
    assert "too large" in problem and "64-bit" in problem and len(problem) < 200


def test_an_integer_too_long_for_python_to_read_is_one_line(tmp_path: Path) -> None:
    """Past 4300 digits tomllib raises a plain ValueError (Python's int-string limit),
    not a TOMLDecodeError: it used to escape the loader as a traceback."""
    [problem] = problems_of(tmp_path, edit("flashes = 40", "flashes = 1" + "0" * 5000))
    assert problem.startswith(f"{F}: ") and "TOML" in problem
    assert "\n" not in problem and len(problem) < 200


def test_an_led_dose_over_the_limit_only_by_the_setpoint_rounding_is_refused(
    tmp_path: Path,
) -> None:
    """109.89 mW/cm2 for 1183 s is 129.996 J/cm2 as written, but the canopy holds its
    setpoint in 0.1 mW/cm2 steps: 109.9 for 1183 s is 130.012 J/cm2, over the limit."""
    text = edit("irradiance_mw_cm2 = 100.0", "irradiance_mw_cm2 = 109.89")
    text = text.replace("duration_min = 20", "duration_s = 1183")
    [problem] = problems_of(tmp_path, text)
    assert problem == (
        f"{STEP6}: dose 130.012 J/cm2 (irradiance x duration) is above the limit 130.0"
    )


def test_a_huge_number_is_shown_short_in_its_problem_line(tmp_path: Path) -> None:
    """1e300 is a whole number of flashes to Python; its problem line used to print
    all 301 digits of it."""
    [problem] = problems_of(tmp_path, edit("flashes = 40", "flashes = 1e300"))
    assert problem == f"{STEP4}: flashes 1e+300 is above the limit 500"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[session]\nname = "Caf\xe9"\n')
    with pytest.raises(ProtocolFileError) as caught:
        load_protocol(path)
    assert caught.value.problems == [
        "latin1.toml: line 2: not UTF-8 text (byte 0xe9); save it as UTF-8"
    ]


def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / F
    path.write_bytes(b"\xef\xbb\xbf" + PORE_TEXT.encode())
    assert load_protocol(path).name == "Pore Patrol"


def test_error_type_and_text(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        load_protocol(tmp_path / "x.toml")
    assert isinstance(caught.value, ProtocolFileError)
    assert str(caught.value) == caught.value.problems[0]


# --------------------------------------------------------------------------- limits and API


def test_the_limits_passed_in_are_the_ones_checked(tmp_path: Path) -> None:
    cool = SessionLimits(rf=RFLimits(target_max_c=40.0))
    assert problems_of(tmp_path, PORE_TEXT, limits=cool) == [
        f"{STEP3}: target_c 42.0 is above the limit 40.0"
    ]


def test_protocol_problems_for_a_protocol_built_in_python() -> None:
    p = SessionProtocol(
        Path("api.toml"),
        "n",
        " ",
        "",
        (
            ManualStep("", "do it"),
            RFStep("RF", (RFZone("nose", 45.0, 60.0), RFZone("chin", 40.0, 0.0))),
            IPLStep("IPL", IPLPass(560, 30.0, 5.0)),
            LEDExposureStep("LED", LEDStep(633, 110.0, 1200.0)),
        ),
    )
    expected = [
        "api.toml: session: version is empty",
        "api.toml: step 1 (manual): title is empty",
        "api.toml: step 2 (rf): zone 1 (nose): target_c 45.0 is above the limit 42.0",
        "api.toml: step 2 (rf): zone 2 (chin): hold_s 0.0 must be a positive number of seconds",
        "api.toml: step 3 (ipl): fluence_j_cm2 30.0 is above the limit 25.0",
        "api.toml: step 4 (led): dose 132.0 J/cm2 (irradiance x duration) is above the limit 130.0",
    ]
    assert protocol_problems(p) == expected
    with pytest.raises(ProtocolFileError) as caught:
        validate_protocol(p)
    assert caught.value.problems == expected and caught.value.path == Path("api.toml")
    empty = SessionProtocol(Path("e.toml"), "n", "1", "", ())
    assert protocol_problems(empty) == ["e.toml: session: no steps"]


def test_planned_durations() -> None:
    p = load_protocol(PORE)
    mask, _, rf, ipl, _, led, _ = p.steps
    assert planned_s(mask) == 0.0
    # five zones: ramp 33 -> 42 degC at 0.4 degC/s (22.5 s) plus the 120 s hold
    assert planned_s(rf) == pytest.approx(5 * (22.5 + 120.0))
    # 40 flashes, each charging 0.4 + 1.6 x 12 / 25 = 1.168 s (longer than the 1 s interval)
    assert planned_s(ipl) == pytest.approx(40 * 1.168)
    assert planned_s(led) == 1200.0
    assert total_planned_s(p) == pytest.approx(5 * 142.5 + 40 * 1.168 + 1200.0)
    low = IPLStep("IPL", IPLPass(560, 5.0, 5.0, flashes=10))
    assert planned_s(low) == pytest.approx(10 * 1.0)  # the 1 s minimum interval wins
