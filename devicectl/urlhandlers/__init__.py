"""pyserial URL handlers (``protocol_<scheme>`` modules) that devicectl adds.

pyserial looks for ``<package>.protocol_<scheme>`` in every package listed in
``serial.protocol_handler_packages``; :func:`devicectl.transport.register_url_handlers`
adds this package to that list.
"""
