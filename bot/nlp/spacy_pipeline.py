"""Builds the local spaCy pipeline Rasa's SpacyNLP loads: nothing is downloaded.

The pipeline is ``spacy.blank("en")`` with a lookup lemmatizer (tables from the
``spacy-lookups-data`` package) and an entity ruler generated from the knowledge
file: outcome names (label ``outcome``) and Lancashire's districts, towns and their
nicknames (label ``location``). Run it with ``make spacy`` or::

    python -m bot.nlp.spacy_pipeline --knowledge knowledge/lancashire.yml --out build/spacy_en
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Dict, List

from actions.constants import ENTITY_LOCATION, ENTITY_OUTCOME
from actions.knowledge import Knowledge, KnowledgeError, load_knowledge


def ruler_patterns(knowledge: Knowledge) -> List[Dict[str, Any]]:
    """Returns the entity ruler's patterns, one per way of naming an outcome or a place.

    Args:
        knowledge: the validated knowledge file.

    Returns:
        Phrase patterns (matched on lower-cased text) with the canonical name as ``id``.
    """
    patterns: List[Dict[str, Any]] = []
    seen = set()

    def add(label: str, phrase: str, canonical: str) -> None:
        key = (label, phrase.lower())
        if key not in seen:
            seen.add(key)
            patterns.append({"label": label, "pattern": phrase.lower(), "id": canonical})

    for outcome in knowledge.outcomes:
        for phrase in [outcome.name, *outcome.names]:
            add(ENTITY_OUTCOME, phrase, outcome.id)
    for area in knowledge.areas:
        for phrase in [area.district, *area.towns, *area.nicknames]:
            add(ENTITY_LOCATION, phrase, area.district)
            if "-" in phrase:
                add(ENTITY_LOCATION, phrase.replace("-", " "), area.district)
    return patterns


def build(knowledge: Knowledge, out: Path) -> Any:
    """Builds the pipeline and saves it to ``out``.

    Args:
        knowledge: the validated knowledge file.
        out: the folder to write (replaced if it exists).

    Returns:
        The spaCy ``Language`` object that was saved.
    """
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    ruler = nlp.add_pipe("entity_ruler", config={"phrase_matcher_attr": "LOWER", "overwrite_ents": True})
    nlp.initialize()
    # Patterns go in after initialize(): initialising the ruler clears them.
    ruler.add_patterns(ruler_patterns(knowledge))  # type: ignore[attr-defined]
    nlp.meta["name"] = "lancashire_local"
    nlp.meta["description"] = "Built locally from knowledge/lancashire.yml; no downloaded weights."
    out.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(out)
    return nlp


def main(argv: List[str]) -> int:
    """Command line: build the pipeline from the knowledge file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--knowledge", type=Path, default=Path("knowledge/lancashire.yml"))
    parser.add_argument("--out", type=Path, default=Path("build/spacy_en"))
    args = parser.parse_args(argv)
    try:
        knowledge = load_knowledge(args.knowledge)
    except KnowledgeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    nlp = build(knowledge, args.out)
    print(f"spaCy pipeline {nlp.pipe_names} with {len(ruler_patterns(knowledge))} patterns saved to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
