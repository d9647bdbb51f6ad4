"""Zone names identify sites: two names that look the same are one site.

A zone name holds letters of one script (Latin: the alphabet with or without
accents), the digits 0-9, spaces and hyphens; invisible characters, lookalike
letters from another script and punctuation are refused, in a file and in a
protocol built in Python alike, with the file, the step and the field named.
"""

from __future__ import annotations

import os
import subprocess
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devicectl.errors import ProtocolFileError
from devicectl.modalities.rf.limits import RFZone, zone_key, zone_name_problems
from devicectl.session import ManualStep, RFStep, SessionProtocol, load_protocol, validate_protocol

F = "z.toml"
HEAD = '[session]\nname = "Z"\nversion = "1"\n'


def rf_doc(*steps: str) -> str:
    return HEAD + "".join(f'[[step]]\nkind = "rf"\nzones = [{s}]\n' for s in steps)


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / F
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProtocolFileError) as caught:
        load_protocol(path)
    return caught.value.problems


@pytest.mark.parametrize(
    ("zones", "expected"),
    [
        ('"forehead", "fore\\u200bhead"',
         "z.toml: step 1 (rf): zone 2 ('fore\\u200bhead'): name has U+200B ZERO WIDTH SPACE "
         "at position 5, which is invisible or a control character"),
        ('"chin", "\\u0441hin"',
         "z.toml: step 1 (rf): zone 2 ('\\u0441hin'): name mixes scripts (Cyrillic and Latin)"),
        ('"chin", "ch\\u0131n"',
         "z.toml: step 1 (rf): zone 2 ('ch\\u0131n'): name has U+0131 LATIN SMALL LETTER DOTLESS I "
         "at position 3, which is not a letter of the Latin alphabet"),
        ('"nose", "nose\\ufe0f"',
         "z.toml: step 1 (rf): zone 2 ('nose\\ufe0f'): name has U+FE0F VARIATION SELECTOR-16"),
        ('"nose", "nose\\u00ad"',
         "z.toml: step 1 (rf): zone 2 ('nose\\xad'): name has U+00AD SOFT HYPHEN"),
        ('"nose", "nose."',
         "z.toml: step 1 (rf): zone 2 ('nose.'): name has U+002E FULL STOP at position 5, "
         "which is not a letter, a digit 0-9, a space or a hyphen"),
        ('"left cheek", "left  Cheek"',
         "z.toml: step 1 (rf): zone 2 (left  Cheek): name repeats zone 1"),
        ('"chin", "\\uff43\\uff48\\uff49\\uff4e"',
         "z.toml: step 1 (rf): zone 2 (\uff43\uff48\uff49\uff4e): name repeats zone 1"),
    ],
)  # fmt: skip
def test_a_lookalike_zone_name_is_refused_naming_file_step_and_field(
    tmp_path: Path, zones: str, expected: str
) -> None:
    [problem] = problems(tmp_path, rf_doc(zones))
    assert problem.startswith(expected), problem


def test_zone_names_of_a_protocol_share_one_script(tmp_path: Path) -> None:
    """An all-Cyrillic 'chin' (\u0441\u04bb\u0456\u043f) is one script, but next to
    the Latin 'chin' of an earlier step it would look like the same site."""
    [problem] = problems(tmp_path, rf_doc('"chin"', '"\\u0441\\u04bb\\u0456\\u043f"'))
    assert problem.startswith(
        "z.toml: step 2 (rf): zone 1 (\u0441\u04bb\u0456\u043f): name is in Cyrillic script, "
        "zone 'chin' before it in Latin"
    ), problem


def test_every_bad_name_of_a_file_is_reported_with_the_other_problems(tmp_path: Path) -> None:
    text = rf_doc('"fore\\u200bhead", "n\\u043ese"') + "hold_s = -1\n"
    found = problems(tmp_path, text)
    assert [p.split(": ")[1:3] for p in found] == [
        ["step 1 (rf)", "zone 1 ('fore\\u200bhead')"],
        ["step 1 (rf)", "zone 2 ('n\\u043ese')"],
        ["step 1 (rf)", "hold_s -1.0 must be a positive number of seconds"],
    ], found


@pytest.mark.parametrize(
    "names",
    [
        ["forehead", "left cheek", "right-cheek", "zone 2"],
        ["Joue \u00e9", "m\u00e9nton", "Stra\u00dfe", "\u00f8re", "czo\u0142o"],
        ["\u043b\u043e\u0431", "\u0449\u0435\u043a\u0430"],  # Cyrillic
        ["\u984d", "\u304a\u3067\u3053", "\u30db\u30fc\u30eb"],  # Japanese: Han and kana
        ["\u0928\u093e\u0915"],  # Devanagari with its vowel sign
    ],
)
def test_names_of_one_script_load(tmp_path: Path, names: list[str]) -> None:
    path = tmp_path / F
    path.write_text(rf_doc(", ".join(f'"{n}"' for n in names)), encoding="utf-8")
    (step,) = load_protocol(path).steps
    assert isinstance(step, RFStep) and [z.name for z in step.zones] == names


