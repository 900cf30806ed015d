"""The *Sparsity* page: prune a digits model gradually and watch accuracy, sparsity and the
measured speed of dense, CSR and block-sparse kernels on the session's device, step by step.

Start trains the dense model, then runs a :class:`~workbench.sparse.GradualPruner` one step at a
time in a worker thread: each step adds a point to the accuracy-vs-sparsity curve, the latency of
the largest layer's product in the three formats (crossover marked) and the per-layer sparsity
bars. Stop ends the run after the current step (fine-tuning is cut short); Resume goes on from
there. Every step is in the store, so a reload lists the runs of this device and shows the newest.
Crossover sweep measures the three formats on a larger matrix with block-structured zeros.
"""

from __future__ import annotations

import panel as pn

from workbench.data import digits
from workbench.jobs import Job
from workbench.nn import MODELS, train
from workbench.recipes import recipe
from workbench.sparse import GradualPruner, crossover_sweep, load_prune_runs
from workbench.viz import FormatLatencyFigure, LayerSparsityFigure, PruneCurveFigure

from .jobs import PageJobs
from .session import Session

KINDS = ("MLP", "ConvNet")  # the models this page prunes


def sweep_shape(rt) -> tuple[int, int, int]:
    """(m, k, n) of the crossover sweep: a large layer times a batch, smaller off the GPU."""
    return (2048, 2048, 256) if rt.kind == "opencl-gpu" else (512, 512, 64)


def _run_label(run: dict, steps) -> str:
    p = run["params"]
    last = steps[-1] if steps else None
    reached = f", reached {last.sparsity:.2f} at {last.accuracy:.4f}" if last else ""
    return (f"#{run['id']} {p.get('model', '?')} to {p.get('final_sparsity', 0):.2f} "
            f"({p.get('scope', '')}, {run['status']}{reached})")


