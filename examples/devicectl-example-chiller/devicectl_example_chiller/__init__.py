"""A fourth treatment modality, outside devicectl: a skin-cooling (chiller) handpiece.

Everything a modality needs lives in this package and is registered through
entry points in its own ``pyproject.toml``; devicectl names none of it:

- :mod:`.device`: the device interface (a ``typing.Protocol``), the frozen
  reading and the fault bits;
- :mod:`.driver`: the host side of the CHL/1 wire protocol (``devicectl.drivers``
  entry point ``chiller_ascii``);
- :mod:`.simulator`: the device side of CHL/1, written from the protocol text
  only, with plate and skin physics, a 250 ms host watchdog and injected faults
  (``devicectl.simulators`` entry point ``chiller``);
- :mod:`.limits`, :mod:`.supervisor`, :mod:`.controller`: the cooling limits, the
  independent supervisor and the controller's state machine;
- :mod:`.console`: its view, panel and skin trace on the technician console;
- :mod:`.modality`: the ``chiller`` protocol-file step, the runner's plan, the
  console hooks, trace channels and the report section
  (``devicectl.modalities`` entry point ``chiller``).

The wire protocol is specified in this package's README.md.
"""
