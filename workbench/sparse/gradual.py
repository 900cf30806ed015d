"""Gradual magnitude pruning on Zhu & Gupta's polynomial schedule, with fine-tuning between
pruning steps, streamed step by step and written to the store.

    s_t = s_f + (s_i - s_f) (1 - (t - t0) / (n dt))^3     for t0 <= t <= t0 + n dt

(s_i before t0, s_f after): prune fast while there are many redundant weights, slowly near the
end (Zhu & Gupta 2017, "To prune, or not to prune").
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Iterator

import numpy as np

from ..errors import InputError
from ..runtime import Runtime, resolve_rt
from ..store import resolve_store
from .prune import check_sparsity, global_magnitude_prune, magnitude_prune, model_sparsity

PRUNE_KIND = "prune"  # store run kind


def polynomial_schedule(t, initial_sparsity: float = 0.0, *, final_sparsity: float = 0.9,
                        start_step: int = 0, n_steps: int = 10, interval: int = 1):
    """Zhu & Gupta's sparsity at step ``t`` (a number or an array of steps)."""
    si = check_sparsity(initial_sparsity, "initial_sparsity")
    sf = check_sparsity(final_sparsity, "final_sparsity")
    if int(n_steps) < 1 or int(interval) < 1:
        raise InputError("n_steps", f"n_steps and interval must be >= 1, got {n_steps}, {interval}")
    frac = np.clip((np.asarray(t, np.float64) - start_step) / (int(n_steps) * int(interval)), 0.0, 1.0)
    s = sf + (si - sf) * (1.0 - frac) ** 3
    return float(s) if np.ndim(s) == 0 else s


@dataclass
class PruneStep:
    """One point of a gradual pruning run."""

    step: int
    target: float
    sparsity: float  # measured over all pruned layers
    accuracy: float
    layer_sparsity: dict = field(default_factory=dict)
    latency_s: dict = field(default_factory=dict)  # format -> seconds for the largest layer
    latency_range_s: dict = field(default_factory=dict)  # format -> (fastest, slowest) repeat

    def as_metrics(self) -> dict:
        out = {"target": self.target, "sparsity": self.sparsity, "accuracy": self.accuracy}
        out.update({f"latency_{k}_s": v for k, v in self.latency_s.items()})
        for k, (lo, hi) in self.latency_range_s.items():
            out.update({f"latency_lo_{k}": lo, f"latency_hi_{k}": hi})
        out.update({f"sparsity_{k}": v for k, v in self.layer_sparsity.items() if k != "total"})
        return out


