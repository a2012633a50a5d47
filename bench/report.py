"""Numbers to tables, and docs/performance.md with its hand-written part kept.

Pure formatting: no subprocess, no timing, so that tests/unit/test_bench.py can check it
without root.
"""

import os
import statistics
from dataclasses import dataclass, field

MARKER = "<!-- hand-written below: kept by make bench -->"
PLACEHOLDER = """## What was done to cut it

_Nothing written here yet: say what was changed in pyrunc to cut these figures, and by how
much.  `make bench` regenerates everything above the marker and keeps this part._
"""


@dataclass
class Row:
    """One measured line of a figure: samples in seconds (unit "ms" or "s") or bytes
    ("MiB"); no samples and a note for a runtime that could not be measured."""

    label: str
    samples: list = field(default_factory=list)
    unit: str = "ms"
    ref: str = None  # label of the row this one is divided by
    note: str = ""


@dataclass
class Verdict:
    """One line of the summary table: a figure against its target."""

    num: str
    what: str
    subject: str
    reference: str
    ratio: str
    target: str
    met: object  # True, False, or None when there is nothing to judge


def median(samples):
    return statistics.median(samples) if samples else None


def quartiles(samples):
    """The 25 % and 75 % points (the middle half of the samples lies between them)."""
    if not samples:
        return None, None
    if len(samples) < 2:
        return samples[0], samples[0]
    q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return q1, q3


def fmt(value, unit):
    """A sample in its unit: seconds shown as ms or s, bytes as MiB."""
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value * 1000:.1f} ms"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "MiB":
        return f"{value / 2**20:.1f} MiB"
    if unit == "KiB":
        return f"{value / 1024:.1f} KiB"
    return f"{value:g} {unit}".strip()


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(r):
    return "-" if r is None else f"{r:.2f}"


def met_text(met):
    return {True: "met", False: "not met"}.get(met, "-")


