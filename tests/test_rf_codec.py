"""RFP/1 codec tests: properties against a reference written here, and every malformed case.

The reference CRC and framing below are written from docs/protocols/rf.md in
the plainest possible way (bit by bit, f-strings), so that the codec's fast
code is checked against something that shares none of its tricks.
"""

from __future__ import annotations

import contextlib
import math
import re

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from devicectl.devices import DeviceIdentity
from devicectl.errors import CRCError, ProtocolError, ValidationError
from devicectl_drivers import rf_codec
from devicectl_drivers.rf_codec import (
    Reply,
    crc16,
    decode_reply,
    encode_command,
    expect_no_payload,
    format_power_w,
    frame_command,
    parse_all,
    parse_error_entry,
    parse_identity,
    parse_impedance_ohm,
    parse_output_state,
    parse_power_w,
    parse_status,
    parse_temperatures_c,
    split_reply,
)

# ------------------------------------------------------------------ reference


def ref_crc(data: bytes) -> int:
    """CRC-16/CCITT-FALSE bit by bit: poly 0x1021, init 0xFFFF, no reflection, no xor-out."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def ref_line(seq: int, body: str) -> bytes:
    """``<seq> <body>*<CRC>\\n`` exactly as the spec draws it."""
    head = f"{seq} {body}".encode("ascii")
    return head + f"*{ref_crc(head):04X}\n".encode("ascii")


def ref_line_raw(head: bytes) -> bytes:
    """Frame arbitrary bytes with a correct CRC (to reach the content checks)."""
    return head + f"*{ref_crc(head):04X}\n".encode("ascii")


seqs = st.integers(min_value=0, max_value=65535)
printable = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
# "OK " + payload must fit: 5 (seq) + 1 + 3 + payload + 6 <= 128.
payloads = st.text(alphabet=printable, min_size=1, max_size=113)
command_bodies = st.text(alphabet=printable, min_size=1, max_size=116)
err_texts = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters='"'),
    max_size=80,
)
err_codes = st.integers(min_value=-99999, max_value=-1)


def test_reference_crc_has_the_spec_check_value() -> None:
    assert ref_crc(b"123456789") == 0x29B1
    assert crc16(b"123456789") == 0x29B1


def test_spec_example_frame() -> None:
    # "the command `7 *IDN?` is sent as `7 *IDN?*` followed by the CRC of the 7 bytes"
    assert encode_command(7, "*IDN?") == b"7 *IDN?*7FEC\n"
    assert ref_line(7, "*IDN?") == b"7 *IDN?*7FEC\n"


# ------------------------------------------------------------------ properties


@given(data=st.binary(max_size=200))
def test_crc16_matches_reference(data: bytes) -> None:
    assert crc16(data) == ref_crc(data)


@given(seq=seqs, body=command_bodies)
@example(seq=65535, body="x" * 116)
@example(seq=0, body="*IDN?")
def test_encode_command_matches_reference_framing(seq: int, body: str) -> None:
    assert encode_command(seq, body) == ref_line(seq, body)
    assert frame_command(seq, body.encode("ascii")) == ref_line(seq, body)


@given(seq=seqs, payload=payloads)
@example(seq=65535, payload="p" * 113)
@example(seq=0, payload="a*b*c")  # '*' inside a payload: the last '*' starts the CRC
def test_ok_reply_round_trip(seq: int, payload: str) -> None:
    line = ref_line(seq, f"OK {payload}")
    assert decode_reply(line) == Reply(seq, True, payload, None, None)
    assert split_reply(line) == (seq, True, payload, None, None)
    # and through the codec's own encoder (the same framing both directions)
    assert decode_reply(encode_command(seq, f"OK {payload}")) == Reply(seq, True, payload)


@given(seq=seqs)
def test_bare_ok_round_trip(seq: int) -> None:
    assert decode_reply(ref_line(seq, "OK")) == Reply(seq, True, "", None, None)


@given(seq=seqs, code=err_codes, text=err_texts)
def test_err_reply_round_trip(seq: int, code: int, text: str) -> None:
    line = ref_line(seq, f'ERR {code},"{text}"')
    assert decode_reply(line) == Reply(seq, False, "", code, text)


@given(seq=seqs, payload=payloads, data=st.data())
def test_any_single_byte_corruption_is_rejected(
    seq: int, payload: str, data: st.DataObject
) -> None:
    """CRC-16 catches every single-byte error; framing catches the rest. Never accepted."""
    line = ref_line(seq, f"OK {payload}")
    index = data.draw(st.integers(min_value=0, max_value=len(line) - 1), label="index")
    new = data.draw(st.integers(min_value=0, max_value=255).filter(lambda b: b != line[index]))
    corrupted = line[:index] + bytes([new]) + line[index + 1 :]
    with pytest.raises(ProtocolError):  # CRCError is a ProtocolError
        decode_reply(corrupted)


@pytest.mark.parametrize("replacement", [b"X", b"A", b" ", b"\n"])
def test_corrupting_the_crc_star_when_the_payload_holds_another_star_is_rejected(
    replacement: bytes,
) -> None:
    line = ref_line(7, "OK a*1234")
    star = line.rindex(b"*")
    corrupted = line[:star] + replacement + line[star + 1 :]
    with pytest.raises(ProtocolError):
        decode_reply(corrupted)


@given(seq=seqs, payload=payloads, data=st.data())
def test_corruption_inside_the_covered_bytes_is_a_crc_error(
    seq: int, payload: str, data: st.DataObject
) -> None:
    """A printable substitution before the '*' leaves the framing intact: the CRC must catch it."""
    line = ref_line(seq, f"OK {payload}")
    star = line.rindex(b"*")
    index = data.draw(st.integers(min_value=0, max_value=star - 1), label="index")
    new = data.draw(printable.map(ord).filter(lambda b: b not in (line[index], ord("*"))))
    corrupted = line[:index] + bytes([new]) + line[index + 1 :]
    with pytest.raises(CRCError):
        decode_reply(corrupted)


@given(junk=st.binary(max_size=300))
@example(junk=b"")
@example(junk=b"\n")
@example(junk=b"*\n")
@example(junk=b"\xff*FFFF\n")
def test_random_bytes_raise_only_protocol_errors(junk: bytes) -> None:
    try:
        reply = decode_reply(junk)
    except ProtocolError:
        return
    # Accepted only if it really is a well-formed line.
    assert isinstance(reply, Reply)
    assert junk.endswith(b"\n")


@given(head=st.text(alphabet=printable, max_size=120))
@example(head="0 OK")
@example(head="1 ERR")
@example(head="1 ERR ,")
@example(head='1 ERR -,""')
@example(head=" OK")
def test_random_text_with_a_valid_crc_never_raises_crc_error(head: str) -> None:
    """Past the CRC only content checks remain: ProtocolError, never CRCError, never a crash;
    and whatever is accepted re-encodes to the very same line."""
    line = ref_line_raw(head.encode("ascii"))
    assume(len(line) <= 128)
    try:
        reply = decode_reply(line)
    except CRCError:
        pytest.fail(f"CRCError for a line with a correct CRC: {line!r}")
    except ProtocolError:
        return
    if reply.ok:
        body = f"OK {reply.payload}" if reply.payload else "OK"
    else:
        body = f'ERR {reply.error_code},"{reply.error_text}"'
    assert ref_line(reply.seq, body) == line


temps = st.one_of(
    st.just(math.nan), st.integers(min_value=-999, max_value=9999).map(lambda d: d / 10)
)


def fmt_temp(value: float) -> str:
    return "NAN" if math.isnan(value) else f"{value:.1f}"


@given(
    t1=temps,
    t2=temps,
    ohm=st.one_of(st.just(math.inf), st.integers(min_value=0, max_value=10**6)),
    deci_w=st.integers(min_value=0, max_value=600),
    on=st.booleans(),
    bits=st.integers(min_value=0, max_value=0x7F),
)
def test_parse_all_round_trip(
    t1: float, t2: float, ohm: float, deci_w: int, on: bool, bits: int
) -> None:
    power_w = deci_w / 10
    payload = ",".join(
        [
            fmt_temp(t1),
            fmt_temp(t2),
            "OPEN" if ohm == math.inf else str(ohm),
            f"{power_w:.1f}",
            "ON" if on else "OFF",
            str(bits),
        ]
    )
    got = parse_all(payload)
    want = (t1, t2, float(ohm), power_w, on, bits)
    for g, w in zip(got, want, strict=True):
        if isinstance(w, float) and math.isnan(w):
            assert isinstance(g, float) and math.isnan(g)
        else:
            assert g == w and type(g) is type(w)


@given(payload=st.text(alphabet="0123456789.-,NAOPEF \u00b2x", max_size=40))
@example(payload="41.8,42.1,123,25.0,ON,19")
@example(payload="41.8,42.1,123,25.0,ON,128")
def test_parse_all_fast_path_agrees_with_field_by_field_reference(payload: str) -> None:
    """The one-regex fast path accepts exactly what the per-field parser accepts."""
    try:
        fast = parse_all(payload)
    except ProtocolError:
        fast = None
    try:
        slow = rf_codec._parse_all_fields(payload)
    except ProtocolError:
        slow = None
    assert repr(fast) == repr(slow)  # repr: nan == nan


@given(
    seq=st.integers(0, 65535),
    asked=st.integers(0, 65535),
    payload=st.text(alphabet="0123456789.-,NAOPEF", max_size=40),
    corrupt=st.one_of(st.none(), st.integers(0, 200)),
)
@example(seq=3, asked=3, payload="41.8,42.1,123,25.0,ON,19", corrupt=None)
@example(seq=3, asked=3, payload="NAN,42.1,OPEN,0.0,OFF,127", corrupt=None)
@example(seq=3, asked=4, payload="41.8,42.1,123,25.0,ON,19", corrupt=None)
def test_fast_meas_all_line_agrees_with_the_full_checks(
    seq: int, asked: int, payload: str, corrupt: int | None
) -> None:
    """``fast_all_reply`` accepts only what the full path accepts, with the same values."""
    line = bytearray(ref_line(seq, "OK " + payload if payload else "OK"))
    if corrupt is not None:
        line[corrupt % len(line)] ^= 0x01
    fast = rf_codec.fast_all_reply(bytes(line), asked)
    try:
        got_seq, ok, body, _, _ = rf_codec.split_reply(bytes(line))
        full = parse_all(body) if ok and got_seq == asked else None
    except ProtocolError:
        full = None
    if fast is not None:
        assert repr(fast) == repr(full)
    elif corrupt is None and seq == asked and full is not None:
        pytest.fail(f"fast path refused a good line {bytes(line)!r}")


@given(payload=st.text(max_size=60))
def test_payload_parsers_raise_only_protocol_errors(payload: str) -> None:
    for parse in (
        parse_all,
        parse_identity,
        parse_temperatures_c,
        parse_impedance_ohm,
        parse_power_w,
        parse_output_state,
        parse_status,
        parse_error_entry,
    ):
        with contextlib.suppress(ProtocolError):
            parse(payload)  # type: ignore[operator]


# ------------------------------------------------------------ explicit: lines


def _good(seq: int = 5, body: str = "OK 1") -> bytes:
    return ref_line(seq, body)


def test_good_line_decodes() -> None:
    assert decode_reply(b"0 OK*CAB2\n") == Reply(0, True, "")
    assert decode_reply(b"0 OK 25.0*9D75\n") == Reply(0, True, "25.0")
    assert decode_reply(b'0 ERR -221,"Settings conflict"*8EE1\n') == Reply(
        0, False, "", -221, "Settings conflict"
    )


def test_line_of_exactly_128_bytes_is_accepted_and_129_rejected() -> None:
    pad = 128 - len(b"1 OK *ABCD\n")
    line = ref_line(1, "OK " + "x" * pad)
    assert len(line) == 128
    assert decode_reply(line).payload == "x" * pad
    longer = ref_line(1, "OK " + "x" * (pad + 1))
    assert len(longer) == 129
    with pytest.raises(ProtocolError, match="129 bytes, over the 128-byte limit"):
        decode_reply(longer)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"", "does not end in LF"),
        (b"5 OK 1*ABCD", "does not end in LF"),
        (b"5 OK 1*ABCD\n\n", "LF before its end"),
        (b"5 OK 1\n*ABCD\n", "LF before its end"),
        (ref_line_raw(b"5 OK 1")[:-1] + b"\r\n", "CR before the LF"),
        (b"5 OK 1\r*ABCD\n", "CR inside the line"),
        (b"5 OK \xe9*ABCD\n", "non-ASCII byte 0xE9 at offset 5"),
        (b"5 OK \x00*ABCD\n", "non-printable byte 0x00 at offset 5"),
        (b"5 OK \t*ABCD\n", "non-printable byte 0x09"),
        (b"5 OK \x7f*ABCD\n", "non-printable byte 0x7F"),
        (b"5 OK 1 ABCD\n", "no '\\*'"),
        (b"5 OK 1*abcd\n", "not exactly 4 upper-case hex digits"),
        (b"5 OK 1*ABC\n", "not exactly 4 upper-case hex digits"),
        (b"5 OK 1*ABCDE\n", "not exactly 4 upper-case hex digits"),
        (b"5 OK 1*ABCG\n", "not exactly 4 upper-case hex digits"),
        (b"5 OK 1* ABC\n", "not exactly 4 upper-case hex digits"),
        (b"5 OK 1*\n", "not exactly 4 upper-case hex digits"),
        (b"5 OK 1*0x1F\n", "not exactly 4 upper-case hex digits"),
        (b"x" * 200 + b"\n", "over the 128-byte limit"),
    ],
)
def test_malformed_framing_is_a_protocol_error(line: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message) as info:
        decode_reply(line)
    assert not isinstance(info.value, CRCError)


def test_bad_crc_is_a_crc_error_showing_both_values_and_the_line() -> None:
    good = ref_line(5, "OK 1")
    bad_crc = (ref_crc(b"5 OK 1") + 1) & 0xFFFF
    line = b"5 OK 1*%04X\n" % bad_crc
    with pytest.raises(CRCError, match=f"line says {bad_crc:04X}, content gives") as info:
        decode_reply(line)
    assert "5 OK 1" in str(info.value)
    assert decode_reply(good).payload == "1"


def test_lower_case_crc_of_the_right_value_is_rejected() -> None:
    assert decode_reply(b"0 OK*CAB2\n").ok
    with pytest.raises(ProtocolError, match="upper-case"):
        decode_reply(b"0 OK*cab2\n")


@pytest.mark.parametrize(
    ("head", "message"),
    [
        (b"5OK", "no space between seq and body"),
        (b"", "no space between seq and body"),
        (b" OK", "is not 1 to 5 decimal digits"),
        (b"x5 OK", "'x5' is not 1 to 5 decimal digits"),
        (b"-5 OK", "'-5' is not 1 to 5 decimal digits"),
        (b"+5 OK", "'\\+5' is not 1 to 5 decimal digits"),
        (b"100000 OK", "'100000' is not 1 to 5 decimal digits"),
        (b"05 OK", "'05' has a leading zero"),
        (b"00 OK", "'00' has a leading zero"),
        (b"65536 OK", "seq 65536 is over 65535"),
        (b"99999 OK", "seq 99999 is over 65535"),
        (b"5  OK", "neither 'OK\\[ payload\\]' nor"),
        (b"5 ok", "neither"),
        (b"5 OKAY", "neither"),
        (b"5 OK ", "'OK ' has an empty payload"),
        (b"5 ", "neither"),
        (b"5 ERR", "neither"),
        (b'5 ERROR -1,"x"', "neither"),
        (b"5 NAK", "neither"),
        (b'5 ERR -221 "Settings conflict"', "has no ',' after its code"),
        (b'5 ERR 221,"Settings conflict"', "'221' is not a negative whole number"),
        (b'5 ERR -0,"zero"', "'-0' is not a negative whole number"),
        (b'5 ERR -0221,"x"', "'-0221' is not a negative whole number"),
        (b'5 ERR -,"x"', "'-' is not a negative whole number"),
        (b'5 ERR ,"x"', "'' is not a negative whole number"),
        (b'5 ERR - 1,"x"', "'- 1' is not a negative whole number"),
        (b"5 ERR -221,Settings conflict", "not one double-quoted string"),
        (b'5 ERR -221,"Settings conflict', "not one double-quoted string"),
        (b'5 ERR -221,"', "not one double-quoted string"),
        (b'5 ERR -221,"a"b"', "not one double-quoted string"),
        (b'5 ERR -221,"a" ', "not one double-quoted string"),
    ],
)
def test_malformed_content_with_a_correct_crc_is_a_protocol_error(
    head: bytes, message: str
) -> None:
    with pytest.raises(ProtocolError, match=message) as info:
        decode_reply(ref_line_raw(head))
    assert not isinstance(info.value, CRCError)


def test_seq_bounds_are_accepted() -> None:
    assert decode_reply(ref_line(0, "OK")).seq == 0
    assert decode_reply(ref_line(65535, "OK")).seq == 65535
    assert decode_reply(ref_line(10, "OK")).seq == 10


def test_err_text_may_be_empty_and_hold_commas() -> None:
    assert decode_reply(ref_line(1, 'ERR -350,""')) == Reply(1, False, "", -350, "")
    assert decode_reply(ref_line(1, 'ERR -1,"a,b"')).error_text == "a,b"


def test_error_messages_show_the_offending_line_cut_to_a_readable_length() -> None:
    with pytest.raises(ProtocolError) as info:
        decode_reply(b"y" * 300)
    assert "yyyy" in str(info.value) and "(300 bytes)" in str(info.value)


# --------------------------------------------------------- explicit: encoding


@pytest.mark.parametrize("seq", [-1, 65536, 10**9])
def test_encode_rejects_seq_out_of_range(seq: int) -> None:
    with pytest.raises(ProtocolError, match=r"outside 0\.\.65535"):
        encode_command(seq, "*IDN?")


def test_encode_rejects_non_int_seq() -> None:
    with pytest.raises(ProtocolError):
        encode_command(True, "*IDN?")
    with pytest.raises(ProtocolError):
        encode_command(1.0, "*IDN?")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "empty"),
        ("OUTP ON\n", "not printable ASCII"),
        ("OUTP ON\r", "not printable ASCII"),
        ("SOUR:POW 1\t", "not printable ASCII"),
        ("SOUR:POW 5\u00b0", "not printable ASCII"),
        ("x" * 117, "makes a 129-byte line"),
    ],
)
def test_encode_rejects_bodies_that_cannot_be_one_line(body: str, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        encode_command(65535, body)


def test_encode_accepts_the_longest_body() -> None:
    assert len(encode_command(65535, "x" * 116)) == 128


@pytest.mark.parametrize(
    ("power_w", "text"),
    [
        (25.0, "25.0"),
        (12.34, "12.3"),
        (12.36, "12.4"),
        (0.0, "0.0"),
        (-0.0, "0.0"),
        (-0.04, "0.0"),
        (60, "60.0"),
        (-5.0, "-5.0"),
    ],
)
def test_format_power_w(power_w: float, text: str) -> None:
    assert format_power_w(power_w) == text


@pytest.mark.parametrize("power_w", [math.nan, math.inf, -math.inf, 1e200])
def test_format_power_w_rejects_what_has_no_wire_form(power_w: float) -> None:
    with pytest.raises(ValidationError, match="W"):
        format_power_w(power_w)


# ------------------------------------------------------- explicit: payloads


def test_parse_all_values() -> None:
    assert parse_all("41.8,42.1,123,25.0,ON,19") == (41.8, 42.1, 123.0, 25.0, True, 19)
    t1, t2, ohm, power_w, on, bits = parse_all("NAN,39.5,OPEN,0.0,OFF,32")
    assert math.isnan(t1) and t2 == 39.5 and ohm == math.inf
    assert (power_w, on, bits) == (0.0, False, 32)
    assert parse_all("-5.0,0.0,0,-0.0,OFF,0")[0] == -5.0


@pytest.mark.parametrize(
    ("payload", "offending"),
    [
        ("", "''"),
        ("41.8,42.1,123,25.0,ON", "5 comma-separated fields, expected 6"),
        ("41.8,42.1,123,25.0,ON,19,0", "7 comma-separated fields"),
        ("41.85,42.1,123,25.0,ON,19", "'41.85'"),
        ("41,42.1,123,25.0,ON,19", "'41'"),
        ("41.,42.1,123,25.0,ON,19", "'41.'"),
        (".8,42.1,123,25.0,ON,19", "'.8'"),
        ("inf,42.1,123,25.0,ON,19", "'inf'"),
        ("nan,42.1,123,25.0,ON,19", "'nan'"),
        ("1e3,42.1,123,25.0,ON,19", "'1e3'"),
        (" 41.8,42.1,123,25.0,ON,19", "' 41.8'"),
        ("41.8 ,42.1,123,25.0,ON,19", "'41.8 '"),
        ("4_1.8,42.1,123,25.0,ON,19", "'4_1.8'"),
        ("+41.8,42.1,123,25.0,ON,19", "'\\+41.8'"),
        ("41.8,4\u00b22.1,123,25.0,ON,19", "'4\u00b22.1'"),
        ("41.8,42.1,123.0,25.0,ON,19", "impedance '123.0'"),
        ("41.8,42.1,-5,25.0,ON,19", "impedance '-5'"),
        ("41.8,42.1,open,25.0,ON,19", "impedance 'open'"),
        ("41.8,42.1,123,NAN,ON,19", "delivered power 'NAN'"),
        ("41.8,42.1,123,25,ON,19", "delivered power '25'"),
        ("41.8,42.1,123,25.0,on,19", "output state 'on'"),
        ("41.8,42.1,123,25.0,1,19", "output state '1'"),
        ("41.8,42.1,123,25.0,ON,128", "status word '128'"),
        ("41.8,42.1,123,25.0,ON,-1", "status word '-1'"),
        ("41.8,42.1,123,25.0,ON,0x13", "status word '0x13'"),
        ("41.8,42.1,123,25.0,ON,", "status word ''"),
    ],
)
def test_parse_all_rejects_malformed_payloads_showing_the_text(
    payload: str, offending: str
) -> None:
    with pytest.raises(ProtocolError, match=offending) as info:
        parse_all(payload)
    assert repr(payload) in str(info.value)


def test_parse_identity() -> None:
    assert parse_identity("Acme Aesthetics,RF-200,SN00042,2.1.0") == DeviceIdentity(
        vendor="Acme Aesthetics", model="RF-200", serial="SN00042", firmware="2.1.0"
    )
    with pytest.raises(ProtocolError, match="3 comma-separated fields, expected 4"):
        parse_identity("Acme,RF-200,SN1")
    with pytest.raises(ProtocolError, match="5 comma-separated fields"):
        parse_identity("Acme,RF-200,SN1,1.0,x")
    with pytest.raises(ProtocolError, match="empty field"):
        parse_identity("Acme,,SN1,1.0")


def test_parse_temperatures_impedance_power_output_status() -> None:
    t1, t2 = parse_temperatures_c("NAN,41.0")
    assert math.isnan(t1) and t2 == 41.0
    assert parse_impedance_ohm("OPEN") == math.inf
    assert parse_impedance_ohm("87") == 87.0
    assert parse_power_w("59.9") == 59.9
    assert parse_output_state("ON") is True
    assert parse_output_state("OFF") is False
    assert parse_status("127") == 127
    for parse, bad in [
        (parse_temperatures_c, "41.0"),
        (parse_temperatures_c, "41.0,41"),
        (parse_impedance_ohm, "OPEN "),
        (parse_power_w, "5"),
        (parse_output_state, "Off"),
        (parse_status, "x"),
    ]:
        with pytest.raises(ProtocolError, match=re.escape(repr(bad))):
            parse(bad)  # type: ignore[operator]


def test_parse_error_entry() -> None:
    assert parse_error_entry('0,"No error"') == (0, "No error")
    assert parse_error_entry('-113,"Undefined header"') == (-113, "Undefined header")
    assert parse_error_entry('-350,"Queue overflow"') == (-350, "Queue overflow")
    for bad in ["0", 'x,"a"', '-01,"a"', "-113,Undefined"]:
        with pytest.raises(ProtocolError):
            parse_error_entry(bad)


def test_expect_no_payload() -> None:
    expect_no_payload("", "OUTP ON")
    with pytest.raises(ProtocolError, match="'OUTP ON' has an unexpected payload 'ON'"):
        expect_no_payload("ON", "OUTP ON")


def test_reply_is_frozen() -> None:
    reply = decode_reply(b"0 OK*CAB2\n")
    with pytest.raises(AttributeError):
        reply.seq = 1  # type: ignore[misc]
