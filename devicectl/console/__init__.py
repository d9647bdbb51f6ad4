"""The technician console (``devicectl console``): a Textual app for the person at the chair.

Modules, one job each:

- ``backend``: builds the station (simulators or real ports), the loop thread,
  the session record, and chooses the clock (``--fast`` pacing is decided there);
- ``desk``: the console's member of the control loop (sign-in, E-stop, acknowledge);
- ``bridge``: the loop-thread to UI-thread hand-off (latest snapshot, bounded queues);
- ``snapshot``: the frozen views the screen renders, copied on the loop thread;
- ``alarms``: the alarm list in IEC 60601-1-8 order and colours;
- ``audible``: the alarm sound, a burst per priority, and its time-limited silence;
- ``keys``: the session's keys and those the devices' modalities declare;
- ``offers``: the keys the runner and the devices would take now (shown under
  the prompt: never a dead end);
- ``confirm``: what a resume will deliver, confirmed with C before it is sent;
- ``style`` / ``generic``: how a state, an output and a fault are drawn, and the
  panel of a modality that brings none of its own;
- ``panels`` / ``screens`` / ``app``: what is drawn, the screens, the key bindings.

The console never calls a driver: it sends commands to the control loop and
renders the loop's events. It names no modality: it iterates the registry
(``devicectl.modality.modalities``), and each device's view, panel, keys and
trace come from its modality's console hooks (``console_view``,
``render_panel``, ``console_actions``, ``console_trace``,
``console_trace_lines``, ``energy_summary``), in
``devicectl/modalities/<name>/console.py`` for the built-in ones.
"""
