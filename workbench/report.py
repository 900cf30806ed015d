"""``workbench report``: the tables of README.md and docs/benchmarks.md, from the raw JSON.

Nobody types a measured number. A measurement campaign is a folder ``docs/results/<label>/``
holding the reports of ``workbench bench --json`` (three runs or more, plus ``--per-core`` runs on
a CPU), never edited by hand. This module reads every campaign and writes, between markers

    <!-- report:begin NAME -->  ...  <!-- report:end NAME -->

the tables the documents hold: per campaign and suite, every measured size, each figure the
median over runs with its min-max range, the threads on both sides, the reference, and the
per-core ratio where there are per-core runs. ``--check`` fails when a document differs from what
the JSON gives (``make test`` runs it); ``bench --compare`` (:func:`workbench.bench.compare`)
prints how each ratio moved between two reports.
"""

from __future__ import annotations

import json
import re
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError

SCHEMA = 2  # bench reports written since the fair-reference rework carry "schema": 2
BEGIN = "<!-- report:begin {name} -->"
END = "<!-- report:end {name} -->"
_BLOCK = re.compile(r"(<!-- report:begin (?P<name>[\w.-]+) -->\n)(?P<body>.*?)"
                    r"(<!-- report:end (?P=name) -->)", re.S)
SUITE_TITLES = {"roofline": "Ceilings and copy", "gemm": "SGEMM", "quant": "Integer kernels",
                "sparse": "Sparse kernels", "snn": "Spiking networks"}


def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


@dataclass
class Campaign:
    """The runs of one folder ``docs/results/<label>/``."""

    label: str
    reports: list[dict] = field(default_factory=list)  # full-thread runs
    per_core: list[dict] = field(default_factory=list)

    @property
    def device(self) -> str:
        return (self.reports or self.per_core)[0]["device"]

    @property
    def dates(self) -> str:
        days = sorted({r["date"][:10] for r in self.reports + self.per_core})
        return days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}"

    def commands(self) -> list[str]:
        return sorted({r.get("command", "") for r in self.reports + self.per_core if r.get("command")})


def load_campaigns(results: Path | None = None) -> list[Campaign]:
    """Every campaign under ``results`` (default ``docs/results``), by label."""
    results = results or repo_root() / "docs" / "results"
    out = []
    for folder in sorted(p for p in results.iterdir() if p.is_dir()):
        c = Campaign(folder.name)
        for path in sorted(folder.glob("*.json")):
            data = json.loads(path.read_text())
            if data.get("schema") != SCHEMA or data.get("quick"):
                continue  # older reports (kept as history) and quick runs make no table
            (c.per_core if data.get("per_core") else c.reports).append(data)
        if c.reports or c.per_core:
            out.append(c)
    return out


def _fmt_time(s: float) -> str:
    if s >= 1.0:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} us"


def _fmt_rate(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:,.3g}"


def _stat(values: list[float], fmt) -> str:
    """median and, over more than one run, the min-max range."""
    values = [v for v in values if v is not None]
    if not values:
        return ""
    med = statistics.median(values)
    if len(values) == 1 or fmt(min(values)) == fmt(max(values)):
        return fmt(med)
    return f"{fmt(med)} ({fmt(min(values))}-{fmt(max(values))})"


def _ratio(v: float) -> str:
    return f"{v:.2f}x"


def _rows(reports: list[dict], suite: str) -> dict[str, list[dict]]:
    by_name: dict[str, list[dict]] = defaultdict(list)
    for rep in reports:
        for r in rep["results"]:
            if r["suite"] == suite:
                by_name[r["name"]].append(r)
    return by_name


def _rate_cell(rs: list[dict]) -> str:
    """The rate a result is judged by: GB/s for what the bandwidth bounds, else GFLOP/s (GOP/s
    for integer work)."""
    bandwidth = rs[0].get("ceiling") == "bandwidth"
    if any(r.get("gbs") for r in rs) and (bandwidth or not any(r.get("gflops") for r in rs)):
        return _stat([r.get("gbs") for r in rs], _fmt_rate) + " GB/s"
    if any(r.get("gflops") for r in rs):
        name = rs[0]["name"].lower()
        unit = "GOP/s" if any(k in name for k in ("int8", "int32", "int4")) else "GFLOP/s"
        return _stat([r.get("gflops") for r in rs], _fmt_rate) + f" {unit}"
    return ""


