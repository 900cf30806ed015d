"""Unsupervised digit recognition with STDP, after Diehl & Cook (2015).

An input layer of Poisson neurons (one per pixel, ``x * max_rate`` Hz) drives ``n_neurons``
excitatory LIF neurons through plastic synapses; every excitatory neuron inhibits all the others
(lateral inhibition, a soft winner-take-all); each has an adaptive threshold (each spike raises
it by ``theta_plus``), so no neuron wins every input. Learning is STDP alone: no labels, no
backprop. After each image the weights into each neuron are normalized to sum to
``weight_sum`` (Diehl & Cook's normalization), the membranes are reset, and the network rests.
An image that makes fewer than ``min_spikes`` excitatory spikes is shown again at a higher rate.

Labels come only afterwards: each neuron is assigned the class to which it responded most on
the training images (learning off, thresholds frozen), and an image is classified by the class
whose assigned neurons fire most on average.

Learned state: ``weights_`` (n_inputs, n_neurons) mV, ``theta_`` (n_neurons,) mV,
``assignments_`` (n_neurons,) class per neuron, ``history_`` (training spikes per image).
"""

from __future__ import annotations

import threading
from typing import Callable

import numpy as np

from ..errors import InputError
from ..runtime import resolve_rt
from ..store import resolve_store
from ..validation import as_array, number, positive_int
from .network import LIFLayer, PoissonGroup, SNNNetwork
from .params import LIFParams
from .stdp import STDP

TRAIN_KIND = "snn-train"  # store run kind of classifier training