def test_the_accent_typed_two_ways_is_still_one_zone(tmp_path: Path) -> None:
    """NFKC and case: the comparison the reader made before still holds."""
    [problem] = problems(tmp_path, rf_doc('"Joue \\u00e9", "joue e\\u0301"'))
    assert problem.endswith("name repeats zone 1: each zone is treated once per step")


def built(*zone_names: str) -> SessionProtocol:
    return SessionProtocol(
        Path("in-code"),
        "Built",
        "1",
        "",
        (
            ManualStep("Cleanse", "Cleanse the face."),
            RFStep("RF", tuple(RFZone(n, 42.0, 30.0) for n in zone_names)),
        ),
    )


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (("forehead", "fore\u200bhead"),
         "in-code: step 2 (rf): zone 2 ('fore\\u200bhead'): name has U+200B"),
        (("chin", "\u0441hin"), "in-code: step 2 (rf): zone 2 ('\\u0441hin'): name mixes scripts"),
        (("chin", "Chin"), "in-code: step 2 (rf): zone 2 (Chin): name repeats zone 1"),
    ],
)  # fmt: skip
def test_a_protocol_built_in_python_gets_the_same_rule(
    names: tuple[str, ...], expected: str
) -> None:
    with pytest.raises(ProtocolFileError) as caught:
        validate_protocol(built(*names))
    assert any(p.startswith(expected) for p in caught.value.problems), caught.value.problems


# --------------------------------------------------------------------------- properties

LATIN = st.text(
    st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\u00e9\u00e8\u00fc\u00f1"),
    min_size=1,
    max_size=10,
)
INVISIBLE = st.sampled_from(
    "\u200b\u200c\u200d\u2060\ufeff\u00ad\u034f\u180e\u2061\u2062\u2063\u2064\u202e\u3164\ufe0f\t"
)
# Latin letters and the lookalike another script has for each.
LOOKALIKES = {
    "a": "\u0430", "c": "\u0441", "e": "\u0435", "o": "\u043e", "p": "\u0440",
    "x": "\u0445", "y": "\u0443", "i": "\u0456", "o ": "\u03bf ", "n": "\u0578",
}  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(LATIN, INVISIBLE, st.integers(0, 10))
def test_an_invisible_character_anywhere_is_refused(name: str, mark: str, at: int) -> None:
    spoiled = name[:at] + mark + name[at:]
    found = zone_name_problems(spoiled)
    assert found and found[0].startswith("name has U+"), (spoiled, found)
    assert zone_name_problems(name) == []


@settings(max_examples=300, deadline=None)
@given(LATIN, st.sampled_from(sorted(LOOKALIKES)), st.integers(0, 10))
def test_a_lookalike_letter_from_another_script_is_refused(name: str, letter: str, at: int) -> None:
    spoiled = name[:at] + LOOKALIKES[letter] + name[at:]
    assert zone_name_problems(spoiled), spoiled


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(codec="utf-8"), min_size=1, max_size=12))
def test_an_accepted_name_has_nothing_invisible_and_one_key_form(name: str) -> None:
    if zone_name_problems(name):
        return
    assert all(unicodedata.category(c)[0] in "LMN" or c in " -\u00a0" for c in name), ascii(name)
    assert zone_key(name) == zone_key(unicodedata.normalize("NFD", name).upper())


def test_devicectl_run_refuses_a_lookalike_zone_with_exit_2_and_records_nothing(
    tmp_path: Path,
) -> None:
    """Through the installed script, as a technician runs it."""
    from tests.served_process import devicectl_script

    path = tmp_path / F
    path.write_text(
        HEAD
        + '[[step]]\nkind = "manual"\ntitle = "Cleanse"\ninstructions = "Cleanse."\n'
        + '[[step]]\nkind = "rf"\nhold_s = 10\nzones = ["chin", "\\u0441hin"]\n',
        encoding="utf-8",
    )
    db = tmp_path / "r.sqlite"
    done = subprocess.run(
        [devicectl_script(), "run", str(path), "--yes", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "DEVICECTL_LOG": str(tmp_path / "log.jsonl")},
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "z.toml: step 2 (rf): zone 2 ('\\u0441hin'): name mixes scripts (Cyrillic and Latin): "
        "a zone name is written in one script"
    ]
    assert not db.exists()
