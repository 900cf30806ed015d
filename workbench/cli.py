"""``workbench devices | roofline | bench | report | tune | dashboard | lab``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .errors import WorkbenchError


def _device_table(rows: list[dict], in_use: str) -> str:
    cols = [("", 1), ("id", 6), ("type", 4), ("name", 32), ("platform", 26), ("CUs", 4),
            ("MHz", 5), ("memory", 9), ("OpenCL", 10), ("fp16", 4), ("fp64", 4), ("int dot", 7)]
    out = ["  ".join(name.ljust(w) for name, w in cols)]
    for r in rows:
        version = r["opencl_version"].split(" ")[1] if r["opencl_version"].startswith("OpenCL ") else ""
        vals = ["*" if r["id"] == in_use else "", r["id"], r["type"], r["name"][:32],
                r["platform"][:26], str(r["compute_units"]), str(r["clock_mhz"] or ""),
                f"{r['global_mem_gib']:.1f} GiB" if r["global_mem_gib"] else "host",
                version, "yes" if r["fp16"] else "", "yes" if r["fp64"] else "",
                "yes" if r["integer_dot"] else ""]
        out.append("  ".join(v.ljust(w) for v, (_, w) in zip(vals, cols)))
    return "\n".join(out)


def tuning_line(rt) -> str:
    """Where ``rt``'s kernel tunables come from, and the command to tune it when nothing was
    measured on it or its architecture."""
    from .bench import tuning_status
    from .tune import estimate_seconds

    status = tuning_status(rt)
    if not status:
        return "NumPy backend: nothing to tune"
    if status["untuned"]:
        cmds = " and ".join(f"`workbench tune {fam}`" for fam in status["untuned"])
        return (f"untuned ({', '.join(status['untuned'])}: generic defaults): run {cmds} "
                f"(about {estimate_seconds(rt) * len(status['untuned']):.0f} s) for this device's own tiles")
    return "tuned: " + ", ".join(f"{k} from {v}" for k, v in status["sources"].items())


def cmd_devices(args) -> int:
    from .runtime import get_runtime, list_devices

    infos = list_devices()
    rows = [d.as_row() for d in infos]
    in_use = get_runtime(args.device).info.id
    tunings = {d.id: tuning_line(get_runtime(d.id)) for d in infos}
    if args.json:
        print(json.dumps({"in_use": in_use, "devices": [dict(r, tuning=tunings[r["id"]]) for r in rows]},
                         indent=2))
    else:
        print(_device_table(rows, in_use))
        print("\n* = the device the workbench picks (WORKBENCH_DEVICE, PYOPENCL_CTX, else the first GPU)")
        for d in infos:
            print(f"{d.id}: {tunings[d.id]}")
    return 0


def cmd_roofline(args) -> int:
    from . import config, roofline
    from .runtime import get_runtime

    rt = get_runtime(args.device)
    quick = bool(args.quick or config.quick())
    c = None if args.refresh else roofline.cached_ceilings(rt, quick=quick)
    if c is None:
        print(f"measuring ceilings of {rt.name} ...", flush=True)
        c = roofline.measure_ceilings(rt, quick=quick, on_result=lambda r, i, n: print(
            f"  [{i:2d}/{n}] {r.name:44s} {r.value:12,.1f} {r.unit}", flush=True))
    else:
        print(f"cached ceilings of {rt.name}, measured {c.measured_at} ({c.mode} mode; --refresh to measure "
              f"again)")
    for label, value in c.summary():
        print(f"  {label:18s} {value:>20s}")
    if c.bandwidth_gbs and c.fp32_gflops:
        print(f"  ridge point        {c.fp32_gflops / c.bandwidth_gbs:17.2f} FLOP/byte")
    for w in c.warnings:
        print(f"  warning: {w}")
    return 0


def cmd_bench(args) -> int:
    if args.per_core:  # before any OpenCL platform loads: PoCL fixes its thread count then
        os.environ["POCL_MAX_PTHREAD_COUNT"] = "1"
    from .bench import compare, format_row, load_reports, run_benchmarks, table_header
    from .runtime import get_runtime

    if args.compare and args.against:
        lines, regressed = compare(load_reports(args.compare), load_reports(args.against))
        print("\n".join(lines))
        return 1 if regressed else 0
    rt = get_runtime(args.device)
    print(f"device: {rt.name} ({rt.kind}){' per core' if args.per_core else ''}; {tuning_line(rt)}")
    print(table_header(), flush=True)
    report = run_benchmarks(args.suite or None, rt, quick=args.quick or None, per_core=args.per_core,
                            on_result=lambda r: print(format_row(r), flush=True))
    report.command = "workbench " + " ".join(sys.argv[1:]) if args.command_line is None else args.command_line
    print(f"reference: {report.reference}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        report.write_json(args.json)
        print(f"wrote {args.json}")
    if args.compare:
        lines, regressed = compare(load_reports(args.compare), report.as_dict())
        print("\n".join(["", f"against {args.compare}:", *lines]))
        if regressed:
            print("a ratio fell by more than 10%", file=sys.stderr)
            return 1
    return 0


def cmd_report(args) -> int:
    from .report import run

    ok, messages = run(check=args.check)
    print("\n".join(messages))
    return 0 if ok else 1


def cmd_study(args) -> int:
    from tqdm import tqdm

    from .jobs import Job, run_with_tqdm
    from .runtime import get_runtime
    from .snn.study import seed_study

    rt = get_runtime(args.device)
    print(f"Diehl & Cook on {rt.name}: {args.seeds} seeds, {args.neurons} neurons, {args.epochs} epoch(s)",
          flush=True)
    show = lambda r: tqdm.write(f"seed {r['seed']}: test {r['test_accuracy']:.4f}, validation "  # noqa: E731
                                f"{r['validation_accuracy']:.4f}, train {r['train_accuracy']:.4f} "
                                f"({r['seconds']:.0f} s)")
    # the study on the job runner: a tqdm bar over the seeds, Ctrl-C stops after the current one
    job = Job.from_callback(lambda emit: seed_study(range(args.seeds), n_neurons=args.neurons,
                                                    epochs=args.epochs, images=args.images, rt=rt,
                                                    on_seed=emit),
                            total=args.seeds, label="seeds")
    run_with_tqdm(job, show)
    if job.error is not None:
        raise job.error
    if job.state != "finished":
        print("stopped before the last seed: nothing written", file=sys.stderr)
        return 1
    study = job.result
    study["command"] = args.command_line or "workbench " + " ".join(sys.argv[1:])
    for m, v in study["summary"].items():
        print(f"{m}: {v['mean']:.4f} +- {v['sd']:.4f} (min {v['min']:.4f}, max {v['max']:.4f}, n {v['n']})")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(study, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


def cmd_tune(args) -> int:
    from .runtime import get_runtime
    from .runtime.kernels import user_tuning_path

    rt = get_runtime(args.device)
    print(f"tuning {args.family} on {rt.name} ...", flush=True)
    if args.family == "quant":
        from .quant.tune import tune_quant as tuner
        unit, rate = "GOP/s", "gops"
    else:
        from .tune import tune_gemm as tuner
        unit, rate = "GFLOP/s", "gflops"

    def show(res, i, n):
        value = getattr(res, rate)
        val = f"{value:10,.1f} {unit}" if value else res.error
        if getattr(res, "gbs", None):  # the quant tuner's int4_gemv stage
            val = f"{res.gbs:10,.1f} GB/s (int4_gemv)"
        print(f"  [{i:3d}/{n}] {res.config.describe():52s} {val}", flush=True)

    results = tuner(rt, size=args.size, quick=args.quick, on_result=show, record=not args.dry_run)
    best = results[0] if results else None
    if best is None or not getattr(best, rate):
        print("no candidate worked", file=sys.stderr)
        return 1
    print(f"best: {best.config.describe()} at {getattr(best, rate):,.1f} {unit}")
    if not args.dry_run:
        print(f"recorded in {user_tuning_path(args.family)}")
    return 0


def cmd_dashboard(args) -> int:
    from .dashboards.serve import serve

    serve(address=args.address, port=args.port, show=args.show,
          allow_origin=args.allow_websocket_origin, token=args.token)
    return 0


def cmd_lab(args) -> int:
    notebooks = Path(__file__).resolve().parents[1] / "notebooks"
    target = str(notebooks) if notebooks.is_dir() else os.getcwd()
    os.execvp(sys.executable, [sys.executable, "-m", "jupyterlab", target, *args.rest])
    return 0  # pragma: no cover


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="workbench", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    def with_device(sp):
        sp.add_argument("--device", default=None,
                        help="numpy, cpu, gpu, an id such as cl:0:0, or a name substring")
        return sp

    d = with_device(sub.add_parser("devices", help="list OpenCL devices and the one in use"))
    d.add_argument("--json", action="store_true", help="print JSON")
    d.set_defaults(fn=cmd_devices)

    r = with_device(sub.add_parser("roofline", help="show (or measure) the device's ceilings"))
    r.add_argument("--refresh", action="store_true", help="measure even when cached")
    r.add_argument("--quick", action="store_true", help="short measurements")
    r.set_defaults(fn=cmd_roofline)

    b = with_device(sub.add_parser("bench", help="run registered benchmarks"))
    b.add_argument("--suite", action="append", help="suite name (repeatable); default: all")
    b.add_argument("--json", default=None, metavar="PATH", help="write the report as JSON")
    b.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    b.add_argument("--per-core", action="store_true",
                   help="CPU devices: ours on one compute unit, references on one thread")
    b.add_argument("--compare", default=None, metavar="OLD",
                   help="an earlier report, or a folder of a campaign's reports: print each ratio's change; "
                        "exit 1 when one falls >10%% beyond the noise")
    b.add_argument("--against", default=None, metavar="NEW.json",
                   help="with --compare: compare two saved reports instead of running")
    b.add_argument("--command-line", default=None, help=argparse.SUPPRESS)
    b.set_defaults(fn=cmd_bench)

    rp = sub.add_parser("report", help="regenerate the tables in README.md and docs/ from docs/results/")
    rp.add_argument("--check", action="store_true", help="fail when a table differs from the JSON")
    rp.set_defaults(fn=cmd_report)

    t = with_device(sub.add_parser("tune", help="search kernel tunables on this device"))
    t.add_argument("family", choices=["gemm", "quant"])
    t.add_argument("--size", type=int, default=None, help="square problem size to time")
    t.add_argument("--quick", action="store_true")
    t.add_argument("--dry-run", action="store_true", help="do not record the result")
    t.set_defaults(fn=cmd_tune)

    st = with_device(sub.add_parser("study", help="Diehl & Cook's STDP classifier over seeds: mean +- sd"))
    st.add_argument("what", choices=["diehl-cook"])
    st.add_argument("--seeds", type=int, default=5, help="seeds 0 .. N-1 (default 5)")
    st.add_argument("--neurons", type=int, default=400)
    st.add_argument("--epochs", type=int, default=3)
    st.add_argument("--images", type=int, default=None, help="training images per seed (default: all)")
    st.add_argument("--json", default=None, metavar="PATH", help="write the study as JSON")
    st.add_argument("--command-line", default=None, help=argparse.SUPPRESS)
    st.set_defaults(fn=cmd_study)

    s = sub.add_parser("dashboard", help="serve the Panel dashboard")
    s.add_argument("--address", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=5006)
    s.add_argument("--show", action="store_true", help="open a browser")
    s.add_argument("--allow-websocket-origin", action="append", default=None, metavar="HOST[:PORT]",
                   help="origins browsers connect from (needed off loopback)")
    s.add_argument("--token", default=None,
                   help="password off loopback (default: WORKBENCH_DASHBOARD_TOKEN, else a generated one)")
    s.set_defaults(fn=cmd_dashboard)

    lab = sub.add_parser("lab", help="JupyterLab on the tutorial notebooks")
    lab.add_argument("rest", nargs=argparse.REMAINDER)
    lab.set_defaults(fn=cmd_lab)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except WorkbenchError as exc:
        print(f"workbench: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
