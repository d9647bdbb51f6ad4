"""The RF firmware simulator against docs/protocols/rf.md: exact bytes in, exact bytes out.

Expected lines are built here with the test's own bitwise CRC, never with the
simulator's or the driver's code.
"""

from __future__ import annotations

import re
import statistics

import pytest

from devicectl.clock import SimClock
from devicectl_simulators.rf_firmware import RFFirmware
from devicectl_simulators.skin import SkinModel

T0 = 100.0  # clocks start away from zero so "seconds after creation" is really tested
IDN = "devicectl-sim,RF-60,SIM0,1.0.0"
FRAME_ERROR = 'OK -301,"Frame error"'


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE, bit by bit (poly 0x1021, init 0xFFFF, no reflection/xor)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def frame(seq: int | str, body: str | bytes) -> bytes:
    """A correctly framed line (commands and replies share the framing)."""
    raw = body.encode() if isinstance(body, str) else body
    head = str(seq).encode() + b" " + raw
    return head + b"*%04X\n" % crc16(head)


class Host:
    """A minimal host written for these tests: sends frames, checks replies."""

    def __init__(self, clock: SimClock, device: RFFirmware) -> None:
        self.clock = clock
        self.device = device
        self.seq = 1

    def send(self, body: str) -> int:
        seq = self.seq
        self.seq = (self.seq + 1) % 65536
        self.device.feed(frame(seq, body))
        return seq

    def ask(self, body: str) -> tuple[int, bytes]:
        seq = self.send(body)
        return seq, self.device.take()

    def expect(self, body: str, reply_body: str) -> None:
        seq, got = self.ask(body)
        assert got == frame(seq, reply_body), f"{body!r}"

    def ok(self, body: str) -> str:
        """Send ``body``, check the reply's framing, return its OK payload."""
        seq, got = self.ask(body)
        match = re.fullmatch(rb"(\d+) OK(?: ([ -~]+))?\*([0-9A-F]{4})\n", got)
        assert match is not None, f"{body!r} -> {got!r}"
        assert int(match.group(1)) == seq
        assert int(match.group(3), 16) == crc16(got[:-6])
        return (match.group(2) or b"").decode()

    def temps(self) -> tuple[float, float]:
        t1, t2 = self.ok("MEAS:TEMP?").split(",")
        return float(t1), float(t2)

    def heartbeat_until(self, t_end: float, body: str = "SYST:HEART") -> list[bytes]:
        """Send ``body`` every 50 ms until ``t_end``; the replies, one per tick."""
        replies = []
        while self.clock.now() + 0.05 <= t_end + 1e-9:
            self.clock.sleep(0.05)
            replies.append(self.ask(body)[1])
        self.clock.sleep_until(t_end)
        return replies


def make(*faults: str, seed: int = 0, **options: str) -> tuple[SimClock, RFFirmware, Host]:
    clock = SimClock(T0)
    device = RFFirmware(clock, seed=seed, faults=faults, **options)
    return clock, device, Host(clock, device)


def booted(*faults: str, seed: int = 0, **options: str) -> tuple[SimClock, RFFirmware, Host]:
    """A device just out of its 1 s boot, spoken to at once (no watchdog trip yet)."""
    clock, device, host = make(*faults, seed=seed, **options)
    clock.sleep_until(T0 + 1.0)
    return clock, device, host


def heating(power: str = "10", *faults: str) -> tuple[SimClock, RFFirmware, Host]:
    clock, device, host = booted(*faults)
    host.expect("*CLS", "OK")
    host.expect(f"SOUR:POW {power}", "OK")
    host.expect("OUTP ON", "OK")
    return clock, device, host


# --------------------------------------------------------------------------- framing


def test_the_test_crc_has_the_spec_check_value() -> None:
    assert crc16(b"123456789") == 0x29B1
    assert frame(7, "*IDN?") == b"7 *IDN?*" + b"%04X\n" % crc16(b"7 *IDN?")


def test_nothing_is_answered_during_the_1_s_boot() -> None:
    clock, device, _ = make()
    device.feed(frame(1, "*IDN?"))
    assert device.take() == b""
    clock.sleep_until(T0 + 1.0 - 1e-6)
    device.feed(frame(2, "*IDN?"))
    assert device.take() == b""
    clock.sleep_until(T0 + 1.0)
    device.feed(frame(3, "*IDN?"))
    assert device.take() == frame(3, "OK " + IDN)


