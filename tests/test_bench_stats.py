"""Tests for the benchmark's statistics and report writer (bench/report.py) and its knowledge edit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional

import pytest
import yaml

from bench import report
from bench.load import LoadError, check_loopback, is_answer
from bench.run import mark_answer, summarise_profile


# ---- percentile and throughput ------------------------------------------------------------------


def test_percentile_interpolates_like_numpy_linear() -> None:
    values = [15.0, 20.0, 35.0, 40.0, 50.0]
    assert report.percentile(values, 0) == 15.0
    assert report.percentile(values, 100) == 50.0
    assert report.percentile(values, 50) == 35.0
    # position (5 - 1) * 0.4 = 1.6: 20 + 0.6 * (35 - 20) = 29
    assert report.percentile(values, 40) == pytest.approx(29.0)
    # position 4 * 0.95 = 3.8: 40 + 0.8 * 10 = 48
    assert report.percentile(values, 95) == pytest.approx(48.0)


def test_percentile_does_not_depend_on_order_and_handles_one_value() -> None:
    assert report.percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert report.percentile([7.0], 99) == 7.0


def test_percentile_of_1_to_100() -> None:
    values = [float(n) for n in range(1, 101)]
    assert report.percentile(values, 50) == pytest.approx(50.5)
    assert report.percentile(values, 95) == pytest.approx(95.05)
    assert report.percentile(values, 99) == pytest.approx(99.01)


@pytest.mark.parametrize("q", [-1.0, 100.5, float("nan")])
def test_percentile_rejects_bad_q(q: float) -> None:
    with pytest.raises(ValueError):
        report.percentile([1.0, 2.0], q)


def test_percentile_rejects_empty_sample() -> None:
    with pytest.raises(ValueError):
        report.percentile([], 50)


def test_latency_summary() -> None:
    summary = report.latency_summary([10.0, 20.0, 30.0, 40.0])
    assert summary["n"] == 4
    assert summary["p50"] == pytest.approx(25.0)
    assert summary["mean"] == pytest.approx(25.0)
    assert summary["max"] == 40.0
    assert summary["p99"] == pytest.approx(39.7)


def test_latency_summary_of_nothing_is_none() -> None:
    assert report.latency_summary([]) == {"n": 0, "p50": None, "p95": None, "p99": None, "mean": None, "max": None}


def test_throughput() -> None:
    assert report.throughput(80, 4.0) == 20.0
    assert report.throughput(0, 2.0) == 0.0
    with pytest.raises(ValueError):
        report.throughput(10, 0.0)
    with pytest.raises(ValueError):
        report.throughput(-1, 1.0)


def test_ratio_is_none_when_undefined() -> None:
    assert report.ratio(6.0, 2.0) == 3.0
    assert report.ratio(None, 2.0) is None
    assert report.ratio(1.0, None) is None
    assert report.ratio(1.0, 0.0) is None


def test_level_stats_counts_answered_messages_only() -> None:
    stats = report.level_stats(10, 5, [10.0] * 38, errors=2, wall_s=2.0, server_cpu_s=1.5, load_cpu_s=0.1)
    assert stats["messages"] == 38
    assert stats["errors"] == 2
    assert stats["throughput"] == 19.0
    assert stats["p95"] == 10.0
    assert stats["server_cpu_s"] == 1.5


# ---- latency by turn -------------------------------------------------------------------------------


def test_turn_window() -> None:
    assert report.turn_window(1, 8) == (1, 8)
    assert report.turn_window(5, 8) == (1, 8)
    assert report.turn_window(100, 8) == (93, 100)
    assert report.turn_window(300, 8) == (293, 300)
    with pytest.raises(ValueError):
        report.turn_window(0, 8)


def test_p50_at_turns_pools_windows_and_skips_failures() -> None:
    first = [float(n) for n in range(1, 21)]  # turn n takes n ms
    second: list = [None] * 20
    second[18] = 100.0  # only turn 19 answered
    result = report.p50_at_turns([first, second], [1, 20, 50], width=4)
    assert result["1"] == pytest.approx(2.5)  # turns 1-4 of the first
    assert result["20"] == pytest.approx(19.0)  # turns 17-20 pooled: 17, 18, 19, 20 and 100
    assert result["50"] is None  # no conversation got that far


def test_rolling_median() -> None:
    assert report.rolling_median([1.0, 3.0, None, 5.0], 2) == [1.0, 2.0, 3.0, 5.0]


# ---- targets and the report -----------------------------------------------------------------------------


def _level(concurrency: int, p50: float, p95: float, msgs: int, wall: float) -> Dict[str, Any]:
    return report.level_stats(concurrency, msgs // 8, [p50] * (msgs // 2) + [p95] * (msgs - msgs // 2), 0, wall, 1.0)


def _result(ours_throughput_scale: float = 3.0, cold: Optional[float] = 12.0) -> Dict[str, Any]:
    base_levels = {"1": _level(1, 30, 60, 80, 3.0), "10": _level(10, 200, 400, 400, 10.0)}
    ours_levels = {
        "1": _level(1, 20, 40, 80, 3.0),
        "10": _level(10, 60, 120, 400, 10.0 / ours_throughput_scale),
    }
    return {
        "meta": {
            "date": "2026-11-25T18:00:00+00:00",
            "quick": True,
            "nproc": 2,
            "cpu_model": "AMD EPYC",
            "rasa_version": "3.6.21",
            "python": "3.10.13",
            "loadavg": "0.10 0.10 0.10",
            "notes": ["a note"],
        },
        "bots": {
            "ours": {
                "available": True,
                "cold_start_s": cold,
                "training_s": None,
                "training_note": "skipped in quick mode",
                "levels": ours_levels,
                "turns": {"1": 40.0, "50": 44.0},
                "turn_window": 8,
                "turn_series": [[40.0] * 50],
                "rss_mb": {"rasa": 900.0, "actions": 150.0},
                "knowledge_live_s": 1.2,
                "knowledge_note": "1.20 s (9 polls)",
                "widget": {"available": False, "note": "POST /webhooks/widget/session answered HTTP 404"},
            },
            "baseline": {
                "available": True,
                "cold_start_s": 30.0,
                "training_s": None,
                "training_note": "skipped in quick mode",
                "levels": base_levels,
                "turns": {"1": 30.0, "50": 70.0},
                "turn_window": 8,
                "turn_series": [[30.0] * 50],
                "rss_mb": {"rasa": 1100.0},
            },
        },
    }


def test_targets_pass_fail_and_skip() -> None:
    checks = report.evaluate_targets(_result())
    by_name = {check["name"]: check["status"] for check in checks}
    assert by_name["throughput >= 2.5x baseline"] == report.PASS  # 120 vs 40 msgs/s
    assert by_name["p95 <= 150 ms at 10 concurrent"] == report.PASS  # 120 ms
    assert by_name["p50 at turn 50 <= 1.3x p50 at turn 1"] == report.PASS  # 44 / 40 = 1.1
    assert by_name["cold start <= 20 s"] == report.PASS
    assert by_name["full training <= 90 s"] == report.SKIP
    assert by_name["knowledge edit live within 2 s"] == report.PASS
    assert len(checks) == 6


def test_targets_fail_when_slower() -> None:
    checks = {check["name"]: check for check in report.evaluate_targets(_result(ours_throughput_scale=2.0, cold=25.0))}
    assert checks["throughput >= 2.5x baseline"]["status"] == report.FAIL
    assert "2.00x" in checks["throughput >= 2.5x baseline"]["detail"]
    assert checks["cold start <= 20 s"]["status"] == report.FAIL


def test_targets_skip_when_ours_did_not_run() -> None:
    result = _result()
    result["bots"]["ours"] = {"available": False, "note": "bot/server/serve.py does not exist yet"}
    assert {check["status"] for check in report.evaluate_targets(result)} == {report.SKIP}


def test_render_markdown_has_every_figure_for_both_and_the_ratio() -> None:
    result = _result()
    text = report.render_markdown(result, report.evaluate_targets(result))
    assert text.startswith("# Benchmark 2026-11-25T18:00:00+00:00 (quick mode)")
    assert "2 CPUs (`nproc`), AMD EPYC" in text
    assert "- **PASS** throughput >= 2.5x baseline" in text
    assert "| cold start to first answer (s) | 12.0 | 30.0 | 0.40x |" in text
    assert "| throughput at 10 concurrent (msgs/s) | 120.0 | 40.0 | 3.00x |" in text
    assert "| p50 latency at turn 50 (ms) | 44 | 70 | 0.63x |" in text
    assert "| peak RSS, Rasa server (MB) | 900 | 1100 | 0.82x |" in text
    assert "| full training (s) | skipped in quick mode | skipped in quick mode | n/a |" in text
    assert "| knowledge edit to live (s) | 1.20 | n/a | n/a |" in text
    assert "Widget channel: not available (POST /webhooks/widget/session answered HTTP 404)." in text
    assert "- a note" in text
    assert text.endswith("\n")


def test_render_markdown_says_when_a_bot_is_not_available() -> None:
    result = _result()
    result["bots"]["ours"] = {"available": False, "note": "no trained model"}
    text = report.render_markdown(result, report.evaluate_targets(result))
    assert "ours: not available (no trained model)." in text
    assert "| cold start to first answer (s) | n/a | 30.0 | n/a |" in text


def test_write_report_writes_json_markdown_and_plots(tmp_path: Path) -> None:
    paths = report.write_report(_result(), tmp_path / "results", "20261125-180000")
    saved = json.loads((tmp_path / "results" / "20261125-180000.json").read_text())
    assert saved["bots"]["ours"]["cold_start_s"] == 12.0
    assert [check["status"] for check in saved["targets"]][:2] == [report.PASS, report.PASS]
    assert paths["markdown"].read_text().startswith("# Benchmark")
    for key in ("concurrency_plot", "turn_plot"):
        assert paths[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_write_report_without_plots(tmp_path: Path) -> None:
    paths = report.write_report(_result(), tmp_path, "x", plots=False)
    assert set(paths) == {"json", "markdown"}


# ---- the load generator's guards and the knowledge edit -------------------------------------------------


def test_load_refuses_anything_but_loopback() -> None:
    check_loopback("http://127.0.0.1:5005")
    check_loopback("http://localhost:5005")
    with pytest.raises(LoadError):
        check_loopback("http://10.0.0.5:5005")


def test_is_answer() -> None:
    assert is_answer([{"recipient_id": "a", "text": "Hello"}])
    assert is_answer([{"recipient_id": "a", "image": "https://example.org/x.png"}])
    assert not is_answer([])
    assert not is_answer([{"recipient_id": "a", "text": ""}])
    assert not is_answer({"text": "not a list"})


KNOWLEDGE = """\
topics:
  plan:
    answer:
      - "The Plan is our shared plan."
  children_count:
    title: how many children
    answer:
      - "There are about 280,000 children and young people in Lancashire."
      - "That counts everyone up to 19."
  other:
    answer: Plain scalar answer.
