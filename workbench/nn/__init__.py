"""Small trainable models (MLP, ConvNet, AttentionNet) used by compression and NAS.

Example::

    from workbench import data, nn
    ds = data.digits()
    model = nn.MLP((64, 128, 10))
    nn.train(model, ds, epochs=20)
    nn.evaluate(model, ds.x_test, ds.y_test)      # about 0.97
"""

from .io import load, save
from .layers import Conv2d, Dense, Flatten, Layer, MaxPool2d, MultiHeadSelfAttention, ReLU, Reshape
from .models import MLP, MODELS, AttentionNet, ConvNet, Sequential
from .optim import SGD, Adam, Optimizer
from .training import cross_entropy, evaluate, measure_latency, train

__all__ = [
    "MLP", "MODELS", "Adam", "AttentionNet", "Conv2d", "ConvNet", "Dense", "Flatten", "Layer", "MaxPool2d",
    "MultiHeadSelfAttention", "Optimizer", "ReLU", "Reshape", "SGD", "Sequential",
    "cross_entropy", "evaluate", "load", "measure_latency", "save", "train",
]