@pytest.mark.parametrize(
    ("command", "reply"),
    [
        ("*IDN?", "OK " + IDN),
        ("SYST:HEART", "OK"),
        ("SOUR:POW?", "OK 0.0"),
        ("OUTP?", "OK OFF"),
        ("MEAS:POW?", "OK 0.0"),
        ("STAT?", "OK 18"),  # POWER_ON_RESET | CONTACT_OK
        ("SYST:ERR?", 'OK 0,"No error"'),
        ("*CLS", "OK"),
        ("SOUR:POW 25", "OK"),
        ("SOUR:POW 60.0", "OK"),
        ("SOUR:POW 0", "OK"),
        ("SOUR:POW 0.5", "OK"),
        ("SOUR:POW 007.5", "OK"),
        ("OUTP OFF", "OK"),
        ("OUTP ON", "OK"),
    ],
)
def test_commands_on_a_fresh_device(command: str, reply: str) -> None:
    _, _, host = booted()
    host.expect(command, reply)


def test_seq_is_echoed_from_0_to_65535_in_any_order() -> None:
    _, device, _ = booted()
    for seq in (65535, 0, 42, 9, 10000):
        device.feed(frame(seq, "OUTP?"))
        assert device.take() == frame(seq, "OK OFF")


def test_setpoint_is_stored_with_one_decimal() -> None:
    _, _, host = booted()
    host.expect("SOUR:POW 25.5", "OK")
    host.expect("SOUR:POW?", "OK 25.5")
    host.expect("SOUR:POW 7", "OK")
    host.expect("SOUR:POW?", "OK 7.0")
    host.expect("SOUR:POW -0.0", "OK")
    host.expect("SOUR:POW?", "OK 0.0")


def test_output_state_power_and_status() -> None:
    _, device, host = heating("20")
    host.expect("OUTP?", "OK ON")
    host.expect("MEAS:POW?", "OK 20.0")
    host.expect("STAT?", "OK 3")  # OUTPUT_ON | CONTACT_OK
    assert device.output_on
    host.expect("OUTP OFF", "OK")
    host.expect("OUTP?", "OK OFF")
    host.expect("MEAS:POW?", "OK 0.0")
    host.expect("SOUR:POW?", "OK 20.0")
    assert [(on, why) for _, on, why in device.output_log] == [(True, "host"), (False, "host")]


def test_measurements_at_rest() -> None:
    _, _, host = booted()
    t1, t2 = host.temps()
    assert 33.2 <= t1 <= 33.8 and 33.2 <= t2 <= 33.9
    impedance = int(host.ok("MEAS:IMP?"))
    assert 50 <= impedance <= 300
    fields = host.ok("MEAS:ALL?").split(",")
    assert len(fields) == 6
    assert re.fullmatch(r"\d+\.\d", fields[0]) and re.fullmatch(r"\d+\.\d", fields[1])
    assert fields[2:] == [str(impedance), "0.0", "OFF", "18"]


def test_two_lines_in_one_write_and_a_line_split_byte_by_byte() -> None:
    _, device, _ = booted()
    device.feed(frame(1, "OUTP?") + frame(2, "SOUR:POW?"))
    assert device.take() == frame(1, "OK OFF") + frame(2, "OK 0.0")
    for byte in frame(3, "*IDN?"):
        device.feed(bytes([byte]))
    assert device.take() == frame(3, "OK " + IDN)


def test_take_honours_max_bytes_and_pending() -> None:
    _, device, _ = booted()
    device.feed(frame(5, "OUTP?"))
    expected = frame(5, "OK OFF")
    assert device.pending() == len(expected)
    assert device.take(3) == expected[:3]
    assert device.pending() == len(expected) - 3
    assert device.take() == expected[3:]
    assert device.pending() == 0


# --------------------------------------------------------------------------- bad input


def _with_crc(head: bytes) -> bytes:
    return head + b"*%04X" % crc16(head)


def _lower_case_crc_line() -> bytes:
    """A valid frame except that its CRC's hex letters are lower case."""
    seq = 1
    while not re.search(rb"[A-F]", b"%04X" % crc16(b"%d OUTP?" % seq)):
        seq += 1
    head = b"%d OUTP?" % seq
    return head + b"*%04x\n" % crc16(head)


