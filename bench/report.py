"""Statistics and the report of the benchmark.

Everything above ``write_report`` is a pure function of its arguments, so the maths
and the Markdown can be tested without starting a server.

The result that ``bench.run`` builds and these functions read is plain JSON::

    {"meta": {"date": ..., "quick": bool, "nproc": 2, "cpu_model": ..., "notes": [...]},
     "bots": {"ours": BOT, "baseline": BOT}}

    BOT = {"available": bool, "note": str, "cold_start_s": float | None,
           "training_s": float | None, "training_note": str | None,
           "levels": {"1": LEVEL, "10": LEVEL, ...},
           "turns": {"1": p50_ms | None, "100": ..., "300": ...}, "turn_window": 8,
           "turn_series": [[ms | None, ...], ...],
           "rss_mb": {"rasa": float | None, "actions": float | None},
           "knowledge_live_s": float | None, "knowledge_note": str | None,
           "widget": {"available": bool, "note": str, "levels": {...}}}

    LEVEL = {"concurrency": int, "conversations": int, "messages": int, "errors": int,
             "wall_s": float, "throughput": float, "p50": ms, "p95": ms, "p99": ms,
             "mean": ms, "max": ms, "server_cpu_s": float | None, "load_cpu_s": float | None}
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

# The targets the assistant is held to (see bench/README.md).
TARGET_THROUGHPUT_RATIO = 2.5
TARGET_P95_AT_10_MS = 150.0
TARGET_TURN_GROWTH = 1.3
TARGET_COLD_START_S = 20.0
TARGET_TRAINING_S = 90.0
TARGET_KNOWLEDGE_LIVE_S = 2.0

PASS = "PASS"
FAIL = "FAIL"
SKIP = "SKIP"

CONCURRENCY_PLOT = "latency_vs_concurrency.png"
TURN_PLOT = "latency_vs_turn.png"
LATEST_MD = "latest.md"
LEVERS_FILE = Path(__file__).resolve().parent / "levers.md"


def percentile(values: Sequence[float], q: float) -> float:
    """Returns the q-th percentile, interpolating linearly between the closest ranks.

    This is the same definition as ``numpy.percentile(values, q)`` (method "linear").

    Args:
        values: the sample; it need not be sorted.
        q: the percentile, from 0 to 100.

    Returns:
        The percentile value.

    Raises:
        ValueError: if ``values`` is empty or ``q`` is outside 0..100.
    """
    if not values:
        raise ValueError("percentile of an empty sample")
    if not 0.0 <= q <= 100.0 or math.isnan(q):
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = math.ceil(position)
    if low == high:
        return float(ordered[low])
    fraction = position - low
    return float(ordered[low] + (ordered[high] - ordered[low]) * fraction)


def latency_summary(latencies_ms: Sequence[float]) -> Dict[str, Optional[float]]:
    """Summarises latencies: count, p50, p95, p99, mean and max.

    Args:
        latencies_ms: latencies of the answered messages, in milliseconds.

    Returns:
        ``{"n", "p50", "p95", "p99", "mean", "max"}``; every figure but ``n`` is
        ``None`` when the sample is empty.
    """
    if not latencies_ms:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "mean": None, "max": None}
    return {
        "n": len(latencies_ms),
        "p50": percentile(latencies_ms, 50),
        "p95": percentile(latencies_ms, 95),
        "p99": percentile(latencies_ms, 99),
        "mean": sum(latencies_ms) / len(latencies_ms),
        "max": float(max(latencies_ms)),
    }


def throughput(messages: int, seconds: float) -> float:
    """Returns messages per second.

    Args:
        messages: the number of messages answered.
        seconds: the wall-clock time they took, from the first send to the last answer.

    Returns:
        ``messages / seconds``.

    Raises:
        ValueError: if ``seconds`` is not positive or ``messages`` is negative.
    """
    if seconds <= 0:
        raise ValueError(f"throughput needs a positive duration, got {seconds}")
    if messages < 0:
        raise ValueError(f"throughput needs a message count >= 0, got {messages}")
    return messages / seconds


def ratio(numerator: Optional[float], denominator: Optional[float]) -> Optional[float]:
    """Returns ``numerator / denominator``, or None if either is missing or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def turn_window(turn: int, width: int) -> Tuple[int, int]:
    """Returns the 1-based, inclusive range of turns that stands for ``turn``.

    A window is ``width`` turns long and ends at ``turn`` (or starts at turn 1 when
    ``turn < width``). With ``width`` equal to the script's length every window
    holds each line of the script once, so windows at different depths compare
    the same mix of messages.

    Args:
        turn: the turn number, from 1.
        width: the window width, at least 1.

    Returns:
        ``(first, last)``.

    Raises:
        ValueError: if ``turn`` or ``width`` is below 1.
    """
    if turn < 1 or width < 1:
        raise ValueError(f"turn and width must be >= 1, got {turn} and {width}")
    first = max(1, turn - width + 1)
    return first, first + width - 1