def markdown_table(headers, rows):
    """A markdown table whose columns are padded, so it reads on a terminal too."""
    cell = lambda c: str(c).replace("|", "\\|").replace("\n", " ")
    cells = [[cell(c) for c in headers]] + [[cell(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"
    out = [line(cells[0]), "| " + " | ".join("-" * w for w in widths) + " |"]
    out += [line(r) for r in cells[1:]]
    return "\n".join(out)


def verdicts_table(verdicts):
    return markdown_table(
        ["#", "figure", "pyrunc", "reference", "ratio", "target", "met"],
        [[v.num, v.what, v.subject, v.reference, v.ratio, v.target, met_text(v.met)] for v in verdicts],
    )


def details_table(figures):
    """Every measured row: median, min, max, and its median over its reference's."""
    rows = []
    for num, _title, figrows in figures:
        by_label = {r.label: r for r in figrows}
        for r in figrows:
            if not r.samples:
                rows.append([num, r.label, "-", "-", "-", "-", "-", r.note or "n/a"])
                continue
            ref = by_label.get(r.ref) if r.ref != r.label else None
            rel = ratio(median(r.samples), median(ref.samples)) if ref else None
            rows.append(
                [
                    num,
                    r.label,
                    len(r.samples),
                    fmt(median(r.samples), r.unit),
                    fmt(min(r.samples), r.unit),
                    fmt(max(r.samples), r.unit),
                    f"{fmt_ratio(rel)} × {r.ref}" if rel is not None else "-",
                    r.note,
                ]
            )
    return markdown_table(["#", "measurement", "n", "median", "min", "max", "ratio", "note"], rows)


@dataclass
class TraceFigure:
    """The trace figure's samples, one per round in each list (round i of every list
    was taken in the same rotation, so per-round ratios pair them)."""

    baseline: str  # the revision without the tracing code, as "<hash> (<subject>)"
    off: list  # this pyrunc, tracing off
    base: list  # the baseline build
    base2: list  # the same baseline build again, interleaved: the noise reference
    traced: list  # this pyrunc with --trace FILE
    trace_bytes: list = field(default_factory=list)  # the trace file's size after each traced run
    trace_lines: list = field(default_factory=list)  # its records


TRACE_OFF = "pyrunc run, trace off"
TRACE_BASE = "baseline run"
TRACE_BASE2 = "baseline run, 2nd series"
TRACE_ON = "pyrunc run --trace FILE"


def per_round(a, b):
    """a[i] / b[i] for each round: both were taken within the same round, so the load
    of the moment cancels out of each ratio."""
    return [x / y for x, y in zip(a, b) if y]


def trace_ratios(t):
    """(label, numerator, denominator, ratio of medians, per-round ratios) for the
    three comparisons of the trace figure."""
    out = []
    for label, a, b in (
        ("trace off / baseline", t.off, t.base),
        ("baseline 2nd series / baseline (noise)", t.base2, t.base),
        ("--trace FILE / trace off", t.traced, t.off),
    ):
        out.append((label, a, b, ratio(median(a), median(b)), per_round(a, b)))
    return out


def round_spread(a, b):
    """The per-round ratios a/b in a few words: their median and middle half."""
    rounds = per_round(a, b)
    q1, q3 = quartiles(rounds)
    return f"per round {fmt_ratio(median(rounds))} (IQR {fmt_ratio(q1)}–{fmt_ratio(q3)})"


def trace_rows(t):
    size = (
        f"; the file: {median(t.trace_lines):.0f} records, {fmt(median(t.trace_bytes), 'KiB')}" if t.trace_bytes else ""
    )
    return [
        Row(TRACE_OFF, t.off, ref=TRACE_BASE, note=round_spread(t.off, t.base)),
        Row(TRACE_BASE, t.base, note=f"pyrunc at {t.baseline}, before tracing; a launcher of its own"),
        Row(
            TRACE_BASE2,
            t.base2,
            ref=TRACE_BASE,
            note="the same build again: the noise reference; " + round_spread(t.base2, t.base),
        ),
        Row(TRACE_ON, t.traced, ref=TRACE_OFF, note=round_spread(t.traced, t.off) + size),
    ]


def trace_verdicts(t):
    """Two summary lines; nothing is judged (met is None): the reader compares the
    off/baseline ratio with the baseline's ratio against itself."""
    (_, _, _, off_base, _), (_, _, _, noise, _), (_, _, _, on_off, _) = trace_ratios(t)
    rev = t.baseline.split()[0]
    return [
        Verdict(
            "9a",
            f"`run`, tracing off, over a build without the tracing code ({rev})",
            fmt(median(t.off), "ms"),
            f"baseline {fmt(median(t.base), 'ms')} (baseline over itself: {fmt_ratio(noise)})",
            fmt_ratio(off_base),
            "within noise",
            None,
        ),
        Verdict(
            "9b",
            "`run --trace FILE` over `run` with tracing off",
            fmt(median(t.traced), "ms"),
            f"trace off {fmt(median(t.off), 'ms')}",
            fmt_ratio(on_off),
            "-",
            None,
        ),
    ]


def trace_section(t, runs):
    """The generated section on the trace figure: each series' spread and the three
    ratios, with the noise reference next to the claim."""
    if t is None:
        return "(not run)"
    series = [
        (TRACE_OFF, t.off),
        (f"{TRACE_BASE} ({t.baseline.split()[0]})", t.base),
        (TRACE_BASE2, t.base2),
        (TRACE_ON, t.traced),
    ]
    spread_rows = [
        [
            label,
            fmt(median(s), "ms"),
            "–".join(fmt(q, "ms") for q in quartiles(s)),
            f"{fmt(min(s), 'ms')}–{fmt(max(s), 'ms')}" if s else "-",
        ]
        for label, s in series
    ]
    ratio_rows = []
    for label, _, _, of_medians, rounds in trace_ratios(t):
        q1, q3 = quartiles(rounds)
        ratio_rows.append(
            [
                label,
                fmt_ratio(of_medians),
                fmt_ratio(median(rounds)),
                f"{fmt_ratio(q1)}–{fmt_ratio(q3)}",
                f"{fmt_ratio(min(rounds))}–{fmt_ratio(max(rounds))}" if rounds else "-",
            ]
        )
    (_, _, _, off_base, off_rounds), (_, _, _, noise, noise_rounds), _ = trace_ratios(t)
    lo, hi = quartiles(noise_rounds)
    where = ""
    if off_rounds and noise_rounds:
        # Per-round against per-round: both have the load of the moment divided out.
        inside = "inside" if lo <= median(off_rounds) <= hi else "outside"
        where = (
            f"  Here trace off / baseline is {fmt_ratio(off_base)} of medians and"
            f" {fmt_ratio(median(off_rounds))} per round, {inside} the middle half of the baseline's"
            f" per-round ratios against itself ({fmt_ratio(lo)}–{fmt_ratio(hi)}; of medians"
            f" {fmt_ratio(noise)})."
        )
    size = ""
    if t.trace_bytes:
        size = (
            f"  One traced `run` wrote {median(t.trace_lines):.0f} records"
            f" ({fmt(median(t.trace_bytes), 'KiB')}, median)."
        )
    return "\n".join(
        [
            f"`run` of /bin/true in four series taken in rotation, {runs} rounds: this pyrunc with tracing"
            f" off; a build of {t.baseline}, the revision before the tracing code, with a launcher"
            " of its own on the same interpreter and packages, twice (the second series measures the"
            " noise: the same build against itself); this pyrunc with `--trace FILE`, the file removed"
            " each round.  Tracing off costs nothing measurable when trace off / baseline moves no"
            " further from 1 than the baseline does against itself." + where + size,
            "",
            markdown_table(["series", "median", "IQR (25–75 %)", "min–max"], spread_rows),
            "",
            "Per-round ratios divide the two samples of one round, so a load that shifts between"
            " rounds cancels out of them.",
            "",
            markdown_table(
                ["ratio", "of medians", "per round: median", "per round: IQR", "per round: min–max"], ratio_rows
            ),
        ]
    )


def render(machine, verdicts, figures, breakdown_md, runs, command, trace_md="(not run)", timeline_md="(not run)"):
    """The generated part of docs/performance.md (everything above the marker)."""
    parts = [
        "# Performance",
        "",
        "<!-- Generated by `make bench` (bench/run.py); regenerate with `make bench`.  Edit only"
        " below the hand-written marker at the end: everything above it is rewritten. -->",
        "",
        f"Generated by `make bench` (`{command}`) on {machine.get('date', '?')}: pyrunc against runc (and"
        " crun where it works) on the same busybox bundle, each figure the median of"
        f" {runs} alternating runs unless it says otherwise.  The suite reports; it asserts"
        " nothing and is not part of `make test`.  `bench/README.md` says how each figure is taken."
        "  On a shared machine every millisecond moves with the load (given below, at start and"
        " end); the ratios move less, since the runtimes alternate within every round.",
        "",
        "## Machine",
        "",
        "\n".join(f"* {k}: {v}" for k, v in machine.items() if k != "date"),
        "",
        "## Figures",
        "",
        verdicts_table(verdicts),
        "",
        "## Every measurement",
        "",
        "Times are wall-clock from just before the command is started (a direct exec, no shell)"
        " until it has been waited for; ratios divide the medians.",
        "",
        details_table(figures),
        "",
        "## What the step trace costs",
        "",
        trace_md.strip(),
        "",
        "## Where the time goes in `pyrunc run`",
        "",
        breakdown_md.strip(),
        "",
        "## Timeline: `run`, `exec`, create + start + delete, pyrunc beside runc",
        "",
        timeline_md.strip(),
        "",
    ]
    return "\n".join(parts)


def merge(generated, existing):
    """The new generated part followed by the hand-written part of the existing text
    (the marker and everything after it), or by the marker and a placeholder section
    when there is none yet."""
    if existing is not None and MARKER in existing:
        kept = existing[existing.index(MARKER) :]
    else:
        kept = MARKER + "\n\n" + PLACEHOLDER
    return generated.rstrip("\n") + "\n\n" + kept


def write_doc(path, generated):
    try:
        with open(path) as f:
            existing = f.read()
    except FileNotFoundError:
        existing = None
    text = merge(generated, existing)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    return text