BAD_LINES = {
    "bad crc": b"7 *IDN?*%04X\n" % (crc16(b"7 *IDN?") ^ 0x0001),
    "lower-case crc": _lower_case_crc_line(),
    "CR before LF": _with_crc(b"7 *IDN?") + b"\r\n",
    "no space": _with_crc(b"7*IDN?") + b"\n",
    "leading zero in seq": _with_crc(b"07 *IDN?") + b"\n",
    "seq above 65535": _with_crc(b"65536 *IDN?") + b"\n",
    "six-digit seq": _with_crc(b"000001 *IDN?") + b"\n",
    "negative seq": _with_crc(b"-1 *IDN?") + b"\n",
    "no seq": _with_crc(b" *IDN?") + b"\n",
    "no crc": b"7 *IDN?\n",
    "three-digit crc": _with_crc(b"7 *IDN?")[:-1] + b"\n",
    "empty body": _with_crc(b"7 ") + b"\n",
    "empty line": b"\n",
    "non-ASCII byte": _with_crc("7 *IDN?é".encode()) + b"\n",
    "control character": _with_crc(b"7 *ID\tN?") + b"\n",
    "129 bytes": _with_crc(b"7 " + b"X" * 121) + b"\n",
}


def test_bad_line_table_is_what_it_says() -> None:
    assert BAD_LINES["bad crc"] != frame(7, "*IDN?")
    assert len(BAD_LINES["bad crc"]) == len(frame(7, "*IDN?"))
    assert re.search(rb"\*[0-9a-f]*[a-f][0-9a-f]*\n$", BAD_LINES["lower-case crc"])
    assert len(BAD_LINES["129 bytes"]) == 129


@pytest.mark.parametrize("name", sorted(BAD_LINES))
def test_bad_lines_are_discarded_silently_and_queue_301(name: str) -> None:
    _, device, host = booted()
    device.feed(BAD_LINES[name])
    assert device.take() == b""
    host.expect("STAT?", "OK 82")  # ERROR_QUEUED | POWER_ON_RESET | CONTACT_OK
    host.expect("SYST:ERR?", FRAME_ERROR)
    host.expect("SYST:ERR?", 'OK 0,"No error"')


def test_a_line_of_exactly_128_bytes_is_a_valid_frame() -> None:
    _, device, _ = booted()
    line = _with_crc(b"7 " + b"X" * 120) + b"\n"
    assert len(line) == 128
    device.feed(line)
    assert device.take() == frame(7, 'ERR -113,"Undefined header"')


def test_an_endless_line_is_one_frame_error_and_the_next_line_works() -> None:
    _, device, host = booted()
    device.feed(b"1 " + b"A" * 300)
    device.feed(b"B" * 300 + b"\n")
    device.feed(frame(9, "OUTP?"))
    assert device.take() == frame(9, "OK OFF")
    host.expect("SYST:ERR?", FRAME_ERROR)
    host.expect("SYST:ERR?", 'OK 0,"No error"')


UNDEFINED = 'ERR -113,"Undefined header"'
DATA_TYPE = 'ERR -104,"Data type error"'
OUT_OF_RANGE = 'ERR -222,"Data out of range"'


@pytest.mark.parametrize(
    ("command", "reply"),
    [
        ("FOO", UNDEFINED),
        ("*idn?", UNDEFINED),
        ("MEAS:ALL", UNDEFINED),
        ("SOUR:POWER 5", UNDEFINED),
        (" OUTP?", UNDEFINED),
        ("SOUR:POW abc", DATA_TYPE),
        ("SOUR:POW 25.55", DATA_TYPE),
        ("SOUR:POW 5.", DATA_TYPE),
        ("SOUR:POW .5", DATA_TYPE),
        ("SOUR:POW +5", DATA_TYPE),
        ("SOUR:POW 1e1", DATA_TYPE),
        ("SOUR:POW", DATA_TYPE),
        ("SOUR:POW  25", DATA_TYPE),
        ("SOUR:POW 25 ", DATA_TYPE),
        ("OUTP", DATA_TYPE),
        ("OUTP on", DATA_TYPE),
        ("OUTP MAYBE", DATA_TYPE),
        ("*IDN? now", DATA_TYPE),
        ("STAT? 1", DATA_TYPE),
        ("SOUR:POW 60.1", OUT_OF_RANGE),
        ("SOUR:POW -0.1", OUT_OF_RANGE),
        ("SOUR:POW 100", OUT_OF_RANGE),
        ("SOUR:POW 99999999999999", OUT_OF_RANGE),
    ],
)
def test_error_replies_leave_settings_unchanged_and_are_queued(command: str, reply: str) -> None:
    _, _, host = booted()
    host.expect("*CLS", "OK")
    host.expect("SOUR:POW 12.5", "OK")
    host.expect(command, reply)
    host.expect("SOUR:POW?", "OK 12.5")
    host.expect("OUTP?", "OK OFF")
    host.expect("STAT?", "OK 66")  # ERROR_QUEUED | CONTACT_OK
    host.expect("SYST:ERR?", "OK " + reply.removeprefix("ERR "))
    host.expect("SYST:ERR?", 'OK 0,"No error"')