"""


def test_mark_answer_appends_inside_the_quotes_of_the_first_line() -> None:
    changed = mark_answer(KNOWLEDGE, "children_count", "MarkerX.")
    data = yaml.safe_load(changed)
    assert data["topics"]["children_count"]["answer"] == [
        "There are about 280,000 children and young people in Lancashire. MarkerX.",
        "That counts everyone up to 19.",
    ]
    assert data["topics"]["plan"] == yaml.safe_load(KNOWLEDGE)["topics"]["plan"]


def test_mark_answer_on_a_plain_scalar_and_a_missing_topic() -> None:
    assert (
        yaml.safe_load(mark_answer(KNOWLEDGE, "other", "M1"))["topics"]["other"]["answer"] == "Plain scalar answer. M1"
    )
    with pytest.raises(ValueError):
        mark_answer(KNOWLEDGE, "nope", "M")


def test_summarise_profile_ranks_self_time_and_busy_paths() -> None:
    raw = "main (a.py:1);loop (b.py:2);parse (c.py:3) 6\nmain (a.py:1);loop (b.py:2);save (d.py:4) 3\nmain (a.py:1) 1\n"
    lines = summarise_profile(raw)
    assert lines[0] == "10 samples; self time:"
    assert lines[1] == " 60.0%  parse (c.py:3)"
    assert " 30.0%  save (d.py:4)" in lines
    # main is on every stack (100 %) and loop on 90 %: both left out of the busy paths
    busy = lines[lines.index("inclusive (3-80 %):") + 1 :]
    assert busy == [" 60.0%  parse (c.py:3)", " 30.0%  save (d.py:4)"]
    assert summarise_profile("") == ["(no samples)"]


def test_the_report_says_which_levers_were_used(tmp_path: Path) -> None:
    paths = report.write_report(_result(), tmp_path, "20261125-000000", plots=False)
    text = paths["markdown"].read_text(encoding="utf-8")
    assert "## Levers used, and what each bought" in text
    assert report.LEVERS_FILE.read_text(encoding="utf-8").strip().splitlines()[0] in text
