"""ipywidgets panels: thin adapters over library calls and ``workbench.viz`` figures."""

from .roofline import RooflinePanel

__all__ = ["RooflinePanel"]