def test_error_queue_keeps_16_oldest_first_and_marks_overflow() -> None:
    _, _, host = booted()
    host.expect("SOUR:POW 61", OUT_OF_RANGE)
    for _ in range(20):
        host.expect("NOPE", UNDEFINED)
    host.expect("SYST:ERR?", 'OK -222,"Data out of range"')
    for _ in range(14):
        host.expect("SYST:ERR?", 'OK -113,"Undefined header"')
    host.expect("SYST:ERR?", 'OK -350,"Queue overflow"')
    host.expect("SYST:ERR?", 'OK 0,"No error"')


def test_cls_clears_queue_and_latched_flags() -> None:
    clock, _, host = booted()
    host.expect("NOPE", UNDEFINED)
    clock.sleep(0.3)  # the watchdog trips
    host.expect("STAT?", "OK 90")  # ERROR_QUEUED | POWER_ON_RESET | WATCHDOG | CONTACT_OK
    host.expect("*CLS", "OK")
    host.expect("STAT?", "OK 2")
    host.expect("SYST:ERR?", 'OK 0,"No error"')


# --------------------------------------------------------------------------- watchdog


def test_watchdog_turns_output_off_exactly_250_ms_after_the_last_valid_frame() -> None:
    clock, device, host = heating("10")
    t_last = clock.now()
    clock.sleep_until(t_last + 0.1)
    device.feed(BAD_LINES["bad crc"])  # invalid frames do not feed the watchdog
    clock.sleep_until(t_last + 0.2)
    device.feed(b"garbage\n")
    assert device.take() == b""
    clock.sleep_until(t_last + 0.25 - 1e-9)
    assert device.output_on
    clock.sleep_until(t_last + 0.25)
    assert not device.output_on
    assert device.output_log[-1] == (t_last + 0.25, False, "watchdog")
    host.expect("STAT?", "OK 74")  # ERROR_QUEUED | WATCHDOG_TRIPPED | CONTACT_OK
    host.expect("OUTP ON", "OK")  # a tripped watchdog does not block output
    host.expect("OUTP?", "OK ON")


def test_any_valid_frame_feeds_the_watchdog_even_an_erroneous_one() -> None:
    clock, device, host = heating("5")
    commands = ["SYST:HEART", "FOO", "SOUR:POW 99", "OUTP?", "SOUR:POW x"]
    for i in range(25):
        clock.sleep(0.24)
        host.ask(commands[i % len(commands)])
    assert device.output_on
    assert [why for _, _, why in device.output_log] == ["host"]


def test_watchdog_runs_with_output_off() -> None:
    clock, device, host = booted()
    clock.sleep(0.25)
    host.expect("STAT?", "OK 26")  # POWER_ON_RESET | WATCHDOG_TRIPPED | CONTACT_OK
    assert device.output_log == []


# --------------------------------------------------------------------------- cut-off