class SNNImageClassifier:
    """Diehl & Cook style STDP classifier for images with intensities in [0, 1].

    n_neurons: excitatory neurons (<= 400 for the digits target). t_present / t_rest: ms per
    image and between images; dt: ms per step. max_rate: Hz of a full-intensity pixel.
    weight_sum: each neuron's in-coming weights sum (mV; default 0.1 mV x inputs x 2.5).
    w_inh: lateral inhibition (mV per spike). theta_plus: threshold step (mV). stdp: the rule
    (default: multiplicative, tau 20 ms, a_plus 0.02, a_minus 0.004, weights in [0, w_max]).
    epochs: passes over the training images. rt: runtime. seed: weights and Poisson inputs.

    The defaults are the digits recipe: on ``digits(scale="unit")`` with 200 training images held
    out for validation (1,147 left), 400 neurons and 3 epochs reached a test accuracy of
    0.855 +- 0.019 over seeds 0-4 (min 0.829, max 0.871; NumPy engine, 2 cores, 2026-12-03:
    ``workbench study diehl-cook``, docs/results/diehl-cook-2026-12-03/study.json); PoCL
    learns the same weights.
    """

    def __init__(self, n_neurons: int = 400, t_present: float = 100.0, *, t_rest: float = 20.0,
                 dt: float = 1.0, max_rate: float = 200.0, weight_sum: float | None = None,
                 w_max: float = 1.0, w_inh: float = 17.0, theta_plus: float = 0.2,
                 tau_m: float = 50.0, stdp: STDP | None = None, epochs: int = 3,
                 min_spikes: int = 5, seed: int = 0, rt=None):
        self.n_neurons = n_neurons
        self.t_present = t_present
        self.t_rest = t_rest
        self.dt = dt
        self.max_rate = max_rate
        self.weight_sum = weight_sum
        self.w_max = w_max
        self.w_inh = w_inh
        self.theta_plus = theta_plus
        self.tau_m = tau_m
        self.stdp = stdp
        self.epochs = epochs
        self.min_spikes = min_spikes
        self.seed = seed
        self.rt = rt
        self._stop = threading.Event()

    def stop(self) -> None:
        """End :meth:`fit` after the current image (from any thread); labels are not assigned."""
        self._stop.set()

    # -- the network ---------------------------------------------------------------------------
    def _params(self) -> LIFParams:
        return LIFParams(tau_m=self.tau_m, v_rest=-65.0, v_reset=-65.0, v_th=-52.0, t_ref=5.0, r_m=10.0,
                         dt=self.dt)

    def _rule(self) -> STDP:
        return self.stdp if self.stdp is not None else STDP(
            a_plus=0.02, a_minus=0.004, tau_plus=20.0, tau_minus=20.0, w_min=0.0, w_max=self.w_max,
            rule="multiplicative")

    def _network(self, n_in: int, weights: np.ndarray, theta, learn: bool):
        net = SNNNetwork()
        inp = net.add(PoissonGroup(n_in, rates=0.0, seed=self.seed + (0 if learn else 7919), name="input"))
        exc = net.add(LIFLayer(self.n_neurons, self._params(), theta_plus=self.theta_plus if learn else 0.0,
                               tau_theta=1e7, theta_init=theta, name="excitatory"))
        proj = net.connect(inp, exc, weights, plasticity=self._rule() if learn else None,
                           name="input->excitatory")
        inh = -self.w_inh * (1.0 - np.eye(self.n_neurons, dtype=np.float32))
        net.connect(exc, exc, inh, name="lateral inhibition")
        return net, inp, exc, proj

    def _check(self):
        positive_int(self.n_neurons, "n_neurons")
        positive_int(self.epochs, "epochs")
        positive_int(self.min_spikes, "min_spikes")
        for name in ("t_present", "dt", "max_rate", "w_max", "tau_m"):
            if number(getattr(self, name), name) <= 0:
                raise InputError(name, f"expected a positive value, got {getattr(self, name)}")
        for name in ("t_rest", "w_inh", "theta_plus"):
            if number(getattr(self, name), name) < 0:
                raise InputError(name, f"expected a non-negative value, got {getattr(self, name)}")
        if 2 * self.max_rate * self.dt * 1e-3 > 1:  # the rate may double on a retry
            raise InputError("max_rate",
                             f"twice {self.max_rate} Hz (a retry's rate) is above "
                             f"1/dt = {1e3 / self.dt:g} Hz")

    @staticmethod
    def _images(x, name: str = "x") -> np.ndarray:
        x = as_array(x, name, ndim=2, finite=True)
        if x.size and (x.min() < 0 or x.max() > 1):
            raise InputError(name, f"expected intensities in [0, 1] (e.g. digits(scale='unit')), "
                                   f"got [{x.min():g}, {x.max():g}]")
        return x

    def _present(self, sim, inp, x_i: np.ndarray, steps: int, rest: int, learn: bool) -> np.ndarray:
        """Show one image; returns the excitatory spike counts (n_neurons,)."""
        n_in = x_i.size
        counts = np.zeros(self.n_neurons, np.int64)
        for attempt in range(3):
            sim.set_rates(inp, x_i * self.max_rate * (1.0 + 0.5 * attempt))
            sim.set_state("excitatory", v=-65.0)
            rec = sim.run(steps)
            counts = rec.counts[n_in:]
            if counts.sum() >= self.min_spikes:
                break
        if rest:
            sim.set_rates(inp, 0.0)
            sim.run(rest)
        return counts

    # -- learning ------------------------------------------------------------------------------
    def fit(self, x, y=None, *, on_step: Callable[[dict], None] | None = None, report_every: int = 25,
            store=None, validation=None, test=None):
        """Learn receptive fields from ``x`` (n, features) by STDP, then (when ``y`` is given)
        assign labels. ``on_step`` gets a dict (image, epoch, images, weights, theta, spikes: the
        mean excitatory spikes per image since the last report) every ``report_every`` images and
        may return ``False`` to stop early; :meth:`stop` does the same from another thread.

        ``validation=(x_val, y_val)``: images held out of ``x`` (for choosing settings) whose
        accuracy is reported as ``validation_accuracy``; ``test=(x_test, y_test)``: the test
        split, reported once as ``test_accuracy``. ``store``: where the run is logged (None: the
        default store; False: nowhere; kind ``"snn-train"``: spikes and mean threshold at each
        report, then the accuracies), ending ``finished``, ``stopped`` (no labels then) or
        ``failed``."""
        for info in self.iter_fit(x, y, report_every=report_every, store=store, validation=validation,
                                  test=test):
            if on_step is not None and on_step(info) is False:
                self.stop()
        return self

    def iter_fit(self, x, y=None, *, report_every: int = 25, store=None, validation=None, test=None):
        """:meth:`fit` as a generator of its reports (the dicts ``on_step`` would get), for a
        job runner; closing it or :meth:`stop` ends learning (the run is ``stopped``)."""
        self._check()
        x = self._images(x)
        report_every = positive_int(report_every, "report_every")
        splits = {}
        for name, split in (("validation", validation), ("test", test)):
            if split is None:
                continue
            if y is None:
                raise InputError(name, "needs the training labels y to assign classes")
            if not isinstance(split, (tuple, list)) or len(split) != 2:
                raise InputError(name, f"expected (x_{name}, y_{name})")
            splits[name] = (self._images(split[0], name), np.asarray(split[1]))
        self._stop.clear()
        self.run_id_ = None
        store = resolve_store(store)
        if store is None:
            stopped = yield from self._learn(x, report_every, None)
            self._label(x, y, splits, None, stopped)
            return
        params = {k: getattr(self, k) for k in ("n_neurons", "t_present", "t_rest", "dt", "max_rate", "w_max",
                                                "w_inh", "theta_plus", "tau_m", "epochs", "seed")}
        with store.run(TRAIN_KIND, {**params, "images": len(x)}, device=resolve_rt(self.rt)) as run:
            self.run_id_ = run.id
            stopped = yield from self._learn(x, report_every, run)
            self._label(x, y, splits, run, stopped)
            if stopped:
                run.stop()

    def _label(self, x, y, splits: dict, run, stopped: bool) -> None:
        """Assign labels and measure the accuracies (not after a stop)."""
        if y is None or stopped:
            return
        r = self.responses(x)
        self.assign_labels(x, y, responses=r)
        metrics = {"train_accuracy": float(np.mean(self.predict(x, responses=r) == np.asarray(y)))}
        for name, (xs, ys) in splits.items():
            metrics[f"{name}_accuracy"] = self.score(xs, ys)
        self.metrics_ = metrics
        if run is not None:
            run.log(len(self.history_), **metrics)

    def _learn(self, x: np.ndarray, report_every: int, run):
        """The STDP epochs, yielding a report every ``report_every`` images; returns whether
        they were stopped early."""
        n, n_in = x.shape
        rng = np.random.default_rng(self.seed)
        ws = self.weight_sum if self.weight_sum is not None else 0.25 * n_in
        w0 = rng.uniform(0.0, 0.3 * self.w_max, (n_in, self.n_neurons)).astype(np.float32)
        w0 *= ws / w0.sum(0)
        w0 = np.minimum(w0, self.w_max)
        net, inp, exc, proj = self._network(n_in, w0, 0.0, learn=True)
        sim = net.simulator(self.rt, record=False, chunk_steps=self._steps(self.t_present))
        steps, rest = self._steps(self.t_present), self._steps(self.t_rest) if self.t_rest else 0
        self.history_ = []
        self.n_inputs_ = n_in
        stopped = False
        try:
            for epoch in range(self.epochs):
                for k, i in enumerate(rng.permutation(n)):
                    if self._stop.is_set():
                        stopped = True
                        break
                    counts = self._present(sim, inp, x[i], steps, rest, learn=True)
                    self.history_.append(int(counts.sum()))
                    w = sim.weights(proj)
                    sums = w.sum(0)
                    w *= ws / np.where(sums > 0, sums, 1.0)
                    np.minimum(w, self.w_max, out=w)
                    sim.set_weights(proj, w)
                    if (k + 1) % report_every == 0 or k + 1 == n:
                        theta = sim.state("excitatory")["theta"]
                        spikes = float(np.mean(self.history_[-((k % report_every) + 1):]))
                        if run is not None:
                            run.log(len(self.history_), epoch=epoch, spikes=spikes,
                                    theta_mean=float(theta.mean()))
                        yield {"image": k + 1, "epoch": epoch, "images": n, "weights": w, "theta": theta,
                               "spikes": spikes}
                if stopped:
                    break
        finally:  # also when the generator is closed: what was learned so far is kept
            self.weights_ = sim.weights(proj)
            self.theta_ = sim.state("excitatory")["theta"]
        return stopped or self._stop.is_set()

    def _isolation_steps(self) -> int:
        """Silent steps between evaluation images that leave no state behind: the refractory
        period runs out and the one-step delay ring of the lateral inhibition drains (the
        membrane is set to rest at the next image; thresholds are frozen then)."""
        return int(np.ceil(5.0 / self.dt)) + 1  # t_ref of _params() is 5 ms

    def _steps(self, ms: float) -> int:
        return max(1, int(round(ms / self.dt)))

    def responses(self, x) -> np.ndarray:
        """Excitatory spike counts (n, n_neurons) for each image, learning off, thresholds frozen."""
        if not hasattr(self, "weights_"):
            raise InputError("self", "call fit first")
        x = self._images(x)
        if x.shape[1] != self.n_inputs_:
            raise InputError("x", f"expected {self.n_inputs_} features, got {x.shape[1]}")
        net, inp, exc, proj = self._network(self.n_inputs_, self.weights_, self.theta_, learn=False)
        steps, rest = self._steps(self.t_present), self._isolation_steps()  # each image on its own
        sim = net.simulator(self.rt, record=False, chunk_steps=steps)
        return np.stack([self._present(sim, inp, xi, steps, rest, learn=False) for xi in x]) if len(x) else \
            np.zeros((0, self.n_neurons), np.int64)

    def assign_labels(self, x, y, responses: np.ndarray | None = None):
        """Each neuron's class: the one with the highest mean response over ``x``'s images."""
        y = np.asarray(y)
        if y.ndim != 1 or y.dtype.kind not in "iu" or len(y) != len(x):
            raise InputError("y", f"expected {len(x)} integer labels, got shape {y.shape}")
        r = self.responses(x) if responses is None else responses
        self.classes_ = np.unique(y)
        mean = np.stack([r[y == c].mean(0) for c in self.classes_])  # (classes, neurons)
        self.assignments_ = self.classes_[np.argmax(mean, 0)]
        return self

    def predict(self, x, responses: np.ndarray | None = None) -> np.ndarray:
        """The class whose assigned neurons fire most on average, per image."""
        if not hasattr(self, "assignments_"):
            raise InputError("self", "fit with labels (or assign_labels) first")
        r = self.responses(x) if responses is None else responses
        scores = np.stack([r[:, self.assignments_ == c].mean(1) if np.any(self.assignments_ == c)
                           else np.zeros(len(r)) for c in self.classes_], 1)
        return self.classes_[np.argmax(scores, 1)]

    def score(self, x, y) -> float:
        return float(np.mean(self.predict(x) == np.asarray(y)))