def p50_at_turns(
    series: Sequence[Sequence[Optional[float]]], turns: Sequence[int], width: int
) -> Dict[str, Optional[float]]:
    """Returns the median latency around each turn of long conversations.

    Args:
        series: one list per conversation; item ``i`` is turn ``i + 1``'s latency in
            ms, or None when that turn failed.
        turns: the turn numbers to report, e.g. ``[1, 100, 300]``.
        width: the window width (see ``turn_window``).

    Returns:
        ``{str(turn): p50 or None}``, None when no conversation reached the window.
    """
    result: Dict[str, Optional[float]] = {}
    for turn in turns:
        first, last = turn_window(turn, width)
        pooled = [
            value
            for conversation in series
            if len(conversation) >= last
            for value in conversation[first - 1 : last]
            if value is not None
        ]
        result[str(turn)] = percentile(pooled, 50) if pooled else None
    return result


def level_stats(
    concurrency: int,
    conversations: int,
    latencies_ms: Sequence[float],
    errors: int,
    wall_s: float,
    server_cpu_s: Optional[float] = None,
    load_cpu_s: Optional[float] = None,
) -> Dict[str, Any]:
    """Builds the figures of one concurrency level.

    Args:
        concurrency: the number of conversations in flight at once.
        conversations: the number of conversations run.
        latencies_ms: the latency of every answered message.
        errors: the messages that failed (HTTP error, time-out or an empty answer).
        wall_s: seconds from the first send to the last answer.
        server_cpu_s: CPU seconds the servers used meanwhile, if measured.
        load_cpu_s: CPU seconds the load process used, if measured.

    Returns:
        A LEVEL mapping (see the module docstring).
    """
    summary = latency_summary(latencies_ms)
    return {
        "concurrency": concurrency,
        "conversations": conversations,
        "messages": len(latencies_ms),
        "errors": errors,
        "wall_s": wall_s,
        "throughput": throughput(len(latencies_ms), wall_s) if wall_s > 0 else 0.0,
        "p50": summary["p50"],
        "p95": summary["p95"],
        "p99": summary["p99"],
        "mean": summary["mean"],
        "max": summary["max"],
        "server_cpu_s": server_cpu_s,
        "load_cpu_s": load_cpu_s,
    }


def peak_throughput(bot: Mapping[str, Any]) -> Optional[float]:
    """Returns a bot's best messages-per-second over its concurrency levels, or None."""
    values = [level["throughput"] for level in bot.get("levels", {}).values() if level.get("messages")]
    return max(values) if values else None


def _level(bot: Mapping[str, Any], concurrency: int) -> Optional[Mapping[str, Any]]:
    level = bot.get("levels", {}).get(str(concurrency))
    return level if isinstance(level, Mapping) else None


def _last_turn(bot: Mapping[str, Any]) -> Optional[str]:
    turns = [key for key, value in bot.get("turns", {}).items() if value is not None and key != "1"]
    return max(turns, key=int) if turns else None


