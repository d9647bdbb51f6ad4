"""The station: one clock, one control loop, controllers wired to ports.

:mod:`devicectl.station.core` builds a station (``Station``) in any process;
:mod:`devicectl.station.service` serves one station to its clients (one process
per treatment chair); :mod:`devicectl.station.client` is the Python client;
:mod:`devicectl.station.auth` holds operators and tokens. Only the core is
imported here, so that ``from devicectl.station import Station`` stays light
and free of import cycles (the session layer imports it).
"""

from devicectl.station.core import Station, checked_driver, device_opener, driver_interface

__all__ = ["Station", "checked_driver", "device_opener", "driver_interface"]
