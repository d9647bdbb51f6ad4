"""State-machine diagrams drawn from the controllers' own transition tables.

Nothing here is hand-drawn: the diagram is a transitions ``GraphMachine``
built from the same ``STATES``/``TRANSITIONS`` the live controller uses.
"""

from __future__ import annotations

from devicectl.errors import ConfigError
from devicectl.modality import modalities


class _Model:
    """A bare model: the diagram needs the machine's shape, not a device."""


def diagram(modality: str, fmt: str = "mermaid") -> str:
    registered = modalities()
    if modality not in registered:
        raise ConfigError(f"no state machine for {modality!r} (known: {', '.join(registered)})")
    if fmt not in ("mermaid", "dot"):
        raise ConfigError(f"unknown diagram format {fmt!r} (mermaid or dot)")
    model = _Model()
    machine = registered[modality].machine(model, graph=True)
    source = str(machine.get_graph(title=f"devicectl {modality} controller").draw(None))
    if fmt == "mermaid":
        return source
    return _mermaid_to_dot(source)


def _mermaid_to_dot(mermaid: str) -> str:
    """Mermaid stateDiagram edges (``A --> B: label``) as Graphviz DOT, no graphviz needed."""
    lines = ["digraph controller {", "  rankdir=LR;"]
    for raw in mermaid.splitlines():
        line = raw.strip()
        if "-->" not in line:
            continue
        edge, _, label = line.partition(":")
        src, _, dst = (part.strip() for part in edge.partition("-->"))
        src = "start" if src == "[*]" else src
        lines.append(f'  "{src}" -> "{dst}" [label="{label.strip()}"];')
    lines.append("}")
    return "\n".join(lines)