def test_cutoff_at_45_c_latches_and_needs_cls_and_cooling() -> None:
    clock, device, host = heating("50")
    t_on = clock.now()
    while device.output_on:
        assert clock.now() < t_on + 60, "no cut-off"
        clock.sleep(0.05)
        host.expect("SYST:HEART", "OK")
    t_cut, on, reason = device.output_log[-1]
    assert (on, reason) == (False, "cutoff")

    # The same physics replayed at the firmware's 100 Hz: the first sample at or
    # above 45.0 on the hotter sensor (offset +0.05) is when output went off.
    reference = SkinModel()
    t_ref = t_on
    while reference.sensor_clean_c(2) < 45.0:
        reference.integrate(0.01, 50.0)
        t_ref += 0.01
    assert t_cut == pytest.approx(t_ref, abs=1e-6)
    assert 8.0 < t_cut - t_on < 15.0  # about 1.1 degC/s at 50 W

    assert 45.0 < device.peak_skin_c < 46.5  # the surface leads the lagged sensors
    assert int(host.ok("STAT?")) & 0b101 == 0b100  # OVERTEMP_CUTOFF, output off
    host.expect("OUTP ON", 'ERR -221,"Settings conflict"')
    host.expect("*CLS", "OK")
    host.expect("OUTP ON", 'ERR -221,"Settings conflict"')  # sensors still >= 44.0
    while device.skin.sensor_clean_c(2) >= 43.9:
        host.heartbeat_until(clock.now() + 1.0)
    host.expect("OUTP ON", "OK")
    host.expect("OUTP?", "OK ON")


def test_peak_skin_tracks_the_rise_after_output_off() -> None:
    clock, device, host = heating("40")
    host.heartbeat_until(clock.now() + 5.0)
    host.expect("OUTP OFF", "OK")
    at_off = device.skin_true_c
    clock.sleep(30.0)  # one long silent step: the peak inside it is still seen
    assert device.skin_true_c < at_off
    assert device.peak_skin_c > at_off + 0.05


# --------------------------------------------------------------------------- faults


def test_sensor_open_reads_nan_turns_output_off_and_blocks_on() -> None:
    clock, device, host = heating("10", "sensor_open@3s+2s:sensor=2")
    host.heartbeat_until(T0 + 3.0 - 0.01)
    assert device.output_on
    clock.sleep_until(T0 + 3.0)
    assert device.output_log[-1] == (T0 + 3.0, False, "sensor")
    t1, t2 = host.ok("MEAS:TEMP?").split(",")
    assert t2 == "NAN" and 33.0 < float(t1) < 35.0
    assert int(host.ok("STAT?")) & 0b100001 == 0b100000  # SENSOR_FAULT, output off
    assert host.ok("MEAS:ALL?").split(",")[1] == "NAN"
    host.expect("OUTP ON", 'ERR -221,"Settings conflict"')
    host.heartbeat_until(T0 + 5.0)
    assert "NAN" not in host.ok("MEAS:TEMP?")
    assert int(host.ok("STAT?")) & 0b100000 == 0
    host.expect("OUTP ON", "OK")


def test_sensor_stuck_freezes_one_reading_without_noise() -> None:
    clock, _, host = heating("30", "sensor_stuck@3s")
    host.heartbeat_until(T0 + 3.0)
    readings = []
    for _ in range(100):
        host.heartbeat_until(clock.now() + 0.1, "SYST:HEART")
        readings.append(host.temps())
    assert len({t1 for t1, _ in readings}) == 1
    assert readings[-1][1] - readings[0][1] > 3.0  # the other sensor sees the heating


def test_overlapping_stuck_faults_keep_the_first_frozen_value() -> None:
    _, _, host = heating("30", "sensor_stuck@2s", "sensor_stuck@4s+4s")
    host.heartbeat_until(T0 + 2.0)
    first = host.temps()[0]
    host.heartbeat_until(T0 + 6.0)
    assert host.temps()[0] == first
    host.heartbeat_until(T0 + 9.0)
    assert host.temps()[0] == first


def test_sensor_drift_offsets_sensor_2_by_default() -> None:
    _, _, host = booted("sensor_drift@2s")
    host.heartbeat_until(T0 + 1.9)
    before = [host.temps() for _ in range(40)]
    assert statistics.fmean(t2 for _, t2 in before) == pytest.approx(33.55, abs=0.05)
    host.heartbeat_until(T0 + 12.0)
    after = [host.temps() for _ in range(40)]
    assert statistics.fmean(t1 for t1, _ in after) == pytest.approx(33.5, abs=0.05)
    assert statistics.fmean(t2 for _, t2 in after) == pytest.approx(33.55 - 3.0, abs=0.05)