class GradualPruner:
    """Prune ``model`` to ``final_sparsity`` in ``n_steps`` steps, fine-tuning
    ``finetune_epochs`` between steps, on Zhu & Gupta's schedule:

        s_t = s_f + (s_i - s_f) (1 - t / n)^3,    t = 1 .. n

    with s_i = ``initial_sparsity``, s_f = ``final_sparsity`` (fractions of zero weights in the
    pruned layers) and n = ``n_steps``; each step zeroes the smallest-magnitude weights until
    s_t is reached (masks keep them zero through fine-tuning), then fine-tunes.

    ``scope``: ``"global"`` (one threshold, :func:`global_magnitude_prune`) or ``"layer"`` (the
    same sparsity per layer). :meth:`run` yields a :class:`PruneStep` after the dense baseline
    (step 0) and after every pruning step; each is logged to ``store`` (run kind ``"prune"``;
    None: the default store, False: none). :meth:`stop` (from any thread) ends :meth:`run`
    soon: between steps, or inside a step's fine-tuning after the current batch. Calling
    :meth:`run` again resumes exactly where it stopped: a step interrupted during fine-tuning is
    neither pruned again nor counted, and its fine-tuning goes on from the last finished epoch.
    ``latency`` measures, at every step, the largest layer's product with a batch of
    ``latency_batch`` in dense, CSR and block-sparse form on ``rt``
    (:func:`~workbench.sparse.choose.format_latencies`).

    Example::

        g = GradualPruner(nn.MLP(), data.digits(), final_sparsity=0.9, n_steps=10).fit()
        g.history_[-1].accuracy, g.history_[-1].sparsity     # about 0.97 at 0.90

    Shapes: any model of :mod:`workbench.nn` with linear layers; ``history_`` one
    :class:`PruneStep` per step.
    """

    def __init__(self, model, data, *, final_sparsity: float = 0.9, n_steps: int = 10,
                 finetune_epochs: int = 5, initial_sparsity: float = 0.0, scope: str = "global",
                 layers=None, lr: float = 1e-3, batch_size: int = 32, seed: int = 0,
                 rt: Runtime | str | None = None, store=None, latency: bool = True,
                 latency_batch: int = 64):
        self.model, self.data = model, data
        self.final_sparsity = check_sparsity(final_sparsity, "final_sparsity")
        self.initial_sparsity = check_sparsity(initial_sparsity, "initial_sparsity")
        if int(n_steps) < 1:
            raise InputError("n_steps", f"must be >= 1, got {n_steps}")
        if int(finetune_epochs) < 0:
            raise InputError("finetune_epochs", f"must be >= 0, got {finetune_epochs}")
        if scope not in ("global", "layer"):
            raise InputError("scope", f"expected 'global' or 'layer', got {scope!r}")
        self.n_steps, self.finetune_epochs, self.scope = int(n_steps), int(finetune_epochs), scope
        self.layers, self.lr, self.batch_size, self.seed = layers, lr, batch_size, seed
        self.rt = resolve_rt(rt)
        self.store, self.latency, self.latency_batch = store, latency, int(latency_batch)
        self.history_: list[PruneStep] = []
        self.step_ = 0
        self.run_id_ = None
        self._pruned_step = 0  # the step whose pruning is applied (its fine-tuning may be unfinished)
        self._epochs_done = 0  # fine-tuning epochs finished within that step
        self._stop = threading.Event()

    def targets(self) -> list[float]:
        """The schedule's sparsity after each pruning step 1..n_steps."""
        return [polynomial_schedule(t, self.initial_sparsity, final_sparsity=self.final_sparsity,
                                    start_step=0, n_steps=self.n_steps)
                for t in range(1, self.n_steps + 1)]

    def stop(self) -> None:
        self._stop.set()

    @property
    def done(self) -> bool:
        return self.step_ > self.n_steps

    def _largest_layer(self):
        return max(self.model.linear_layers(), key=lambda nl: nl[1].weight.size)

    def _measure(self, step: int, target: float) -> PruneStep:
        from ..nn import evaluate
        from .choose import format_latencies

        acc = evaluate(self.model, self.data.x_test, self.data.y_test, rt=self.rt)
        ls = model_sparsity(self.model)
        lat, ranges = {}, {}
        if self.latency:
            _, layer = self._largest_layer()
            w_t = np.ascontiguousarray(layer.weight_matrix().T)  # (out, in): C^T = W^T X^T
            t = format_latencies(w_t, self.latency_batch, rt=self.rt, repeat=5, budget_s=0.2, spread=True)
            lat = {f: med for f, (med, _, _) in t.items()}
            ranges = {f: (lo, hi) for f, (_, lo, hi) in t.items()}
        return PruneStep(step, target, ls["total"], acc, ls, lat, ranges)

    def _record(self, point: PruneStep, run) -> None:
        self.history_.append(point)
        if run is not None:
            run.log(point.step, **point.as_metrics())

    def _params(self) -> dict:
        name, layer = self._largest_layer()
        return {"model": self.model.kind, "config": self.model.config(),
                "final_sparsity": self.final_sparsity,
                "n_steps": self.n_steps, "finetune_epochs": self.finetune_epochs, "scope": self.scope,
                "latency_layer": name, "latency_shape": [*layer.weight_matrix().T.shape, self.latency_batch]}

    def run(self) -> Iterator[PruneStep]:
        """Yield each step's :class:`PruneStep` (see the class docstring); the store run ends
        ``finished``, ``stopped`` (after :meth:`stop`, or when this generator is closed) or
        ``failed``."""
        self._stop.clear()
        store = resolve_store(self.store)
        if store is None:
            yield from self._steps(None)
            return
        if self.done:
            return
        ctx = store.run(PRUNE_KIND, self._params(), device=self.rt) if self.run_id_ is None else \
            store.run(PRUNE_KIND, resume=self.run_id_)
        with ctx as run:
            self.run_id_ = run.id
            yield from self._steps(run)
            if not self.done:
                run.stop()

    def _steps(self, run) -> Iterator[PruneStep]:
        from ..nn import train

        if self.step_ == 0:
            point = self._measure(0, 0.0)
            self._record(point, run)
            self.step_ = 1
            yield point
        targets = self.targets()
        while self.step_ <= self.n_steps and not self._stop.is_set():
            target = targets[self.step_ - 1]
            if self._pruned_step != self.step_:  # a fresh step (a resumed one is pruned already)
                prune = global_magnitude_prune if self.scope == "global" else magnitude_prune
                prune(self.model, target, self.layers)
                self._pruned_step, self._epochs_done = self.step_, 0
            remaining = self.finetune_epochs - self._epochs_done
            if remaining:
                interrupted = False

                def on_step(rec) -> bool:
                    nonlocal interrupted
                    if rec.get("end_of_epoch"):
                        self._epochs_done += 1
                    if self._stop.is_set():
                        interrupted = True
                        return False
                    return True

                train(self.model, self.data, epochs=remaining, lr=self.lr, batch_size=self.batch_size,
                      seed=self.seed + 1000 * self.step_ + self._epochs_done, rt=self.rt,
                      evaluate_every_epoch=False, on_step=on_step)
                if interrupted and self._epochs_done < self.finetune_epochs:
                    return  # stopped inside this step's fine-tuning: a resume goes on from here
            point = self._measure(self.step_, target)
            self._record(point, run)
            self.step_ += 1
            yield point

    def fit(self) -> "GradualPruner":
        """Run to the end (or until stopped)."""
        for _ in self.run():
            pass
        return self

    def summary(self) -> list[dict]:
        return [asdict(p) for p in self.history_]


