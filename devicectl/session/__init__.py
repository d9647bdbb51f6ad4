"""Sessions: protocol files, the runner that walks them, and the simulated station."""