def test_sensor_drift_rate_and_sensor_parameters() -> None:
    _, _, host = booted("sensor_drift@1s+4s:sensor=1,rate=0.5")
    host.heartbeat_until(T0 + 5.0 - 1e-6)
    t1, _ = host.temps()
    assert t1 == pytest.approx(33.5 + 2.0, abs=0.25)
    host.heartbeat_until(T0 + 5.0)
    t1, _ = host.temps()
    assert t1 == pytest.approx(33.5, abs=0.25)  # the offset goes when the fault ends


def _rise_in_one_second(*faults: str, power: str = "10") -> tuple[float, str]:
    clock, device, host = heating(power, *faults)
    start = device.skin_true_c
    host.heartbeat_until(clock.now() + 1.0)
    return device.skin_true_c - start, host.ok("MEAS:POW?")


def test_runaway_heats_far_beyond_the_setpoint_while_meas_pow_reports_the_setpoint() -> None:
    healthy_rise, healthy_power = _rise_in_one_second()
    runaway_rise, runaway_power = _rise_in_one_second("runaway@0s")
    assert healthy_rise < 0.5
    assert runaway_rise > 3.0
    assert healthy_power == runaway_power == "10.0"
    custom_rise, _ = _rise_in_one_second("runaway@0s:gain=2,floor_w=0")
    assert custom_rise == pytest.approx(2 * healthy_rise, rel=0.05)


def test_runaway_does_not_heat_with_output_off() -> None:
    clock, device, host = booted("runaway@0s")
    host.expect("SOUR:POW 10", "OK")
    host.heartbeat_until(clock.now() + 2.0)
    assert device.skin_true_c == pytest.approx(33.5, abs=1e-6)


def test_no_reply_silences_the_device_and_its_watchdog_fires() -> None:
    clock, device, host = heating("10", "no_reply@2s+1s")
    replies = []
    while clock.now() < T0 + 4.0:
        clock.sleep(0.05)
        replies.append((clock.now(), host.ask("SYST:HEART")[1]))
        if T0 + 1.95 <= clock.now() < T0 + 2.0:
            device.feed(b"9 OUT")  # a partial line when the fault starts is lost
    answered = [t for t, reply in replies if reply]
    silent = [t for t, reply in replies if not reply]
    assert silent and all(T0 + 2.0 - 1e-9 <= t < T0 + 3.0 for t in silent)
    assert all(t < T0 + 2.0 or t >= T0 + 3.0 for t in answered)
    last_before = max(t for t in answered if t < T0 + 2.0)
    assert device.output_log[-1] == (last_before + 0.25, False, "watchdog")
    host.expect("OUTP ON", "OK")
    host.expect("SYST:ERR?", 'OK 0,"No error"')  # the partial line did not glue on


def test_garble_corrupts_bytes_both_ways_while_it_lasts() -> None:
    clock, _, host = booted("garble@2s+5s:rate=0.01")
    replies: list[tuple[float, bool]] = []
    while clock.now() < T0 + 9.0:
        clock.sleep(0.05)
        seq, got = host.ask("*IDN?")
        replies.append((clock.now(), got == frame(seq, "OK " + IDN)))
    before = [exact for t, exact in replies if t < T0 + 2.0]
    during = [exact for t, exact in replies if T0 + 2.0 <= t < T0 + 7.0]
    after = [exact for t, exact in replies if t >= T0 + 7.0]
    assert all(before)
    assert 0.3 < sum(during) / len(during) < 0.9
    # A garbled LF can glue the last line of the fault to the first one after it.
    assert all(after[1:])


def test_garble_at_rate_1_lets_no_frame_through() -> None:
    clock, device, host = heating("10", "garble@2s:rate=1")
    host.heartbeat_until(T0 + 2.0 - 0.01)
    assert device.output_on
    for _ in range(40):
        clock.sleep(0.05)
        seq, got = host.ask("SYST:HEART")
        assert frame(seq, "OK") not in got
    assert not device.output_on  # nothing valid reached the firmware: watchdog


def test_contact_loss_opens_impedance_turns_output_off_and_blocks_on() -> None:
    _, device, host = heating("10", "contact_loss@3s+2s")
    host.heartbeat_until(T0 + 3.0)
    assert device.output_log[-1] == (T0 + 3.0, False, "contact")
    host.expect("MEAS:IMP?", "OK OPEN")
    assert host.ok("MEAS:ALL?").split(",")[2:] == ["OPEN", "0.0", "OFF", "0"]
    host.expect("OUTP ON", 'ERR -221,"Settings conflict"')
    host.heartbeat_until(T0 + 5.0)
    assert 50 <= int(host.ok("MEAS:IMP?")) <= 300
    assert int(host.ok("STAT?")) & 0b10 == 0b10
    host.expect("OUTP ON", "OK")