def load_prune_runs(rt: Runtime | str | None = None, store=None) -> list[tuple[dict, list[PruneStep]]]:
    """Gradual pruning runs of ``rt``'s device in the store, newest first, each as (run, steps):
    ``run`` is the store's record (``params``, ``status``, ...), ``steps`` its :class:`PruneStep`
    points rebuilt from the logged metrics."""
    rt = resolve_rt(rt)
    store = resolve_store(store)
    if store is None:
        return []
    out = []
    for run in store.runs(PRUNE_KIND, device=rt):
        steps = []
        for v in store.metrics(run["id"]):
            if v.get("accuracy") is None:
                continue
            lat = {k[len("latency_"):-2]: x for k, x in v.items()
                   if k.startswith("latency_") and k.endswith("_s") and x is not None}
            layers = {k[len("sparsity_"):]: x for k, x in v.items() if k.startswith("sparsity_")}
            ranges = {f: (v[f"latency_lo_{f}"], v[f"latency_hi_{f}"]) for f in lat
                      if v.get(f"latency_lo_{f}") is not None and v.get(f"latency_hi_{f}") is not None}
            sparsity = v.get("sparsity") or 0.0
            steps.append(PruneStep(int(v["step"]), v.get("target") or 0.0, sparsity, v["accuracy"],
                                   {**layers, "total": sparsity}, lat, ranges))
        out.append((run, steps))
    return out
