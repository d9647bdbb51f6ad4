"""Property tests for protocol files: random documents, valid and broken, written
with a minimal TOML emitter, are either loaded with every value within the
limits (checked here independently of the loader) or rejected with
ProtocolFileError whose every line names the file; never any other exception."""

from __future__ import annotations

import math
import tempfile
import tomllib
import unicodedata
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from devicectl.errors import ProtocolFileError
from devicectl.modalities.rf.limits import zone_key
from devicectl.session import (
    IPLStep,
    LEDExposureStep,
    ManualStep,
    RFStep,
    SessionLimits,
    SessionProtocol,
    load_protocol,
    loads_protocol,
    protocol_problems,
)

LIM = SessionLimits()
NAME = "random-protocol.toml"

# --------------------------------------------------------------------------- a tiny TOML writer


def toml_str(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_str(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def dump(doc: dict[str, Any]) -> str:
    """``doc`` as TOML: scalars first, then ``[session]`` and the ``[[step]]`` tables."""
    tables = {k: v for k, v in doc.items() if k == "session" and isinstance(v, dict)}
    arrays = {
        k: v
        for k, v in doc.items()
        if k == "step" and isinstance(v, list) and v and all(isinstance(s, dict) for s in v)
    }
    lines = [
        f"{toml_str(k)} = {toml_value(v)}"
        for k, v in doc.items()
        if k not in tables and k not in arrays
    ]
    for key, table in tables.items():
        lines.append(f"[{toml_str(key)}]")
        lines += [f"{toml_str(k)} = {toml_value(v)}" for k, v in table.items()]
    for key, array in arrays.items():
        for table in array:
            lines.append(f"[[{toml_str(key)}]]")
            lines += [f"{toml_str(k)} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- strategies

CHARS = st.characters(codec="utf-8")  # no lone surrogates: TOML is UTF-8
TEXT = st.text(CHARS, max_size=12)
# Text that is not blank: starts with a letter, digit, punctuation or symbol.
NONBLANK = st.tuples(st.characters(categories=("L", "N", "P", "S")), TEXT).map("".join)
WILD: st.SearchStrategy[Any] = st.one_of(
    st.floats(),  # includes nan and +-inf
    st.integers(-(10**6), 10**6),
    st.booleans(),
    TEXT,
    st.lists(st.integers(-5, 5), max_size=2),
    st.dictionaries(TEXT, st.integers(-5, 5), max_size=2),
)
# A zone name by the name rule: Latin letters (accented too), digits, spaces, hyphens.
ZONE_NAME = st.tuples(
    st.sampled_from("abcXYZ\u00e9\u00c5\u00df"),
    st.text(st.sampled_from("aeiouKLMN\u00e8\u00f1\u00f8 -0123456789"), max_size=11),
).map("".join)
UNKNOWN_KEY = TEXT.filter(
    lambda k: k
    not in {
        "kind", "title", "instructions", "confirm", "target_c", "hold_s", "zones", "name",
        "filter_nm", "fluence_j_cm2", "pulse_width_ms", "flashes", "pulse_count",
        "pulse_delay_ms", "wavelength_nm", "irradiance_mw_cm2", "duration_s", "duration_min",
        "version", "description", "notes", "session", "step",
    }
)  # fmt: skip


def number(low: float, high: float, *, exclude_min: bool = False) -> st.SearchStrategy[Any]:
    """Floats in the range, and whole numbers (TOML integers) when the range has any."""
    floats = st.floats(low, high, exclude_min=exclude_min)
    first = math.ceil(low) + (1 if exclude_min and math.ceil(low) == low else 0)
    if first > math.floor(high):
        return floats
    return st.one_of(floats, st.integers(first, math.floor(high)))


class Fields:
    """Builds one table field by field; when ``broken``, a field is now and then
    replaced by a wild value or left out, and unknown keys are now and then added."""

    def __init__(self, draw: st.DrawFn, broken: bool) -> None:
        self.draw = draw
        self.broken = broken
        self.table: dict[str, Any] = {}

    def _spoil(self) -> bool:
        return self.broken and self.draw(st.integers(0, 15)) == 0

    def put(self, key: str, valid: st.SearchStrategy[Any], *, optional: bool = False) -> None:
        if optional and not self.draw(st.booleans()):
            return
        if self._spoil():
            if self.draw(st.booleans()):
                return  # left out
            self.table[key] = self.draw(WILD)
            return
        self.table[key] = self.draw(valid)

    def done(self) -> dict[str, Any]:
        if self._spoil():
            self.table[self.draw(UNKNOWN_KEY)] = self.draw(WILD)
        return self.table


@st.composite
def zone(draw: st.DrawFn, name: str, broken: bool) -> Any:
    if not broken and draw(st.booleans()):
        return name
    f = Fields(draw, broken)
    f.put("name", st.just(name))
    f.put("target_c", number(LIM.rf.target_min_c, LIM.rf.target_max_c), optional=True)
    f.put("hold_s", number(0.0, LIM.rf.hold_max_s, exclude_min=True), optional=True)
    return f.done()


@st.composite
def step(draw: st.DrawFn, broken: bool) -> dict[str, Any]:
    kind = draw(st.sampled_from(["manual", "rf", "ipl", "led"]))
    f = Fields(draw, broken)
    f.put("kind", st.just(kind))
    f.put("title", NONBLANK, optional=kind != "manual")
    if kind == "manual":
        f.put("instructions", NONBLANK)
        f.put("confirm", st.booleans(), optional=True)
    elif kind == "rf":
        f.put("target_c", number(LIM.rf.target_min_c, LIM.rf.target_max_c), optional=True)
        f.put("hold_s", number(0.0, LIM.rf.hold_max_s, exclude_min=True), optional=True)
        names = draw(
            st.lists(
                st.one_of(ZONE_NAME, NONBLANK) if broken else ZONE_NAME,
                min_size=1,
                max_size=5,
                unique_by=zone_key,
            )
        )
        f.put("zones", st.tuples(*(zone(n, broken) for n in names)).map(list))
    elif kind == "ipl":
        f.put("filter_nm", st.sampled_from(LIM.ipl.filters_nm))
        # the fluence limit holds per trigger: a train's pulses add up to at most the maximum
        count = draw(st.integers(1, LIM.ipl.pulse_count_max))
        top = math.floor(LIM.ipl.fluence_max_j_cm2 / count * 100) / 100
        f.put(
            "fluence_j_cm2", number(LIM.ipl.fluence_min_j_cm2, max(top, LIM.ipl.fluence_min_j_cm2))
        )
        f.put("pulse_width_ms", number(LIM.ipl.pulse_width_min_ms, LIM.ipl.pulse_width_max_ms))
        f.put("flashes", st.integers(1, LIM.ipl.flashes_max), optional=True)
        f.put("pulse_count", st.just(count), optional=count == 1)
        if count == 1:
            f.put("pulse_delay_ms", st.sampled_from([0, 0.0]), optional=True)
        else:
            delay = number(LIM.ipl.pulse_delay_min_ms, LIM.ipl.pulse_delay_max_ms)
            f.put("pulse_delay_ms", delay)
    else:
        f.put("wavelength_nm", st.sampled_from(LIM.led.wavelengths_nm))
        irradiance = draw(number(0.1, LIM.led.irradiance_max_mw_cm2))
        f.put("irradiance_mw_cm2", st.just(irradiance))
        longest_s = min(LIM.led.duration_max_s, LIM.led.dose_max_j_cm2 * 1000.0 / irradiance)
        if draw(st.booleans()):
            f.put("duration_s", number(1.0, longest_s))
        else:
            minutes = draw(st.floats(1.0 / 60.0, longest_s / 60.0))
            assume(1.0 <= minutes * 60.0 <= longest_s)
            f.put("duration_min", st.just(minutes))
    return f.done()


@st.composite
def document(draw: st.DrawFn, broken: bool) -> dict[str, Any]:
    session = Fields(draw, broken)
    session.put("name", NONBLANK)
    session.put("version", NONBLANK)
    session.put("description", TEXT, optional=True)
    session.put("notes", TEXT, optional=True)
    doc: dict[str, Any] = {"session": session.done()}
    steps = draw(st.lists(step(broken), min_size=0 if broken else 1, max_size=5))
    write_empty = draw(st.booleans())
    if steps or write_empty:
        doc["step"] = steps
    if broken and draw(st.integers(0, 9)) == 0:
        doc[draw(UNKNOWN_KEY)] = draw(WILD)
    if broken and draw(st.integers(0, 19)) == 0:
        doc["session" if draw(st.booleans()) else "step"] = draw(WILD)
    return doc


# --------------------------------------------------------------------------- the check


def within_limits(p: SessionProtocol) -> None:
    """Every value of a loaded protocol within the limits, checked without the loader."""
    assert p.name.strip() and p.version.strip() and p.steps
    for s in p.steps:
        if isinstance(s, ManualStep):
            assert s.title.strip() and s.instructions.strip()
            assert isinstance(s.confirm, bool)
        elif isinstance(s, RFStep):
            assert s.title.strip() and s.zones
            names = [zone_key(z.name) for z in s.zones]
            assert all(names) and len(set(names)) == len(names)
            # nothing invisible: letters, accents, digits, spaces and hyphens only
            assert all(
                unicodedata.category(c)[0] in "LMN" or c in " -\u00a0"
                for z in s.zones
                for c in z.name
            )
            for z in s.zones:
                assert LIM.rf.target_min_c <= z.target_c <= LIM.rf.target_max_c
                assert 0.0 < z.hold_s <= LIM.rf.hold_max_s
        elif isinstance(s, IPLStep):
            i = s.ipl_pass
            assert type(i.filter_nm) is int and i.filter_nm in LIM.ipl.filters_nm
            assert LIM.ipl.fluence_min_j_cm2 <= i.fluence_j_cm2 <= LIM.ipl.fluence_max_j_cm2
            assert LIM.ipl.pulse_width_min_ms <= i.pulse_width_ms <= LIM.ipl.pulse_width_max_ms
            assert type(i.flashes) is int and 1 <= i.flashes <= LIM.ipl.flashes_max
            assert type(i.pulse_count) is int and 1 <= i.pulse_count <= LIM.ipl.pulse_count_max
            assert i.fluence_j_cm2 * i.pulse_count <= LIM.ipl.fluence_max_j_cm2
            if i.pulse_count == 1:
                assert i.pulse_delay_ms == 0.0
            else:
                assert LIM.ipl.pulse_delay_min_ms <= i.pulse_delay_ms <= LIM.ipl.pulse_delay_max_ms
        else:
            assert isinstance(s, LEDExposureStep)
            e = s.step
            assert type(e.wavelength_nm) is int and e.wavelength_nm in LIM.led.wavelengths_nm
            assert 0.1 <= e.irradiance_mw_cm2 <= LIM.led.irradiance_max_mw_cm2
            assert 1.0 <= e.duration_s <= LIM.led.duration_max_s
            assert e.irradiance_mw_cm2 * e.duration_s / 1000.0 <= LIM.led.dose_max_j_cm2
    assert protocol_problems(p, LIM) == []


def load_text(text: str) -> SessionProtocol:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / NAME
        path.write_text(text, encoding="utf-8")
        return load_protocol(path, LIM)


PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(document(broken=False))
def test_valid_documents_load_as_written(doc: dict[str, Any]) -> None:
    text = dump(doc)
    assert tomllib.loads(text) == doc  # the emitter writes what was drawn
    p = load_text(text)
    within_limits(p)
    assert len(p.steps) == len(doc["step"])
    for s, raw in zip(p.steps, doc["step"], strict=True):
        assert s.kind == raw["kind"]
        if isinstance(s, RFStep):
            names = [z if isinstance(z, str) else z["name"] for z in raw["zones"]]
            assert [z.name for z in s.zones] == names


@PROPERTY
@given(document(broken=True))
def test_any_document_loads_within_limits_or_is_rejected_line_by_line(
    doc: dict[str, Any],
) -> None:
    try:
        p = load_text(dump(doc))
    except ProtocolFileError as exc:
        event("rejected")
        assert exc.problems
        assert all(line.startswith(f"{NAME}: ") for line in exc.problems), exc.problems
        assert all("\n" not in line for line in exc.problems)
        assert exc.path.name == NAME
    else:
        event("loaded")
        within_limits(p)


@settings(max_examples=300, deadline=None)
@given(st.text(CHARS, max_size=200))
def test_arbitrary_text_never_raises_anything_else(text: str) -> None:
    try:
        within_limits(loads_protocol(text, NAME, LIM))
    except ProtocolFileError as exc:
        assert exc.problems and all(line.startswith(f"{NAME}: ") for line in exc.problems)


# --------------------------------------------------------------------------- just past a limit


def up(value: float) -> float:
    """The next float above ``value``: the smallest step past an upper limit."""
    return math.nextafter(value, math.inf)


def down(value: float) -> float:
    """The next float below ``value``: the smallest step past a lower limit."""
    return math.nextafter(value, -math.inf)


# How far past the limit: the smallest float step, or a step a file would write.
PAST = st.sampled_from([0.0, 1e-9, 0.001, 0.01, 0.1, 1.0])


def smallest_over(limit: float, times: float) -> float:
    """The smallest float ``x`` with ``x * times > limit``: a product just past it."""
    x = limit / times
    while x * times <= limit:
        x = up(x)
    while down(x) * times > limit:
        x = down(x)
    return x


def over(draw: st.DrawFn, limit: float) -> float:
    step = draw(PAST)
    return up(limit) if step == 0.0 else limit + step


def under(draw: st.DrawFn, limit: float) -> float:
    step = draw(PAST)
    return down(limit) if step == 0.0 else limit - step


@st.composite
def past_a_limit(draw: st.DrawFn) -> tuple[dict[str, Any], str, str]:
    """A valid step with exactly one limited value just past its limit; returns the
    step, the field its problem line must name, and the words that line must say."""
    rf, ipl, led = LIM.rf, LIM.ipl, LIM.led
    case = draw(
        st.sampled_from(
            [
                "target_c>", "target_c<", "hold_s>", "hold_s<=0", "zone target_c>",
                "zone target_c<", "zone hold_s>",
                "fluence_j_cm2>", "fluence_j_cm2<", "fluence x pulses", "pulse_width_ms>",
                "pulse_width_ms<", "flashes>", "flashes<", "pulse_count>", "pulse_count<",
                "pulse_delay_ms>", "pulse_delay_ms<",
                "irradiance_mw_cm2>", "irradiance_mw_cm2<", "duration_s>", "duration_s<",
                "duration_min>", "duration_min<", "dose",
            ]
        )
    )  # fmt: skip
    above, below = "is above the limit", "is below the limit"
    if "target_c" in case or "hold_s" in case:
        s: dict[str, Any] = {"kind": "rf", "zones": ["forehead", "chin"]}
        key = case.split()[-1].rstrip("<>=0")
        if case == "hold_s<=0":
            value: float = draw(st.sampled_from([0.0, -0.0, down(0.0), -1.0]))
            words = "must be a positive number"
        elif key == "target_c":
            hi = case.endswith(">")
            value = over(draw, rf.target_max_c) if hi else under(draw, rf.target_min_c)
            words = above if hi else below
        else:
            value, words = over(draw, rf.hold_max_s), above
        if case.startswith("zone"):
            s["zones"] = ["forehead", {"name": "chin", key: value}]
        else:
            s[key] = value
        return s, key, words
    if case == "fluence x pulses":
        count = draw(st.integers(2, ipl.pulse_count_max))
        s = {
            "kind": "ipl", "filter_nm": 560, "pulse_width_ms": 10.0, "pulse_count": count,
            "pulse_delay_ms": 20.0,
            "fluence_j_cm2": smallest_over(ipl.fluence_max_j_cm2, count),
        }  # fmt: skip
        return s, "fluence_j_cm2", "x pulse_count"
    if case.rstrip("<>") in {"fluence_j_cm2", "pulse_width_ms", "flashes", "pulse_count"} or (
        case.startswith("pulse_delay_ms")
    ):
        s = {"kind": "ipl", "filter_nm": 560, "fluence_j_cm2": 5.0, "pulse_width_ms": 10.0}
        key, hi = case.rstrip("<>"), case.endswith(">")
        if key == "fluence_j_cm2":
            s[key] = over(draw, ipl.fluence_max_j_cm2) if hi else under(draw, ipl.fluence_min_j_cm2)
        elif key == "pulse_width_ms":
            s[key] = (
                over(draw, ipl.pulse_width_max_ms) if hi else under(draw, ipl.pulse_width_min_ms)
            )
        elif key == "flashes":
            s[key] = ipl.flashes_max + 1 if hi else 0
        elif key == "pulse_count":
            s[key] = ipl.pulse_count_max + 1 if hi else 0
            s["pulse_delay_ms"] = 20.0
        else:
            s["pulse_count"] = 2
            s[key] = (
                over(draw, ipl.pulse_delay_max_ms) if hi else under(draw, ipl.pulse_delay_min_ms)
            )
        return s, key, above if hi else below
    s = {"kind": "led", "wavelength_nm": 633, "irradiance_mw_cm2": 50.0, "duration_s": 60.0}
    key, hi = case.rstrip("<>"), case.endswith(">")
    if case == "dose":
        # irradiance as the canopy holds it (0.1 steps) x the shortest duration past 130
        tenths = draw(
            st.integers(math.ceil(led.dose_max_j_cm2 * 10_000 / led.duration_max_s), 1100)
        )
        s["irradiance_mw_cm2"] = tenths / 10
        s["duration_s"] = smallest_over(led.dose_max_j_cm2 * 1000.0, tenths / 10)
        return s, "dose", above
    if key == "irradiance_mw_cm2":
        s[key] = over(draw, led.irradiance_max_mw_cm2) if hi else under(draw, 0.1)
    elif key == "duration_s":
        s["irradiance_mw_cm2"] = 1.0  # a dose far below its limit
        s[key] = over(draw, led.duration_max_s) if hi else under(draw, 1.0)
    else:
        del s["duration_s"]
        s["irradiance_mw_cm2"] = 1.0
        minutes = led.duration_max_s / 60.0 if hi else 1.0 / 60.0
        s[key] = up(minutes) if hi else down(minutes)
        while (s[key] * 60.0 <= led.duration_max_s) if hi else (s[key] * 60.0 >= 1.0):
            s[key] = up(s[key]) if hi else down(s[key])
    return s, key, above if hi else below


@PROPERTY
@given(document(broken=False), past_a_limit(), st.data())
def test_a_value_just_past_any_limit_rejects_the_file_naming_step_and_field(
    doc: dict[str, Any], bad: tuple[dict[str, Any], str, str], data: st.DataObject
) -> None:
    s, field, words = bad
    at = data.draw(st.integers(0, len(doc["step"])), label="position")
    doc["step"].insert(at, s)
    text = dump(doc)
    assert tomllib.loads(text) == doc  # the value written is the value drawn
    try:
        load_text(text)
    except ProtocolFileError as exc:
        where = f"{NAME}: step {at + 1} ({s['kind']}): "
        mine = [line for line in exc.problems if line.startswith(where)]
        assert mine, exc.problems
        assert any(field in line and words in line for line in mine), (field, words, mine)
        assert len(exc.problems) == 1, exc.problems  # the rest of the file is valid
    else:
        raise AssertionError(f"loaded with {field} past its limit: {s}")