def test_reset_reboots_the_device() -> None:
    clock, device, host = heating("20", "reset@3s")
    host.expect("FOO", UNDEFINED)
    host.heartbeat_until(T0 + 2.95)
    whole = frame(7, "*IDN?")
    device.feed(whole[:5])  # a partial line the reboot throws away
    clock.sleep_until(T0 + 3.0)
    assert device.output_log[-1] == (T0 + 3.0, False, "reset")
    during_boot = host.heartbeat_until(T0 + 3.95)
    assert len(during_boot) >= 18 and set(during_boot) == {b""}
    clock.sleep_until(T0 + 4.0)
    device.feed(whole[5:])  # the tail alone is a bad frame
    assert device.take() == b""
    host.expect("SYST:ERR?", FRAME_ERROR)  # only the new error: the queue was emptied
    host.expect("SYST:ERR?", 'OK 0,"No error"')
    host.expect("SOUR:POW?", "OK 0.0")
    host.expect("OUTP?", "OK OFF")
    host.expect("STAT?", "OK 18")


# --------------------------------------------------------------------------- determinism, options


def _session(seed: int) -> tuple[bytes, list[tuple[float, bool, str]]]:
    _, device, host = booted("garble@3s+1s:rate=0.02", "sensor_drift@1s", seed=seed)
    host.expect("SOUR:POW 25", "OK")
    host.expect("OUTP ON", "OK")
    out = b"".join(host.heartbeat_until(T0 + 6.0, "MEAS:ALL?"))
    return out, list(device.output_log)


def test_same_seed_same_bytes_different_seed_different_noise() -> None:
    first = _session(3)
    assert len(first[0]) > 2000
    assert _session(3) == first
    assert _session(4)[0] != first[0]


def test_unknown_option_is_rejected_naming_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match=r"'warmth'.*skin0"):
        RFFirmware(SimClock(), warmth="1")


def test_skin0_option_sets_the_rest_surface() -> None:
    _, device, host = booted(skin0="32.0")
    assert device.skin_true_c == pytest.approx(32.0, abs=1e-9)
    assert statistics.fmean(host.temps()[0] for _ in range(20)) == pytest.approx(32.0, abs=0.05)
    with pytest.raises(ValueError, match="skin0"):
        RFFirmware(SimClock(), skin0="warm")
    with pytest.raises(ValueError, match="skin0"):
        RFFirmware(SimClock(), skin0="40")


def test_bad_fault_text_is_rejected_at_creation() -> None:
    with pytest.raises(ValueError, match="unknown kind 'melt'"):
        RFFirmware(SimClock(), faults=["melt@1s"])


def test_closed_device_refuses_io() -> None:
    _, device, _ = booted()
    device.close()
    with pytest.raises(ValueError):
        device.feed(frame(1, "OUTP?"))
    with pytest.raises(ValueError):
        device.take()


def test_served_through_a_sim_url() -> None:
    from devicectl.transport import open_port

    clock = SimClock()
    port = open_port("sim://rf?seed=5&fault=contact_loss@0s&skin0=33", clock=clock)
    try:
        clock.sleep(1.0)
        port.write(frame(4, "MEAS:IMP?"))
        assert port.read(64) == frame(4, "OK OPEN")
        port.write(frame(5, "*IDN?"))
        assert port.read(64) == frame(5, "OK devicectl-sim,RF-60,SIM5,1.0.0")
    finally:
        port.close()


@pytest.mark.parametrize("separator", ["%2B", "+"])
def test_fault_duration_survives_url_decoding(separator: str) -> None:
    from devicectl.transport import open_port

    clock = SimClock()
    port = open_port(f"sim://rf?fault=contact_loss@0s{separator}2s", clock=clock)
    try:
        clock.sleep(1.0)
        port.write(frame(1, "MEAS:IMP?"))
        assert port.read(64) == frame(1, "OK OPEN")
        clock.sleep(1.0)
        port.write(frame(2, "MEAS:IMP?"))
        assert port.read(64) != frame(2, "OK OPEN")
    finally:
        port.close()