def evaluate_targets(result: Mapping[str, Any]) -> List[Dict[str, str]]:
    """Checks the assistant's figures against the targets.

    Args:
        result: the benchmark result (see the module docstring).

    Returns:
        One ``{"name", "status", "detail"}`` per target; status is PASS, FAIL or SKIP
        (SKIP when the figure was not measured).
    """
    ours: Mapping[str, Any] = result.get("bots", {}).get("ours", {})
    base: Mapping[str, Any] = result.get("bots", {}).get("baseline", {})
    checks: List[Dict[str, str]] = []

    def add(name: str, value: Optional[float], limit: float, higher_is_better: bool, detail: str) -> None:
        if value is None:
            checks.append({"name": name, "status": SKIP, "detail": detail or "not measured"})
            return
        good = value >= limit if higher_is_better else value <= limit
        checks.append({"name": name, "status": PASS if good else FAIL, "detail": detail})

    speedup = ratio(peak_throughput(ours), peak_throughput(base))
    add(
        f"throughput >= {TARGET_THROUGHPUT_RATIO}x baseline",
        speedup,
        TARGET_THROUGHPUT_RATIO,
        True,
        f"peak {_num(peak_throughput(ours))} vs {_num(peak_throughput(base))} msgs/s = {_ratio(speedup)}",
    )
    level10 = _level(ours, 10)
    p95 = level10.get("p95") if level10 else None
    add(f"p95 <= {TARGET_P95_AT_10_MS:.0f} ms at 10 concurrent", p95, TARGET_P95_AT_10_MS, False, f"p95 {_ms(p95)}")
    last = _last_turn(ours)
    first_p50 = ours.get("turns", {}).get("1")
    last_p50 = ours.get("turns", {}).get(last) if last else None
    growth = ratio(last_p50, first_p50)
    add(
        f"p50 at turn {last or 'N'} <= {TARGET_TURN_GROWTH}x p50 at turn 1",
        growth,
        TARGET_TURN_GROWTH,
        False,
        f"{_ms(last_p50)} vs {_ms(first_p50)} = {_ratio(growth)}",
    )
    cold = ours.get("cold_start_s")
    add(f"cold start <= {TARGET_COLD_START_S:.0f} s", cold, TARGET_COLD_START_S, False, f"{_secs(cold)}")
    training = ours.get("training_s")
    add(
        f"full training <= {TARGET_TRAINING_S:.0f} s",
        training,
        TARGET_TRAINING_S,
        False,
        ours.get("training_note") or _secs(training),
    )
    live = ours.get("knowledge_live_s")
    add(
        f"knowledge edit live within {TARGET_KNOWLEDGE_LIVE_S:.0f} s",
        live,
        TARGET_KNOWLEDGE_LIVE_S,
        False,
        ours.get("knowledge_note") or _secs(live),
    )
    return checks


def target_lines(checks: Sequence[Mapping[str, str]]) -> List[str]:
    """Formats target checks as one ``PASS|FAIL|SKIP name (detail)`` line each."""
    return [f"{check['status']} {check['name']} ({check['detail']})" for check in checks]