class SparsityPage(pn.viewable.Viewer):
    def __init__(self, session: Session, **params):
        super().__init__(**params)
        self.session = session
        self.data = digits()
        self.pruner: GradualPruner | None = None
        self.model_select = pn.widgets.Select(label="Model", options=list(KINDS), value="MLP", width=120)
        self.final = pn.widgets.FloatSlider(label="Final sparsity", start=0.5, end=0.98, step=0.01, value=0.9,
                                            width=180)
        self.steps = pn.widgets.IntInput(label="Pruning steps", value=10, start=1, end=50, width=110)
        self.epochs = pn.widgets.IntInput(label="Fine-tune epochs / step",
                                          value=recipe("MLP").finetune_epochs,
                                          start=0, end=20, width=150)
        self.scope = pn.widgets.Select(label="Scope", options=["global", "layer"], value="global", width=100)
        self.start_button = pn.widgets.Button(label="Start", color="primary", width=90)
        self.stop_button = pn.widgets.Button(label="Stop", color="warning", width=90, disabled=True)
        self.resume_button = pn.widgets.Button(label="Resume", color="success", width=90, disabled=True)
        self.sweep_button = pn.widgets.Button(label="Crossover sweep", width=150)
        self.stored = pn.widgets.Select(label="Stored runs on this device", options={}, width=520)
        self.status = pn.pane.Markdown("", css_classes=["wb-status"])
        self.jobs = PageJobs(self.status)
        self.curve = PruneCurveFigure(height=320, width=560)
        self.latency = FormatLatencyFigure(height=320, width=620, title="Largest layer")
        self.layers = LayerSparsityFigure(height=280, width=560)
        self.sweep = FormatLatencyFigure(height=280, width=620, title="Sweep")
        self.start_button.on_click(self._on_start)
        self.stop_button.on_click(self._on_stop)
        self.resume_button.on_click(self._on_resume)
        self.sweep_button.on_click(self._on_sweep)
        self.stored.param.watch(lambda e: self._show_stored(e.new), "value")
        self.model_select.param.watch(lambda e: setattr(self.epochs, "value", recipe(e.new).finetune_epochs),
                                      "value")
        session.param.watch(lambda _: self._load_stored(), "rt")
        self._load_stored()

    # -- stored runs --------------------------------------------------------------------------
    def _refresh_runs(self, select=None):
        """Re-read this device's runs from the store into the dropdown and show ``select`` (else
        the newest); returns the run shown, or None when there is none."""
        self._runs = {run["id"]: (run, steps) for run,
                      steps in load_prune_runs(self.session.rt, self.session.store)}
        self.stored.options = {_run_label(run, steps): rid for rid, (run, steps) in self._runs.items()}
        if not self._runs:
            self._show_steps([])
            return None
        rid = select if select in self._runs else max(self._runs)
        if self.stored.value == rid:
            self._show_stored(rid)
        else:
            self.stored.value = rid  # the watcher draws it
        return rid

    def _load_stored(self) -> None:
        rid = self._refresh_runs()
        if rid is not None:
            self.status.object = (f"Showing stored run #{rid} of **{self.session.rt.name}**. "
                                  "Press **Start** to prune a freshly trained model.")
        else:
            self.status.object = (f"No pruning runs yet on **{self.session.rt.name}**. Press **Start** to "
                                  f"train a model and prune it gradually.")

    def _show_stored(self, rid) -> None:
        if rid in self._runs:
            self._show_steps(self._runs[rid][1])

    def _show_steps(self, steps) -> None:
        with pn.io.unlocked():
            self.curve.set_steps(steps)
            self.latency.set_steps(steps)
            if steps:
                self.layers.set_step(steps[-1])
            else:
                self.layers.clear()

    # -- actions ------------------------------------------------------------------------------
    def _busy(self, busy: bool) -> None:
        self.start_button.disabled = busy
        self.sweep_button.disabled = busy
        self.stop_button.disabled = not busy
        self.resume_button.disabled = busy or self.pruner is None or self.pruner.done

    async def _on_start(self, _event=None) -> None:
        if self.jobs.busy:
            return
        rt, kind = self.session.rt, self.model_select.value
        r = recipe(kind)
        self._busy(True)
        try:
            model = MODELS[kind]()
            self.status.object = f"Training the dense **{kind}** on {rt.name} ({r.quick_epochs} epochs) ..."
            trained = Job.from_callback(lambda emit: train(model, self.data, epochs=r.quick_epochs, lr=r.lr,
                                                           rt=rt,
                                                           evaluate_every_epoch=False, on_step=emit),
                                        total=lambda rec: (rec["epoch"] + bool(rec.get("end_of_epoch")),
                                                           r.quick_epochs), label="training")
            await self.jobs.run(trained, label="Training")
            if trained.state != "finished":
                if trained.error is None:
                    self.status.object = "Stopped while training the dense model; press **Start** again."
                return
            self.pruner = GradualPruner(model, self.data, final_sparsity=self.final.value,
                                        n_steps=self.steps.value, finetune_epochs=self.epochs.value,
                                        lr=r.finetune_lr, scope=self.scope.value, rt=rt,
                                        store=self.session.store)
            self._show_steps([])
            await self._prune()
        finally:
            self._busy(False)

    async def _on_resume(self, _event=None) -> None:
        if self.pruner is None or self.pruner.done or self.jobs.busy:
            return
        self._busy(True)
        try:
            await self._prune()
        finally:
            self._busy(False)

    def _on_stop(self, _event=None) -> None:
        if self.jobs.busy:
            self.jobs.stop()
            self.status.object = "Stopping (a step's fine-tuning goes on where it stopped on Resume) ..."

    def _draw_steps(self, steps: list) -> None:
        for step in steps:
            self.curve.add_step(step)
            self.latency.add_step(step)
        last = steps[-1]
        self.layers.set_step(last)
        lat = ", ".join(f"{f} {t * 1e6:,.1f} µs" for f, t in last.latency_s.items())
        self.status.object = (f"Step {last.step}/{self.pruner.n_steps}: sparsity {last.sparsity:.3f} "
                              f"(target {last.target:.3f}), accuracy {last.accuracy:.4f}; "
                              f"largest layer {lat}")

    async def _prune(self) -> None:
        pruner, rt = self.pruner, self.session.rt
        self.stop_button.disabled = False
        left = pruner.n_steps + 1 - pruner.step_
        job = Job(pruner.run, total=lambda step: (step.step - (pruner.n_steps + 1 - left) + 1, left),
                  stop=pruner.stop, label="pruning")
        await self.jobs.run(job, self._draw_steps, label="Pruning")
        if job.error is None and pruner.history_:
            base = pruner.history_[0].accuracy
            last = pruner.history_[-1]
            verdict = "stopped; press **Resume** to go on" if not pruner.done else "finished and stored"
            self.status.object = (f"Run #{pruner.run_id_} on **{rt.name}** {verdict}: sparsity "
                                  f"{last.sparsity:.3f}, "
                                  f"accuracy {last.accuracy:.4f} (dense {base:.4f}, "
                                  f"{100 * (last.accuracy - base):+.2f} points).")
        self._refresh_runs(pruner.run_id_)

    async def _on_sweep(self, _event=None) -> None:
        if self.jobs.busy:
            return
        rt = self.session.rt
        m, k, n = sweep_shape(rt)
        self._busy(True)
        self.stop_button.disabled = True
        try:
            self.status.object = f"Timing dense, CSR and block-sparse {m}x{k} times {k}x{n} on {rt.name} ..."
            job = Job.from_callback(lambda emit: crossover_sweep(m, k, n, rt=rt, repeat=3), label="sweep")
            await self.jobs.run(job, label="Sweep")
            if job.error is not None:
                return
            result = job.result
            self.sweep.title = (f"Sweep {m}x{k} · {k}x{n}, zeros in {result['block_shape'][0]}x"
                                f"{result['block_shape'][1]} blocks")
            with pn.io.unlocked():
                self.sweep.set_rows(result["points"])
            cross = result["crossover"]
            said = ", ".join(f"{f.upper()} {'from %.2f' % c if c is not None else 'never'}" for f,
                             c in cross.items())
            self.status.object = f"Crossover on **{rt.name}** for {m}x{k} · {k}x{n}: {said}."
        finally:
            self._busy(False)

    def __panel__(self):
        return pn.Column(
            pn.pane.Markdown(
                "## Sparsity\nTrain a digits model, prune it gradually on Zhu & Gupta's schedule with "
                "fine-tuning between steps, and see at each step its accuracy, its sparsity per layer and "
                "the measured latency of its largest layer as a dense, CSR and block-sparse product on "
                "this device: does the sparsity pay here, and from where?"),
            pn.Row(self.model_select, self.final, self.steps, self.epochs, self.scope),
            pn.Row(self.start_button, self.stop_button, self.resume_button, self.sweep_button),
            self.stored,
            pn.Row(self.status, self.jobs.widgets()),
            pn.Row(pn.pane.Bokeh(self.curve.figure), pn.pane.Bokeh(self.latency.figure)),
            pn.Row(pn.pane.Bokeh(self.layers.figure), pn.pane.Bokeh(self.sweep.figure)),
            sizing_mode="stretch_width",
        )
