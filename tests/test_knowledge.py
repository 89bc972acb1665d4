"""The knowledge file: every seed fact is in it, nothing is invented, and the loader fails clearly."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterator, List

import pytest
import yaml

from actions.knowledge import Knowledge, KnowledgeBase, KnowledgeError, load_knowledge, main
from tests.conftest import KNOWLEDGE, ROOT, SEEDS

PLAN_SEED = SEEDS / "000_c11fb3b0160ba4c0.txt"
TRUST_SEED = SEEDS / "003_14389ceaea0998db.txt"
NATIONAL_NUMBERS = {"999", "0800 1111", "0808 800 5000", "116 123"}


def squash(text: str) -> str:
    """Folds white space and curly quotes so quotes can be compared with the seeds."""
    return re.sub(r"\s+", " ", text.replace("\u2019", "'")).strip()


@pytest.fixture(scope="module")
def knowledge() -> Knowledge:
    return load_knowledge(KNOWLEDGE)


def told_lines(knowledge: Knowledge) -> Iterator[str]:
    """Every line the assistant can say from the knowledge file."""
    yield from knowledge.answer_lines(knowledge.currency)
    yield knowledge.currency.short
    for topic in knowledge.topics.values():
        yield from knowledge.answer_lines(topic)
        yield from topic.more
        for detail in topic.details.values():
            yield from knowledge.answer_lines(detail)
    yield from knowledge.human.answer
    yield from knowledge.outcome_answer  # templates: {number} is a position in the list, not a fact
    yield from knowledge.local_help.answer
    yield knowledge.local_help.no_local_details
    yield knowledge.local_help.no_place


def seed_figures(text: str) -> List[str]:
    """The numbers a seed states: 2,000 / £180,000 / 1,500,000 / 9 / 5 / 1 (not years or dates)."""
    figures = re.findall(r"£?\d{1,3}(?:,\d{3})+|\b\d+\b", text)
    ignored = {"2014", "17", "2018", "19", "2", "7", "18"}  # years, ages and the trailing date "2.7.18"
    return [f for f in figures if f not in ignored]


def test_the_project_knowledge_file_is_valid(knowledge: Knowledge) -> None:
    assert len(knowledge.outcomes) == 5
    assert {"plan", "outcomes", "trust", "boards", "funding", "coordinators"} <= set(knowledge.topics)


def test_every_figure_in_the_seeds_is_in_the_knowledge_file(knowledge: Knowledge) -> None:
    lines = "\n".join(told_lines(knowledge))
    seeds = PLAN_SEED.read_text() + TRUST_SEED.read_text()
    figures = set(seed_figures(seeds))
    assert {"£180,000", "280,000", "£1,500,000", "50,000", "2,000", "9", "5", "1"} <= figures
    missing = [f for f in figures if not re.search(rf"(?<![\d,]){re.escape(f)}(?![\d,])", lines)]
    assert not missing, f"figures in the seeds that no answer gives: {missing}"


def test_every_outcome_in_the_seed_is_in_the_knowledge_file(knowledge: Knowledge) -> None:
    bullets = re.findall(r"•\s*(To [^\n]+)", PLAN_SEED.read_text())
    assert len(bullets) == 5
    assert [o.name for o in knowledge.outcomes] == [b.strip() for b in bullets]


def test_every_source_quote_is_word_for_word_in_its_seed(knowledge: Knowledge) -> None:
    seeds = {name: squash((SEEDS / page.seed).read_text()) for name, page in knowledge.sources.items()}
    sources = [*knowledge.currency.all_sources(), knowledge.outcome_source, knowledge.local_help.source]
    for topic in knowledge.topics.values():
        sources += topic.all_sources()
        for detail in topic.details.values():
            sources += detail.all_sources()
    for source in sources:
        assert squash(source.quote) in seeds[source.page], f"not in {source.page}: {source.quote!r}"


def test_no_answer_gives_a_number_the_seeds_do_not(knowledge: Knowledge) -> None:
    seeds = squash(PLAN_SEED.read_text() + TRUST_SEED.read_text())
    seed_numbers = set(re.findall(r"\d[\d,]*", seeds)) | {"2017"}  # "2014-17", written out in full
    for line in told_lines(knowledge):
        line = re.sub(r"(?m)^\d\. ", "", line)  # the numbered list of outcomes
        for number in re.findall(r"\d[\d,]*\d|\d", line):
            assert number in seed_numbers, f"{number} in {line!r} is not in the seeds"


def test_no_phone_number_email_or_web_address_except_national_helplines(knowledge: Knowledge) -> None:
    for line in told_lines(knowledge):
        assert not re.search(r"\b0\d{3,4}\s?\d{3}\s?\d{3,4}\b|@|https?://|www\.", line), line
    for helpline in knowledge.helplines:
        assert helpline.national is True
        assert helpline.number in NATIONAL_NUMBERS


def test_the_review_notice_and_the_plan_years_are_told(knowledge: Knowledge) -> None:
    currency = " ".join(knowledge.answer_lines(knowledge.currency))
    assert "2014 to 2017" in currency and "under review" in currency
    assert "under review" in knowledge.currency.short and "2014" not in knowledge.currency.short
    up_to_date = " ".join(knowledge.answer_lines(knowledge.topics["up_to_date"]))
    assert "autumn 2018" in up_to_date and "under review" in up_to_date


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "knowledge.yml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def project_data() -> dict:
    return yaml.safe_load(KNOWLEDGE.read_text(encoding="utf-8"))


def test_a_broken_field_names_the_file_the_entry_and_the_field(tmp_path: Path) -> None:
    data = project_data()
    del data["topics"]["plan"]["source"]["quote"]
    path = write(tmp_path, data)
    with pytest.raises(KnowledgeError) as error:
        load_knowledge(path)
    message = str(error.value)
    assert str(path) in message and "topics → plan → source → quote" in message and "field required" in message


def test_an_unknown_field_is_an_error(tmp_path: Path) -> None:
    data = project_data()
    data["topics"]["plan"]["answr"] = ["typo"]
    with pytest.raises(KnowledgeError, match="topics → plan → answr"):
        load_knowledge(write(tmp_path, data))


def test_a_source_page_must_be_declared(tmp_path: Path) -> None:
    data = project_data()
    data["topics"]["video"]["source"]["page"] = "nowhere"
    with pytest.raises(KnowledgeError, match="source page 'nowhere'"):
        load_knowledge(write(tmp_path, data))


def test_a_helpline_must_be_national_and_give_its_number(tmp_path: Path) -> None:
    data = project_data()
    data["helplines"][0]["national"] = False
    with pytest.raises(KnowledgeError, match="national"):
        load_knowledge(write(tmp_path, data))
    data = project_data()
    data["helplines"][1]["message"] = "Call Childline."
    with pytest.raises(KnowledgeError, match="number"):
        load_knowledge(write(tmp_path, data))


def test_not_yaml_and_missing_file_fail_clearly(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("topics: [unclosed\n")
    with pytest.raises(KnowledgeError, match="not valid YAML"):
        load_knowledge(bad)
    with pytest.raises(KnowledgeError, match="cannot read"):
        load_knowledge(tmp_path / "missing.yml")


def test_the_command_line_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(KNOWLEDGE)]) == 0
    assert "OK" in capsys.readouterr().out
    data = project_data()
    data["outcomes"][0].pop("name")
    assert main([str(write(tmp_path, data))]) == 1
    assert "outcomes → 0 → name" in capsys.readouterr().err


def test_per_area_contacts_can_be_added_without_code(tmp_path: Path) -> None:
    data = project_data()
    burnley = next(a for a in data["areas"] if a["district"] == "Burnley")
    burnley["contacts"] = [
        {"name": "Example hub", "phone": "01234 000000", "source": {"page": "trust_page", "quote": "x"}}
    ]
    knowledge = load_knowledge(write(tmp_path, data))
    area, place = knowledge.find_area("help in padiham please")
    assert area.district == "Burnley" and place == "Padiham"
    assert area.contacts[0].phone == "01234 000000"
    assert knowledge.sources_of("area:Burnley")[0].quote == "x"


def test_live_reload_picks_up_an_edit_and_keeps_the_last_good_version(tmp_path: Path) -> None:
    path = write(tmp_path, project_data())
    base = KnowledgeBase(path, check_every=0)
    assert "280,000" in base.get(now=0).topics["children_count"].answer[0]
    data = project_data()
    data["topics"]["children_count"]["answer"][0] = "EDITED about 280,000"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    os.utime(path, (1, 1))  # a different mtime even on a coarse clock
    assert base.get(now=1).topics["children_count"].answer[0] == "EDITED about 280,000"
    path.write_text("topics: [broken", encoding="utf-8")
    assert base.get(now=2).topics["children_count"].answer[0] == "EDITED about 280,000"


def test_find_outcome_and_area(knowledge: Knowledge) -> None:
    assert knowledge.find_outcome("what about being healthy")[0] == 4
    assert knowledge.find_outcome("to be listened to?")[1].id == "be_listened_to"
    assert knowledge.find_outcome("what is the plan") is None
    assert knowledge.find_area("help near skem")[0].district == "West Lancashire"
    assert knowledge.find_area("early help in Ribble Valley")[0].district == "Ribble Valley"
    assert knowledge.find_area("help in manchester") is None


def test_an_answer_has_at_most_three_messages_and_every_detail_a_known_kind(tmp_path: Path) -> None:
    data = project_data()
    data["topics"]["plan"]["answer"] = ["a", "b", "c", "d"]
    with pytest.raises(KnowledgeError, match="at most 3 lines"):
        load_knowledge(write(tmp_path, data))
    data = project_data()
    data["topics"]["plan"]["details"]["colour"] = data["topics"]["plan"]["details"]["when"]
    with pytest.raises(KnowledgeError, match="unknown detail kinds"):
        load_knowledge(write(tmp_path, data))
    data = project_data()
    data["topics"]["plan"]["related"] = ["nowhere"]
    with pytest.raises(KnowledgeError, match="unknown topics"):
        load_knowledge(write(tmp_path, data))


def test_every_topic_can_be_reached(knowledge: Knowledge) -> None:
    """Each topic is asked by its own intent (with a rule), or is a narrower part of one, or is
    answered by an action that names it (feedback)."""
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    rules = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "data" / "rules").glob("*.yml"))
    actions = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "actions").glob("*.py"))
    narrower = {part for topic in knowledge.topics.values() for part in topic.narrower}
    unreachable = []
    for topic_id in knowledge.topics:
        intent = f"ask_{topic_id}"
        by_intent = intent in domain["intents"] and f"intent: {intent}\n" in rules
        if not (by_intent or topic_id in narrower or f'"{topic_id}"' in actions):
            unreachable.append(topic_id)
    assert not unreachable, f"topics nobody can ask about: {unreachable}"


def test_the_helpline_numbers_in_the_domain_are_the_knowledge_files(knowledge: Knowledge) -> None:
    numbers = {h.number for h in knowledge.helplines}
    domain = (ROOT / "domain.yml").read_text(encoding="utf-8")
    found = set(re.findall(r"\b(999|0\d{3} \d{3,4}(?: \d{4})?|116 123)\b", domain))
    assert found and found <= numbers, f"numbers in domain.yml not in the knowledge file: {found - numbers}"
