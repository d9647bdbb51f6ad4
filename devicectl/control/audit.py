"""One audited command path: every driver call a controller makes is recorded.

After labgrid's ``@step``: a call's name, its arguments, its result or its
exception, and its start and end times (the controller's clock) are kept, for
failures as well as successes. The controller wraps the device object its
opener returns in :class:`AuditedDevice`, so no call can bypass the audit, and
everything is emitted as one event kind, ``device_command``.

A *command* is what the controller meant (``output_on``, ``set_power``,
``safe_state``, ``connect``); it opens a :meth:`CommandAudit.command`, and the
driver calls made inside it are that command's ``calls``. A driver call made
outside any command (``clear_status`` on an acknowledgement or on the first
tick, a call by a second user of the same driver object) is a command of its
own. Either way the event carries::

    command     what was meant (a call outside any command: the driver method's name)
    args        its named arguments
    ok          it completed without an exception (safe_state: output off confirmed)
    result      what it returned (None for a command)
    error       "ExceptionType: message" when it failed, else None
    t_start_s   clock time when it began
    t_end_s     clock time when it ended
    calls       every driver call in it: call, args, ok, result, error, t_start_s, t_end_s

plus the command's own fields (``power_w``, ``confirmed`` ...) at the top level.

Reads are the exception: the tick's ``read()`` runs twenty times a second and
its values are recorded as readings already. A read outside a command is
recorded only when it fails, once per run of failures (a change of error text
starts a new run), and the first good read after such a run is recorded with
``failed_reads``, the number of reads that failed in between. A read made
inside a command (the IPL safe state reads its status back) is one of that
command's calls like any other.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from devicectl.clock import Clock

QUIET_CALLS = frozenset({"read"})  # audited when they fail (module docstring)


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _signature(method: Callable[..., Any]) -> inspect.Signature:
    """``inspect.signature(method)``; a bound method's is worked out once per function."""
    function = getattr(method, "__func__", None)
    if function is None:
        return inspect.signature(method)
    signature = _BOUND_SIGNATURES.get(function)
    if signature is None:
        signature = inspect.signature(method)
        if len(_BOUND_SIGNATURES) < 1024:
            _BOUND_SIGNATURES[function] = signature
    return signature


_BOUND_SIGNATURES: dict[Any, inspect.Signature] = {}


def _named_args(
    method: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The call's arguments by parameter name (by position when the signature is unknown)."""
    try:
        return dict(_signature(method).bind(*args, **kwargs).arguments)
    except (TypeError, ValueError):
        return {**{str(i): a for i, a in enumerate(args)}, **kwargs}


@dataclass
class AuditedCommand:
    """One command while it runs; the body may set ``ok``, ``result``, ``error`` and
    ``fields`` (what the command found out, e.g. ``confirmed``)."""

    command: str
    args: dict[str, Any]
    t_start_s: float
    fields: dict[str, Any] = field(default_factory=dict)
    ok: bool = True
    result: Any = None
    error: str | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)


class CommandAudit:
    """Records commands and driver calls as ``device_command`` events through ``emit``."""

    def __init__(self, clock: Clock, emit: Callable[..., None]) -> None:
        self._clock = clock
        self._emit = emit
        self._open: list[AuditedCommand] = []
        self._failed_reads = 0
        self._read_error: str | None = None

    @contextmanager
    def command(self, command: str, **args: Any) -> Iterator[AuditedCommand]:
        """One command: emitted when it ends, with its calls; an exception is recorded
        and re-raised. ``args`` are also top-level fields of the event."""
        step = AuditedCommand(command, args, self._clock.now())
        self._open.append(step)
        try:
            yield step
        except BaseException as exc:
            step.ok, step.error = False, _error_text(exc)
            raise
        finally:
            self._open.remove(step)
            self._emit_command(step)

    def call(
        self, name: str, method: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """Run one driver call and record it (see the module docstring for reads)."""
        t_start = self._clock.now()
        try:
            result = method(*args, **kwargs)
        except BaseException as exc:
            self._record(name, method, args, kwargs, t_start, ok=False, error=_error_text(exc))
            raise
        self._record(name, method, args, kwargs, t_start, ok=True, result=result)
        return result

    def _record(
        self,
        name: str,
        method: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        t_start_s: float,
        *,
        ok: bool,
        result: Any = None,
        error: str | None = None,
    ) -> None:
        extra: dict[str, Any] = {}
        if name in QUIET_CALLS and not self._open:
            if ok:
                if not self._failed_reads:
                    return
                extra["failed_reads"], self._failed_reads, self._read_error = (
                    self._failed_reads,
                    0,
                    None,
                )
            else:
                self._failed_reads += 1
                if error == self._read_error:
                    return
                self._read_error = error
        record = {
            "call": name,
            "args": _named_args(method, args, kwargs),
            "ok": ok,
            "result": result,
            "error": error,
            "t_start_s": t_start_s,
            "t_end_s": self._clock.now(),
        }
        if self._open:
            self._open[-1].calls.append(record)
            return
        step = AuditedCommand(name, {}, t_start_s, extra, ok, result, error, [record])
        self._emit_command(step, args=record["args"], t_end_s=record["t_end_s"])

    def _emit_command(
        self,
        step: AuditedCommand,
        *,
        args: dict[str, Any] | None = None,
        t_end_s: float | None = None,
    ) -> None:
        self._emit(
            "device_command",
            **step.args,
            **step.fields,
            command=step.command,
            args=step.args if args is None else args,
            ok=step.ok,
            result=step.result,
            error=step.error,
            t_start_s=step.t_start_s,
            t_end_s=self._clock.now() if t_end_s is None else t_end_s,
            calls=step.calls,
        )


class AuditedDevice:
    """The device as a controller sees it: every method call goes through the audit.

    Attributes that are not methods (a driver's port, its timeout) are the
    device's own. Assigning an attribute on this object replaces it here only.
    """

    def __init__(self, device: Any, audit: CommandAudit) -> None:
        self._device = device
        self._audit = audit

    def read(self, *args: Any, **kwargs: Any) -> Any:
        """The tick's read: audited like every call, with no work when it succeeds
        outside a command after a good read (nothing to record then: see the module
        docstring); any other case takes :meth:`CommandAudit.call`."""
        audit = self._audit
        method = self._device.read
        if audit._open or audit._failed_reads or args or kwargs:
            return audit.call("read", method, args, kwargs)
        t_start = audit._clock.now()
        try:
            return method()
        except BaseException as exc:
            audit._record("read", method, (), {}, t_start, ok=False, error=_error_text(exc))
            raise

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._device, name)
        if name.startswith("_") or not callable(attr):
            return attr
        audit = self._audit

        def audited(*args: Any, **kwargs: Any) -> Any:
            return audit.call(name, attr, args, kwargs)

        return audited

    def __repr__(self) -> str:
        return f"AuditedDevice({self._device!r})"
