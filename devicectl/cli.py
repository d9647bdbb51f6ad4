"""The ``devicectl`` command line (Typer + Rich).

Errors that devicectl raises on purpose are shown as one clear line and a
non-zero exit code; ``--debug`` shows the traceback too.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.table import Table

from devicectl import plugins
from devicectl.errors import DevicectlError

app = typer.Typer(
    help="Control clinic energy-based treatment devices (RF, IPL, LED) and their simulators.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)
_state = {"debug": False}


@app.callback()
def main_options(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show log lines on the terminal.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    log_file: Annotated[
        Path | None,
        typer.Option(
            "--log-file",
            help="JSON-lines log file "
            "(default $DEVICECTL_LOG or ./devicectl-logs/devicectl.jsonl).",
        ),
    ] = None,
) -> None:
    from devicectl.logs import configure_logging

    _state["debug"] = debug
    configure_logging(log_file=log_file, verbose=verbose)


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="Simulator seed (runs are reproducible).")] = 7,
    hold_s: Annotated[float, typer.Option(help="Seconds to hold each zone at target.")] = 180.0,
    fault: Annotated[
        list[str] | None,
        typer.Option(help="Inject a simulator fault, e.g. runaway@90s (see docs/simulators.md)."),
    ] = None,
) -> None:
    """Run an RF treatment of five face zones on the simulator, in simulated time."""
    from devicectl.control.rf_controller import RFController
    from devicectl.demo import run_rf_demo

    progress = Progress(
        TextColumn("[bold]{task.description:<12}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
        transient=False,
    )
    tasks: dict[int, TaskID] = {}

    def show(rf: RFController, index: int) -> None:
        from devicectl.control.limits import FACE_ZONES

        if index not in tasks:
            tasks[index] = progress.add_task(FACE_ZONES[index], total=hold_s, status="")
        st = rf.status()
        skin = max(st["skin1_c"] or 0.0, st["skin2_c"] or 0.0)
        progress.update(
            tasks[index],
            completed=min(st["held_s"], hold_s),
            status=f"{st['state']:<10} {st['phase']:<4} skin {skin:4.1f} degC  "
            f"power {st['power_w']:4.1f} W  CEM43 {st['cem43']:.2f}",
        )

    wall_start = time.perf_counter()
    with progress:
        result = run_rf_demo(seed=seed, hold_s=hold_s, faults=tuple(fault or ()), progress=show)
    wall_s = time.perf_counter() - wall_start

    table = Table(title="RF treatment summary (simulated)")
    for col in ("zone", "outcome", "time to target s", "held s", "peak degC", "CEM43"):
        table.add_column(col, justify="left" if col in ("zone", "outcome") else "right")
    for z in result.zones:
        table.add_row(
            z.name,
            z.outcome,
            "-" if z.time_to_target_s is None else f"{z.time_to_target_s:.1f}",
            f"{z.held_s:.1f}",
            f"{z.peak_c:.1f}",
            f"{z.cem43:.3f}",
        )
    console.print(table)
    console.print(
        f"{result.simulated_s:.0f} simulated s in {wall_s:.2f} wall s "
        f"({result.simulated_s / wall_s:.0f}x), {result.ticks} ticks"
    )
    if not result.ok:
        err_console.print("[red]demo did not complete every zone[/red]")
        raise typer.Exit(1)


@app.command()
def devices() -> None:
    """List the drivers and simulators found through entry points."""
    table = Table(title="devicectl plugins")
    for col in ("kind", "name", "target", "package"):
        table.add_column(col)
    for group, kind in ((plugins.DRIVER_GROUP, "driver"), (plugins.SIMULATOR_GROUP, "simulator")):
        for info in plugins.list_plugins(group):
            table.add_row(kind, info.name, info.target, info.distribution)
    console.print(table)


@app.command()
def diagram(
    modality: Annotated[str, typer.Argument(help="Which controller: rf, ipl or led.")],
    fmt: Annotated[str, typer.Option("--format", help="mermaid or dot.")] = "mermaid",
) -> None:
    """Print a controller's state machine, generated from the live transition table."""
    from devicectl.diagram import diagram as draw

    typer.echo(draw(modality, fmt))


def main() -> None:
    try:
        app()
    except DevicectlError as exc:
        if _state["debug"]:
            raise
        err_console.print(f"[red]devicectl: {exc}[/red]")
        sys.exit(2)
