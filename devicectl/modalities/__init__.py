"""The built-in treatment modalities, one package each (RF, IPL, LED).

Each package registers its :class:`~devicectl.modality.Modality` through the
``devicectl.modalities`` entry point in ``pyproject.toml``, exactly as a
third-party package registers its own; nothing else in devicectl names them.
"""
