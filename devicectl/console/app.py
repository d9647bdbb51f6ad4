"""The technician console: a Textual app over one backend.

The backend is a :class:`StationBackend` (a client of the station service:
``devicectl console --station``; the PIN is asked at sign-in) or a
:class:`ConsoleBackend` (simulators in this process, for a demonstration or a
simulated session). The screens and keys are the same with both.

Emergency stop is Escape, bound on the App with ``priority=True``: priority
bindings are checked before any screen, dialog or focused widget (an Input
included), so it acts from every screen and every state. Escape because it is
the largest, corner key on clinic keyboards, found by touch with gloves, and
it means "stop" already; Space and Enter press the focused button and letters
are taken by the actions. A false press is safe: it only stops the devices.
Every screen also has a red EMERGENCY STOP button for a touch screen.

The UI polls the bridge every ``poll_s`` (0.1 s): it renders what the loop
copied out, and it sends commands without waiting for them. Everything the
operator does is sent with the signed-in operator id.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import ClassVar

from textual import events
from textual.app import App
from textual.binding import Binding, BindingType
from textual.widget import AwaitMount
from textual.widgets import Button, Input

from devicectl.console.alarms import AlarmBoard
from devicectl.console.audible import PATTERNS, SILENCE_S, AlarmSounder
from devicectl.console.backend import ConsoleBackend
from devicectl.console.confirm import ConfirmEnergyScreen
from devicectl.console.desk import DESK
from devicectl.console.offers import offers_text
from devicectl.console.panels import KEY_FOR
from devicectl.console.remote import StationBackend
from devicectl.console.screens import (
    ConfirmAbortScreen,
    ConfirmQuitScreen,
    HelpScreen,
    MainScreen,
    SignInScreen,
)
from devicectl.console.snapshot import Snapshot
from devicectl.control.events import AlarmPriority
from devicectl.errors import DevicectlError

POLL_S = 0.1
ESTOP_KEY = "escape"
STATION_DESK = "station"  # the station service's E-stop alarms come from its desk
# In the browser a burst is played by the page (web/app_index.html): this private
# OSC sequence, which a terminal ignores, tells it which priority to play.
WEB_ALARM_SIGNAL = "\x1b]7777;devicectl-alarm;{priority}\x07"

CSS = """
Screen { layout: vertical; }
#top-bar { height: 5; }  /* the prompt, and up to 4 lines of a step's instructions */
#prompt { width: 1fr; height: 5; padding: 0 1; content-align: left middle; }
.estop { background: red; color: white; text-style: bold; width: 30; height: 3; }
#session-line { height: 1; padding: 0 1; }
#device-strip { display: none; padding: 0 1; }  /* height: one row a device */
#main-grid { grid-size: 2; grid-columns: 1fr 1fr; }  /* rows: MainScreen */
.box { border: round $primary; padding: 0 1; }
#summary { display: none; height: auto; max-height: 16; }
#trace { height: 2fr; min-height: 7; max-height: 12; }  /* shares the rest with the alarms */
#trace-label { height: 1; }
#trace-chart { height: 1fr; }
#alarms { height: 1fr; min-height: 4; }
#status { height: 1; padding: 0 1; color: $warning; }
#actions { height: 3; }
.action { width: auto; min-width: 10; }
/* A small terminal (MainScreen): one line per device, a shorter chart, buttons in rows. */
MainScreen.-short #top-bar { height: 3; }
MainScreen.-short #prompt { height: 3; }
MainScreen.-short #main-grid { display: none; }
MainScreen.-short #device-strip { display: block; }
MainScreen.-short #trace { height: 8; }
MainScreen.-short #summary { max-height: 8; }
MainScreen.-narrow .estop { width: 24; }
MainScreen.-narrow #actions { layout: grid; grid-size: 6; grid-rows: 1; grid-gutter: 0; height: 2; }
MainScreen.-narrow .action { width: 1fr; height: 1; min-width: 0; border: none; padding: 0; }
MainScreen.-finished #summary { display: block; }
MainScreen.-finished #trace { display: none; }
#signin-box, #dialog { width: 72; height: auto; border: thick $primary; padding: 1 2; }
SignInScreen, HelpScreen { align: center middle; }
/* A question is a band across the top: the alarm list stays in sight below it. */
ConfirmScreen { align: center top; }
#confirm-dialog { width: 100%; max-width: 110; height: auto; border: thick $warning; }
#confirm-row, #confirm-buttons { height: 3; }
#confirm-row #dialog-text { width: 1fr; padding: 0 1; }
"""


class ConsoleApp(App[None]):
    """The console; ``start_loop=False`` leaves the loop to the caller (snapshot tests)."""

    TITLE = "devicectl console"
    ENABLE_COMMAND_PALETTE = False  # nothing at the chair but the session's own actions
    CSS = CSS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(ESTOP_KEY, "estop", "EMERGENCY STOP", priority=True),
        Binding("f1", "help", "Help"),
        Binding("h", "help", "Help", show=False),
    ]

    def __init__(
        self,
        backend: ConsoleBackend | StationBackend,
        *,
        operator: str | None = None,
        start_loop: bool = True,
        poll_s: float = POLL_S,
        wall_clock: Callable[[], float] = time.time,
        audio_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.backend = backend
        self.operator: str | None = None
        self.alarms = AlarmBoard(wall_clock)
        self.sounder = AlarmSounder()
        self._audio_clock = audio_clock
        self.snapshot: Snapshot | None = None
        self.notices: list[str] = []
        self._prefill = operator
        # Keys before the sign-in screen is up (None once it is): see ``on_event``.
        self._early_keys: list[events.Key] | None = []
        # The prompt (step, text) whose awaited key was sent: a snapshot still
        # showing it is older than that key (see ``_gate``).
        self._answered: tuple[int, str | None] | None = None
        self._start_loop = start_loop
        self._poll_s = poll_s

    # -- lifecycle ------------------------------------------------------------------

    async def on_event(self, event: events.Event) -> None:
        """Keys that arrive before the sign-in screen is up are held, then replayed into
        it (a served page sends what was typed while the console was starting: an
        "h" there is the operator id's first letter, not Help). Escape is never held."""
        early = self._early_keys
        if (
            early is not None
            and isinstance(event, events.Key)
            and not event.is_forwarded
            and event.key != ESTOP_KEY
        ):
            ready = isinstance(self.screen, SignInScreen) and isinstance(self.focused, Input)
            if not (ready and not early):
                early.append(events.Key(event.key, event.character))
                if ready:  # the field has the focus now: everything held, in order
                    self._replay_early_keys()
                return
            self._early_keys = None  # nothing held and the field is ready: as it comes
        await super().on_event(event)

    def _replay_early_keys(self) -> None:
        """Post the held keys again, in order (and hold no more)."""
        held, self._early_keys = self._early_keys or [], None
        for key in held:
            self.post_message(key)

    async def on_mount(self) -> None:
        if self._start_loop:
            try:
                started = self.backend.start()  # a station client's connects: awaited
                if inspect.isawaitable(started):
                    await started
            except DevicectlError as exc:
                self.exit(return_code=2, message=f"devicectl: {exc}")
                return
        self.push_screen(MainScreen(self.backend.modalities, self.backend.keys))
        await self._ask_sign_in(self._prefill)
        self.call_after_refresh(self._replay_early_keys)  # once its field has the focus
        self.set_interval(self._poll_s, self.refresh_from_loop)

    def _ask_sign_in(self, operator: str | None, error: str = "") -> AwaitMount:
        screen = SignInScreen(operator, self.backend.mode, self.backend.needs_pin, error)
        return self.push_screen(screen, self._signed_in)

    async def _signed_in(self, answer: tuple[str, str] | None) -> None:
        if not answer or not answer[0]:
            return
        operator, pin = answer
        try:
            if isinstance(self.backend, StationBackend):
                await self.backend.sign_in(operator, pin)
            else:
                self.backend.sign_in(operator)
        except DevicectlError as exc:
            self.say(f"sign-in failed: {exc}")
            self._ask_sign_in(operator, f"sign-in failed: {exc}")
            return
        self.operator = operator
        self.say(f"signed in as {operator}")

    async def on_unmount(self) -> None:
        if isinstance(self.backend, StationBackend):
            await self.backend.aclose()
        else:
            self.backend.close()

    # -- loop -> screen ----------------------------------------------------------------

    def refresh_from_loop(self) -> None:
        """Take what the loop copied out since the last poll and show it."""
        poll = self.backend.poll()
        if poll.snapshot is not None:
            self.snapshot = poll.snapshot
            session = poll.snapshot.session
            if session is not None:  # the alarms' time into the session counts from here
                self.alarms.session_start_s = session.started_s
        if any([self.alarms.add(alarm) for alarm in poll.alarms]):
            if self.sounder.silenced_until_s is not None:
                self.say("alarm sound back: a new alarm")
            self.sounder.new_alarm()  # a new alarm condition sounds at once, never silenced
        for notice in poll.notices:
            self.say(self._with_offers(notice))
        now_s = self._audio_clock()
        burst = self.sounder.update(now_s, self.alarms.highest_pending())
        if burst is not None:
            self.sound(burst)
        main = self._main()
        if main is not None:
            main.show(self.snapshot, self.alarms.ordered(), poll.trace)
            main.show_silence(self.sounder.silenced_for_s(now_s))

    def sound(self, priority: AlarmPriority) -> None:
        """One burst of ``priority``'s pattern: terminal bells, or in the browser the
        page's Web Audio (told by :data:`WEB_ALARM_SIGNAL`)."""
        if self.is_web and self._driver is not None:
            self._driver.write(WEB_ALARM_SIGNAL.format(priority=priority.name.lower()))
            return
        for offset_s in PATTERNS[priority].pulses_s:
            if offset_s <= 0:
                self.bell()
            else:
                self.set_timer(offset_s, self.bell)

    def _main(self) -> MainScreen | None:
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                return screen
        return None

    def _with_offers(self, notice: str) -> str:
        """A refusal, and what would be taken instead: never a dead end."""
        session = self.snapshot.session if self.snapshot is not None else None
        if session is None or not session.offers:
            return notice
        return f"{notice}  | {offers_text(session.offers)}"

    def say(self, text: str) -> None:
        """One line on the status bar (latest first); kept for the tests."""
        self.notices.append(text)
        main = self._main()
        if main is not None:
            main.say(text)

    # -- actions ---------------------------------------------------------------------

    def action_estop(self) -> None:
        self.backend.estop(self.operator)
        self.say("EMERGENCY STOP sent: every device to its safe state")

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.backend.keys))

    def _signed(self) -> str | None:
        if self.operator is None:
            self.say("sign in first")
        return self.operator

    def _session(self, action: str) -> None:
        operator = self._signed()
        if operator is not None:
            self.backend.send("session", action, operator)

    def _gate(self, action: str) -> None:
        """A prompt's answer (C A S N). The key of another prompt than the one shown is
        not sent: the status line says which key this prompt takes. A snapshot that
        still shows the prompt this console has just answered is older than that
        answer: the key is then sent, and the runner decides."""
        session = self.snapshot.session if self.snapshot is not None else None
        if session is not None and session.state == "waiting_confirm" and session.awaiting:
            shown = (session.current, session.prompt)
            if session.awaiting == action:
                self._answered = shown
            elif shown != self._answered and self._signed() is not None:
                pressed = KEY_FOR.get(action, action)
                wanted = KEY_FOR.get(session.awaiting, session.awaiting)
                prompt = session.prompt
                self.say(f"{pressed} does not answer this prompt: press {wanted} ({prompt})")
                return
        self._session(action)

    def action_confirm(self) -> None:
        self._gate("confirm")

    def action_arm(self) -> None:
        self._gate("arm")

    def action_start(self) -> None:
        self._gate("start")

    def action_next_zone(self) -> None:
        self._gate("next_zone")

    def action_pause(self) -> None:
        self._session("pause")

    def action_resume(self) -> None:
        """Resume; when it would put a paused device's energy back on, what it will
        deliver is shown first and confirmed with C (``confirm.py``)."""
        session = self.snapshot.session if self.snapshot is not None else None
        if session is None or not session.paused:
            self._session("resume")
            return
        if self._signed() is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._session("resume")
            else:
                self.say("resume not confirmed: nothing sent")

        title = f"Resume {', '.join(session.paused)}? Energy goes on again:"
        what = session.energy or "(no summary from this device's modality)"
        self.push_screen(ConfirmEnergyScreen(title, what), answered)

    def action_end(self) -> None:
        self._session("end")

    def action_device_action(self, device: str, action: str) -> None:
        """A device's own key (its modality's ``console_actions``): ``action`` to it."""
        operator = self._signed()
        if operator is not None:
            self.backend.send(device, action, operator)

    def action_silence(self) -> None:
        """Pause the alarm sound for SILENCE_S (recorded with the operator's id)."""
        operator = self._signed()
        if operator is None:
            return
        if self.alarms.highest_pending() is None:
            self.say("no alarm sounding")
            return
        self.sounder.silence(self._audio_clock(), SILENCE_S)
        self.backend.send(DESK, "alarm_silence", operator, seconds=SILENCE_S)
        self.say(f"alarm sound silenced for {SILENCE_S:.0f} s by {operator}")

    def session_under_way(self) -> bool:
        session = self.snapshot.session if self.snapshot is not None else None
        return session is not None and not session.finished

    async def action_quit(self) -> None:
        """Quit; while a session is under way only once confirmed, and then after
        every device is sent to its safe state (the session aborted, or, with nobody
        signed in, the E-stop)."""
        if not self.session_under_way():
            self.exit()
            return
        if isinstance(self.screen, ConfirmQuitScreen):
            return

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            if self.operator is not None:
                self.backend.send("session", "abort", self.operator)
            else:
                self.backend.estop(None)
            self.say("quitting: every device to its safe state")
            self.exit()

        self.push_screen(ConfirmQuitScreen(), answered)

    def action_abort(self) -> None:
        if self._signed() is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._session("abort")
                self.say("abort sent: every device to its safe state")

        self.push_screen(ConfirmAbortScreen(), answered)

    def action_acknowledge(self) -> None:
        """Acknowledge the oldest unacknowledged alarm, and its device's latched fault."""
        operator = self._signed()
        if operator is None:
            return
        entry = self.alarms.oldest()
        if entry is None:
            self.say("no alarm to acknowledge")
            return
        alarm = entry.alarm
        self.alarms.acknowledge(entry, operator)
        self.backend.send(DESK, "alarm_ack", operator, device=alarm.device, code=alarm.code)
        states = self.snapshot.device_states() if self.snapshot is not None else {}
        if alarm.device in (DESK, STATION_DESK):
            self.backend.send(DESK, "acknowledge", operator)  # the E-stop: every device
        elif states.get(alarm.device) in ("fault", "estop"):
            self.backend.send(DESK, "acknowledge", operator, device=alarm.device)
        self.say(f"acknowledged by {operator}: {alarm.message}")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "estop":
            event.stop()
            self.action_estop()
