"""``make ask``: a member of staff checks what the assistant says to a question, and why.

    make ask Q="how much do the district councils give?"
    make ask FILE=questions.txt            # one question a line; writes a table to share

For each question it prints the intent and its confidence, whether the safety net fired and why
(disclosure or risk, the category and pattern, or the classifier's score), what the second
opinion said if it ran, the answer the assistant gives, and the source sentence it rests on. A
file of questions also gives ``results/ask/answers.md`` and ``answers.csv`` (or ``OUT=name``).

Everything runs in this one process: the trained model, and the real custom actions called
directly instead of over HTTP. Each question is asked in a new conversation. Nothing is stored.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import logging
import os
import sys
import uuid
import warnings
from pathlib import Path
from typing import Any, Dict, List

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results" / "ask"
COLUMNS = ["question", "intent", "confidence", "safety net", "answer", "source"]


def quiet() -> None:
    """Keeps TensorFlow, Rasa and Python's warnings off the screen."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    quiet_structlog()


def quiet_structlog() -> None:
    """Rasa's structured log (``processor.message.parse ... parse_data_text=...``) at warnings only.

    Unconfigured, structlog prints every debug line, each message's text included: thousands of
    lines for an evaluation run.
    """
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)


def safety_reason(parse: Dict[str, Any]) -> str:
    """Why the safety net fired, in words, or "no"."""
    found = parse.get("safety_net")
    if not isinstance(found, dict):
        return "no"
    level = "full safety reply" if found.get("level") == "disclosure" else "gentle check"
    if found.get("source") == "pattern":
        why = f"{found.get('category')} pattern \u201c{found.get('pattern')}\u201d"
    elif found.get("source") == "classifier":
        why = f"classifier score {found.get('score')}"
    else:
        why = "the intent classifier"
    return f"{level} ({why}; speaker: {found.get('speaker')})"


def in_process_actions() -> None:
    """Makes Rasa call the custom actions in this process (rasa_sdk's executor) instead of over HTTP."""
    from rasa.utils.endpoints import EndpointConfig
    from rasa_sdk.executor import ActionExecutor

    executor = ActionExecutor()
    executor.register_package("actions")

    async def request(self: Any, method: str = "post", subpath: Any = None, **kwargs: Any) -> Any:
        return await executor.run(kwargs["json"])

    EndpointConfig.request = request  # type: ignore[method-assign]


async def ask_all(model: Path, questions: List[str]) -> List[Dict[str, str]]:
    """Asks every question in a new conversation; returns one row each."""
    from rasa.core.agent import Agent
    from rasa.utils.endpoints import EndpointConfig

    from actions.knowledge import get_knowledge
    from bot.server.patches import apply_fixes

    apply_fixes()
    in_process_actions()
    agent = Agent.load(str(model), action_endpoint=EndpointConfig("http://in-process/webhook"))
    knowledge = get_knowledge()
    rows = []
    for question in questions:
        sender = f"ask-{uuid.uuid4().hex}"
        replies = await agent.handle_text(question, sender_id=sender) or []
        tracker = await agent.tracker_store.retrieve(sender)
        parse = tracker.latest_message.parse_data if tracker and tracker.latest_message else {}
        intent = parse.get("intent") or {}
        last = tracker.get_slot("last_topic") if tracker else None
        sources = knowledge.sources_of(str(last or "")) if last else []
        answer = "\n".join(r["text"] for r in replies if r.get("text"))
        rows.append(
            {
                "question": question,
                "intent": str(intent.get("name")),
                "confidence": f"{float(intent.get('confidence') or 0):.2f}",
                "safety net": safety_reason(parse),
                "second opinion": str(parse.get("second_opinion") or ""),
                "answer": answer,
                "source": " | ".join(f"{knowledge.sources[s.page].title}: \u201c{s.quote}\u201d" for s in sources),
            }
        )
    return rows


def show(row: Dict[str, str]) -> str:
    """One question's report, for the terminal."""
    lines = [
        f"Question:      {row['question']}",
        f"Intent:        {row['intent']} ({row['confidence']})",
        f"Safety net:    {row['safety net']}",
    ]
    if row["second opinion"]:
        lines.append(f"Second opinion: {row['second opinion']}")
    lines.append("Answer:")
    lines += [f"  {line}" for line in row["answer"].splitlines()] or ["  (none)"]
    lines.append(f"Source:        {row['source'] or '(none)'}")
    return "\n".join(lines)


def write_table(rows: List[Dict[str, str]], out: Path) -> List[Path]:
    """Writes the rows as Markdown and CSV; returns both paths."""
    out.parent.mkdir(parents=True, exist_ok=True)
    markdown = out.with_suffix(".md")
    cells = [[row[c].replace("|", "\\|").replace("\n", "<br>") for c in COLUMNS] for row in rows]
    text = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    text += ["| " + " | ".join(r) + " |" for r in cells]
    markdown.write_text("\n".join(text) + "\n", encoding="utf-8")
    table = out.with_suffix(".csv")
    with table.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return [markdown, table]


def main(argv: List[str]) -> int:
    """Asks one question (``-q``) or a file of them (``-f``)."""
    parser = argparse.ArgumentParser(description="What the assistant says to a question, and why.")
    parser.add_argument("-q", "--question")
    parser.add_argument("-f", "--file", type=Path)
    parser.add_argument("--out", type=Path, default=RESULTS / "answers")
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "assistant.tar.gz")
    args = parser.parse_args(argv)
    if bool(args.question) == bool(args.file):
        print('error: give one question (Q="...") or a file of questions (FILE=questions.txt)', file=sys.stderr)
        return 2
    if args.file:
        try:
            questions = [q.strip() for q in args.file.read_text(encoding="utf-8").splitlines() if q.strip()]
        except OSError as error:
            print(f"error: cannot read {args.file}: {error.strerror}", file=sys.stderr)
            return 2
    else:
        questions = [args.question]
    quiet()
    rows = asyncio.run(ask_all(args.model, questions))
    for row in rows:
        print(show(row), end="\n\n")
    if args.file:
        for path in write_table(rows, args.out):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
