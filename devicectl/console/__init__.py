"""The technician console (``devicectl console``): a Textual app for the person at the chair.

Modules, one job each:

- ``backend``: builds the station (simulators or real ports), the loop thread,
  the session record, and chooses the clock (``--fast`` pacing is decided there);
- ``desk``: the console's member of the control loop (sign-in, E-stop, acknowledge);
- ``bridge``: the loop-thread to UI-thread hand-off (latest snapshot, bounded queues);
- ``snapshot``: the frozen views the screen renders, copied on the loop thread;
- ``alarms``: the alarm list in IEC 60601-1-8 order and colours;
- ``panels`` / ``screens`` / ``app``: what is drawn, the screens, the key bindings.

The console never calls a driver: it sends commands to the control loop and
renders the loop's events.
"""
