"""Spiking neural networks on OpenCL: LIF populations, event-driven propagation with delays,
STDP, spike encoders (see ``kernels/lif.cl`` and ``kernels/stdp.cl``).

Quick start::

    from workbench import snn
    net = snn.SNNNetwork()
    inp = net.add(snn.PoissonGroup(100, rates=20.0, seed=1))
    exc = net.add(snn.LIFLayer(50, snn.LIFParams(dt=0.1)))
    net.connect(inp, exc, weights)                    # (100, 50) mV, dense or CSR
    rec = snn.simulate(net, duration=200.0)           # SpikeRecord: times (ms), ids, rates()
"""

from .classifier import SNNImageClassifier
from .encoders import latency_encode, phase_encode, population_encode, rate_encode
from .live import LiveNetwork
from .network import LIFLayer, PoissonGroup, Projection, SNNNetwork, SpikeSource
from .params import LIFParams
from .record import SpikeRecord
from .reservoir import SNNTimeSeriesPredictor
from .simulator import Simulator, simulate
from .stdp import STDP

__all__ = [
    "LIFLayer", "LIFParams", "LiveNetwork", "PoissonGroup", "Projection", "SNNImageClassifier", "SNNNetwork",
    "SNNTimeSeriesPredictor", "STDP", "Simulator",
    "SpikeRecord", "SpikeSource", "latency_encode", "phase_encode", "population_encode",
    "rate_encode", "simulate",
]
