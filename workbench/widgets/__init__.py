"""ipywidgets panels: thin adapters over library calls and ``workbench.viz`` figures."""

from .quantization import QuantizationPanel
from .roofline import RooflinePanel
from .sparsity import SparsityPanel
from .spikes import SpikeRasterPanel

__all__ = ["QuantizationPanel", "RooflinePanel", "SparsityPanel", "SpikeRasterPanel"]