def _num(value: Optional[float], digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _ms(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"


def _secs(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.1f} s"


def _ratio(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def _row(label: str, ours: Optional[float], base: Optional[float], digits: int = 1) -> str:
    return f"| {label} | {_num(ours, digits)} | {_num(base, digits)} | {_ratio(ratio(ours, base))} |"


def _levels_of(*bots: Mapping[str, Any]) -> List[int]:
    found = {int(key) for bot in bots for key in bot.get("levels", {})}
    return sorted(found)


def _get(mapping: Optional[Mapping[str, Any]], key: str) -> Optional[float]:
    if not mapping:
        return None
    value = mapping.get(key)
    return float(value) if isinstance(value, (int, float)) else None


def render_markdown(result: Mapping[str, Any], checks: Sequence[Mapping[str, str]], levers: str = "") -> str:
    """Renders the short Markdown report.

    Args:
        result: the benchmark result (see the module docstring).
        checks: the output of ``evaluate_targets(result)``.
        levers: Markdown saying which speed levers the assistant uses and what each bought
            (``bench/levers.md``), added at the end.

    Returns:
        The Markdown text, ending in a newline.
    """
    meta: Mapping[str, Any] = result.get("meta", {})
    bots: Mapping[str, Any] = result.get("bots", {})
    ours: Mapping[str, Any] = bots.get("ours", {})
    base: Mapping[str, Any] = bots.get("baseline", {})
    mode = "quick" if meta.get("quick") else "full"
    lines = [
        f"# Benchmark {meta.get('date', '?')} ({mode} mode)",
        "",
        f"Machine: {meta.get('nproc', '?')} CPUs (`nproc`), {meta.get('cpu_model', '?')}. "
        f"Rasa {meta.get('rasa_version', '?')}, Python {meta.get('python', '?')}. "
        f"Load average before the run: {meta.get('loadavg', '?')}.",
        "",
        "## Targets",
        "",
    ]
    lines += [f"- **{check['status']}** {check['name']}: {check['detail']}" for check in checks]
    lines += ["", "## Figures", ""]
    for name, bot in (("ours", ours), ("baseline", base)):
        if not bot.get("available", False):
            lines += [f"{name}: not available ({bot.get('note', 'not run')}).", ""]
    lines += ["| figure | ours | baseline | ours / baseline |", "| --- | ---: | ---: | ---: |"]
    lines.append(_row("cold start to first answer (s)", _get(ours, "cold_start_s"), _get(base, "cold_start_s")))
    if ours.get("training_s") is None and base.get("training_s") is None:
        note = ours.get("training_note") or base.get("training_note") or "not measured"
        lines.append(f"| full training (s) | {note} | {note} | n/a |")
    else:
        lines.append(_row("full training (s)", _get(ours, "training_s"), _get(base, "training_s")))
    for concurrency in _levels_of(ours, base):
        mine, theirs = _level(ours, concurrency), _level(base, concurrency)
        for key, label in (("p50", "p50"), ("p95", "p95"), ("p99", "p99")):
            lines.append(
                _row(f"{label} latency at {concurrency} concurrent (ms)", _get(mine, key), _get(theirs, key), 0)
            )
        lines.append(
            _row(
                f"throughput at {concurrency} concurrent (msgs/s)", _get(mine, "throughput"), _get(theirs, "throughput")
            )
        )
        lines.append(_row(f"errors at {concurrency} concurrent (of msgs)", _errors(mine), _errors(theirs), 0))
        lines.append(
            _row(
                f"server CPU per message at {concurrency} concurrent (ms)", _cpu_per_msg(mine), _cpu_per_msg(theirs), 1
            )
        )
    lines.append(_row("peak throughput (msgs/s)", peak_throughput(ours), peak_throughput(base)))
    turn_keys = sorted({key for bot in (ours, base) for key in bot.get("turns", {})}, key=int)
    for key in turn_keys:
        lines.append(
            _row(f"p50 latency at turn {key} (ms)", _get(ours.get("turns"), key), _get(base.get("turns"), key), 0)
        )
    rss_ours: Mapping[str, Any] = ours.get("rss_mb") or {}
    rss_base: Mapping[str, Any] = base.get("rss_mb") or {}
    lines.append(_row("peak RSS, Rasa server (MB)", _get(rss_ours, "rasa"), _get(rss_base, "rasa"), 0))
    lines.append(_row("peak RSS, action server (MB)", _get(rss_ours, "actions"), _get(rss_base, "actions"), 0))
    live = ours.get("knowledge_live_s")
    live_text = _num(live, 2) if live is not None else ours.get("knowledge_note") or "n/a"
    lines.append(f"| knowledge edit to live (s) | {live_text} | n/a | n/a |")
    lines += ["", "## Widget channel (ours)", ""]
    widget: Mapping[str, Any] = ours.get("widget") or {}
    if widget.get("available"):
        lines += [
            "| concurrent | p50 (ms) | p95 (ms) | p99 (ms) | msgs/s | errors |",
            "| ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for concurrency in _levels_of(widget):
            level = _level(widget, concurrency) or {}
            lines.append(
                f"| {concurrency} | {_num(_get(level, 'p50'), 0)} | {_num(_get(level, 'p95'), 0)} | "
                f"{_num(_get(level, 'p99'), 0)} | {_num(_get(level, 'throughput'))} | {level.get('errors', 'n/a')} |"
            )
    else:
        lines.append(f"Widget channel: not available ({widget.get('note', 'not probed')}).")
    window = ours.get("turn_window") or base.get("turn_window")
    lines += [
        "",
        "## How to read this",
        "",
        "- Latency is per message, from sending it to the whole answer, measured by a separate load process "
        "over 127.0.0.1. Each conversation replays an 8-turn script (bench/scripts.yml) with its own sender id.",
        '- Throughput is answered messages per second of wall-clock time at that level; "peak" is the best level.',
        f'- "p50 at turn N" is the median over the {window or "?"} turns ending at turn N '
        "(one pass of the script) of long conversations.",
        "- Peak RSS is the sum over each server's processes (VmHWM, or the peak of sampled VmRSS).",
        "- Plots: latency_vs_concurrency.png and latency_vs_turn.png beside this file.",
    ]
    notes = meta.get("notes") or []
    if notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in notes]
    if levers:
        lines += ["", "## Levers used, and what each bought", "", levers.strip()]
    lines += ["", f"![latency vs concurrency]({CONCURRENCY_PLOT})", "", f"![latency vs turn]({TURN_PLOT})", ""]
    return "\n".join(lines)


def _errors(level: Optional[Mapping[str, Any]]) -> Optional[float]:
    if not level:
        return None
    return float(level.get("errors", 0))


def _cpu_per_msg(level: Optional[Mapping[str, Any]]) -> Optional[float]:
    if not level or not level.get("messages") or level.get("server_cpu_s") is None:
        return None
    return 1000.0 * float(level["server_cpu_s"]) / float(level["messages"])


def rolling_median(values: Sequence[Optional[float]], width: int) -> List[Optional[float]]:
    """Returns the median of each run of ``width`` values ending at each index (None where no value)."""
    out: List[Optional[float]] = []
    for index in range(len(values)):
        window = [value for value in values[max(0, index - width + 1) : index + 1] if value is not None]
        out.append(percentile(window, 50) if window else None)
    return out


def write_report(result: Mapping[str, Any], results_dir: Path, stamp: str, plots: bool = True) -> Dict[str, Path]:
    """Writes ``<stamp>.json``, ``latest.md`` and (if ``plots``) the two PNG plots.

    Args:
        result: the benchmark result.
        results_dir: the folder to write to (created if missing).
        stamp: the time stamp that names the JSON file, e.g. ``20261125-181500``.
        plots: whether to draw the plots (needs matplotlib).

    Returns:
        The paths written, by kind: ``json``, ``markdown`` and the plots.
    """
    results_dir.mkdir(parents=True, exist_ok=True)
    checks = evaluate_targets(result)
    full = dict(result)
    full["targets"] = checks
    paths = {"json": results_dir / f"{stamp}.json", "markdown": results_dir / LATEST_MD}
    paths["json"].write_text(json.dumps(full, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    levers = LEVERS_FILE.read_text(encoding="utf-8") if LEVERS_FILE.exists() else ""
    paths["markdown"].write_text(render_markdown(result, checks, levers), encoding="utf-8")
    if plots:
        paths["concurrency_plot"] = results_dir / CONCURRENCY_PLOT
        paths["turn_plot"] = results_dir / TURN_PLOT
        plot_concurrency(result, paths["concurrency_plot"])
        plot_turns(result, paths["turn_plot"])
    return paths


def _legend(axis: Any, size: int) -> None:
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=size)
    else:
        axis.text(0.5, 0.5, "no data", ha="center", va="center", transform=axis.transAxes, color="grey")


_COLOURS = {"ours": "#1f77b4", "baseline": "#d62728"}


def plot_concurrency(result: Mapping[str, Any], path: Path) -> None:
    """Draws p50/p95/p99 latency and throughput against concurrency, both bots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, bot in result.get("bots", {}).items():
        levels = sorted((int(key), value) for key, value in bot.get("levels", {}).items() if value.get("messages"))
        if not levels:
            continue
        xs = [key for key, _ in levels]
        colour = _COLOURS.get(name, "black")
        for key, style in (("p50", "-"), ("p95", "--"), ("p99", ":")):
            left.plot(xs, [level[key] for _, level in levels], style, marker="o", color=colour, label=f"{name} {key}")
        right.plot(xs, [level["throughput"] for _, level in levels], "-", marker="o", color=colour, label=name)
    left.axhline(TARGET_P95_AT_10_MS, color="grey", linewidth=0.8, linestyle="-.", label="p95 target")
    left.set(xscale="log", yscale="log", xlabel="concurrent conversations", ylabel="latency per message (ms)")
    left.set_title("Latency against concurrency")
    _legend(left, 7)
    left.grid(True, which="both", alpha=0.3)
    right.set(xscale="log", xlabel="concurrent conversations", ylabel="messages per second")
    right.set_title("Throughput against concurrency")
    right.set_ylim(bottom=0)
    _legend(right, 8)
    right.grid(True, alpha=0.3)
    fig.suptitle(f"{result.get('meta', {}).get('date', '')}  ({result.get('meta', {}).get('nproc', '?')} CPUs)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_turns(result: Mapping[str, Any], path: Path) -> None:
    """Draws latency against turn number in one long conversation, both bots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(8, 4.2))
    for name, bot in result.get("bots", {}).items():
        series: List[List[Optional[float]]] = bot.get("turn_series") or []
        if not series:
            continue
        colour = _COLOURS.get(name, "black")
        width = int(bot.get("turn_window") or 8)
        for index, conversation in enumerate(series):
            xs = list(range(1, len(conversation) + 1))
            points = [(x, y) for x, y in zip(xs, conversation) if y is not None]
            axis.scatter([x for x, _ in points], [y for _, y in points], s=4, alpha=0.25, color=colour)
            smooth = rolling_median(conversation, width)
            axis.plot(xs, smooth, color=colour, label=f"{name} (median of {width} turns)" if index == 0 else None)
    axis.set(xlabel="turn number in one conversation", ylabel="latency per message (ms)", yscale="log")
    axis.set_title("Latency against conversation length")
    axis.grid(True, which="both", alpha=0.3)
    _legend(axis, 8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