def _threads(rs: list[dict]) -> str:
    ours = {r.get("threads") for r in rs}
    ref = {r.get("reference_threads") for r in rs}
    if ours == {None} and ref == {None}:
        return "GPU"
    show = lambda s: "/".join(str(x) for x in sorted(v for v in s if v is not None)) or "-"  # noqa: E731
    return f"{show(ours)} / {show(ref)}"


def suite_table(c: Campaign, suite: str) -> str:
    """One Markdown table: every result of ``suite`` in campaign ``c``."""
    full, core = _rows(c.reports, suite), _rows(c.per_core, suite)
    if not full and not core:
        return ""
    with_core = bool(core)
    head = ["benchmark", "time", "rate", "% of ceiling", "x ref", "threads (ours / ref)"]
    head += ["x ref per core"] if with_core else []
    head += ["reference", "runs"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in list(full) + [n for n in core if n not in full]:
        rs = full.get(name) or core[name]
        pct = _stat([r.get("pct_of_ceiling") for r in rs], lambda v: f"{v:.0f}%")
        if pct and rs[0].get("ceiling"):
            pct += f" {rs[0]['ceiling']}"
        cells = [name + (" (per core only)" if name not in full else ""),
                 _stat([r.get("median_s") for r in rs], _fmt_time), _rate_cell(rs), pct,
                 _stat([r.get("ratio") for r in rs], _ratio), _threads(rs)]
        if with_core:
            cells.append(_stat([r.get("ratio") for r in core.get(name, [])], _ratio))
        refs = sorted({r.get("reference") or "" for r in rs} - {""})
        cells += ["; ".join(refs), str(len(rs))]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def ceilings_table(c: Campaign) -> str:
    """The campaign's measured ceilings (median over runs, range), theoretical, vendor roofs."""
    reps = c.reports or c.per_core
    from .roofline import CEILING_FIELDS, LABELS, UNITS

    lines = ["| ceiling | measured | theoretical | runs |", "|---|---|---|---|"]
    for f in CEILING_FIELDS:
        vals = [r["ceilings"].get(f) for r in reps if r["ceilings"].get(f) is not None]
        if not vals:
            continue
        theory = reps[0]["ceilings"].get("theoretical", {}).get(f)
        noisy = sum(f in r["ceilings"].get("noisy", []) for r in reps)
        measured = _stat(vals, _fmt_rate) + f" {UNITS[f]}" + (f" (noisy in {noisy})" if noisy else "")
        lines.append(f"| {LABELS[f]} | {measured} | {'' if not theory else f'{theory:,.0f}'} | {len(vals)} |")
    vendor = defaultdict(list)
    for r in reps:
        for label, v in r["ceilings"].get("vendor", {}).items():
            vendor[(label, v["unit"])].append(v["value"])
    for (label, unit), vals in vendor.items():
        lines.append(f"| vendor roof: {label} | {_stat(vals, _fmt_rate)} {unit} | | {len(vals)} |")
    return "\n".join(lines)


def campaign_section(c: Campaign) -> str:
    """Everything measured in one campaign, as Markdown."""
    first = (c.reports or c.per_core)[0]
    info = first.get("device_info", {})
    out = [f"### {c.device} ({c.label})", "",
           f"Measured {c.dates}; {len(c.reports)} full run(s), {len(c.per_core)} per-core run(s). "
           f"Driver {info.get('driver_version', '?')}; {info.get('compute_units', '?')} compute units. "
           f"Reference: {first['reference']}. Tuning: "
           + ", ".join(f"{k} {v}" for k, v in first.get("tuning", {}).get("sources", {}).items())
           + ".", ""]
    cmds = c.commands()
    if cmds:
        out += ["Commands:", ""] + [f"    {cmd}" for cmd in cmds] + [""]
    out += ["**Ceilings**", "", ceilings_table(c), ""]
    for suite in ("roofline", "gemm", "quant", "sparse", "snn"):
        table = suite_table(c, suite)
        if table:
            out += [f"**{SUITE_TITLES[suite]}**", "", table, ""]
    return "\n".join(out).rstrip() + "\n"


# README's summary picks, per suite: (pattern, "last" = only the largest size, or "all")
HEADLINE = (("gemm", r"^sgemm \d+x", "last"), ("quant", r"^int8_matmul ", "last"),
            ("quant", r"^int4_gemv \d+x\d+ call$", "last"), ("sparse", r"^spmv ", "all"),
            ("sparse", r"^bsr ", "all"), ("snn", r"^lif-network [\d,]+ x 20$", "all"),
            ("snn", r"x 20 vs Brian2 cpp_standalone$", "all"))


def headline_table(campaigns: list[Campaign]) -> str:
    """README's summary: per campaign, the largest size of each benchmark family, median ratio
    with its range over runs (the full tables, every size, are in docs/benchmarks.md)."""
    lines = ["| device | campaign | benchmark | rate | x ref | runs | threads (ours / ref) | reference |",
             "|---|---|---|---|---|---|---|---|"]
    for c in campaigns:
        for suite, pattern, which in HEADLINE:
            rows = _rows(c.reports, suite)
            names = [n for n in rows if re.search(pattern, n) and any(r.get("ratio") for r in rows[n])]
            for name in names[-1:] if which == "last" else names:
                rs = rows[name]
                refs = "; ".join(sorted({r.get("reference") or "" for r in rs} - {""}))
                lines.append(f"| {c.device} | {c.label} | {name} | {_rate_cell(rs)} | "
                             f"{_stat([r.get('ratio') for r in rs], _ratio)} | {len(rs)} | {_threads(rs)} | "
                             f"{refs} |")
    return "\n".join(lines)


STUDY_KIND = "diehl-cook-seed-study"  # workbench.snn.study's reports (not imported: no SNN code here)


def load_studies(results: Path | None = None) -> list[tuple[str, dict]]:
    """``(folder name, study)`` for every accuracy study under ``results`` (``workbench study``)."""
    results = results or repo_root() / "docs" / "results"
    out = []
    for folder in sorted(p for p in results.iterdir() if p.is_dir()):
        for path in sorted(folder.glob("*.json")):
            data = json.loads(path.read_text())
            if data.get("kind") == STUDY_KIND:
                out.append((folder.name, data))
    return out


def studies_table(studies: list[tuple[str, dict]]) -> str:
    """Accuracy over seeds: mean +- sd (min-max) of each split, one row per study."""
    lines = ["| study | device | neurons x epochs | images (train / validation / test) | seeds | "
             "test accuracy | validation accuracy | train accuracy | command |",
             "|---|---|---|---|---|---|---|---|---|"]
    for label, st in studies:
        p, sm = st["params"], st["summary"]
        cell = lambda m: (f"{sm[m]['mean']:.3f} +- {sm[m]['sd']:.3f} "  # noqa: E731
                          f"({sm[m]['min']:.3f}-{sm[m]['max']:.3f})")
        lines.append(f"| {label} | {st['device']} | {p['n_neurons']} x {p['epochs']} | "
                     f"{p['training_images']} / {p['validation_images']} / {p['test_images']} | "
                     f"{len(st['runs'])} | {cell('test_accuracy')} | {cell('validation_accuracy')} | "
                     f"{cell('train_accuracy')} | `{st.get('command', '')}` |")
    return "\n".join(lines) if studies else "No accuracy study recorded yet."


def blocks(campaigns: list[Campaign] | None = None, studies: list | None = None) -> dict[str, str]:
    """Every generated block, by marker name."""
    campaigns = load_campaigns() if campaigns is None else campaigns
    studies = load_studies() if studies is None else studies
    return {"headline": headline_table(campaigns) + "\n",
            "campaigns": "\n".join(campaign_section(c) for c in campaigns),
            "studies": studies_table(studies) + "\n"}


def render(text: str, generated: dict[str, str], path: str = "") -> str:
    """``text`` with every marked block replaced by its generated body."""
    def sub(m: re.Match) -> str:
        name = m.group("name")
        if name not in generated:
            raise InputError("report", f"{path}: unknown block {name!r}; known: {', '.join(generated)}")
        return m.group(1) + generated[name] + m.group(4)

    return _BLOCK.sub(sub, text)


DOCUMENTS = ("README.md", "docs/benchmarks.md")


def run(check: bool = False, root: Path | None = None) -> tuple[bool, list[str]]:
    """Regenerate (or with ``check`` compare) the documents' blocks; returns (up to date, messages)."""
    import difflib

    root = root or repo_root()
    generated = blocks(load_campaigns(root / "docs" / "results"), load_studies(root / "docs" / "results"))
    ok, messages = True, []
    for rel in DOCUMENTS:
        path = root / rel
        old = path.read_text()
        new = render(old, generated, rel)
        if new == old:
            messages.append(f"{rel}: up to date")
            continue
        if check:
            ok = False
            diff = "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), rel,
                                                f"{rel} (from JSON)", n=1))
            messages.append(f"{rel}: differs from what the raw JSON gives; run `workbench report`\n{diff}")
        else:
            path.write_text(new)
            messages.append(f"{rel}: written")
    return ok, messages
