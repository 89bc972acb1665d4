"""Tests for the safety net: the matcher and its pattern language, the shipped taxonomy and
patterns, the classifier, and the Rasa component.

The measure of the whole net on words nobody listed is the blind evaluation
(``scripts/blind_eval.py``, run by ``make test``): these tests pin down how each part works.
"""

import copy
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import yaml
from rasa.engine.graph import ExecutionContext, GraphNode, GraphSchema
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.engine.validation import validate
from rasa.nlu.classifiers.fallback_classifier import FallbackClassifier
from rasa.shared.core.events import Event, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.data import TrainingType
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader
from rasa.shared.nlu.training_data.message import Message

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the project root, as `rasa` itself adds it
    sys.path.insert(0, str(ROOT))

from actions.knowledge import load_knowledge  # noqa: E402
from bot.nlp.safety import classifier as risk_model  # noqa: E402
from bot.nlp.safety import load as safety_net  # noqa: E402
from bot.nlp.safety.component import SafetyNet  # noqa: E402
from bot.nlp.safety.load import compile_patterns, load_matcher  # noqa: E402
from bot.nlp.safety.match import SafetyNetConfigError, within_one_edit  # noqa: E402

PATTERNS_FILE = ROOT / "knowledge" / "safety_net.yml"
EXAMPLES_DIR = ROOT / "knowledge" / "safety_examples"
DISTRESS_FILE = ROOT / "tests" / "safety" / "distress.yml"
ORDINARY_FILE = ROOT / "tests" / "safety" / "ordinary.yml"
NLU_DIR = ROOT / "data" / "nlu"
TAXONOMY = {
    "suicide", "self_harm", "overdose_poisoning", "eating", "physical_abuse", "sexual_abuse", "online_grooming",
    "exploitation", "domestic_abuse", "neglect", "weapons_violence", "bullying", "runaway_homeless",
    "forced_marriage_fgm", "radicalisation", "third_party", "adult_worried",
}  # fmt: skip


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def distress_messages() -> List[Dict[str, str]]:
    return yaml.safe_load(DISTRESS_FILE.read_text(encoding="utf-8"))["messages"]


def ordinary_messages() -> List[str]:
    return yaml.safe_load(ORDINARY_FILE.read_text(encoding="utf-8"))["messages"]


def key(text: str) -> str:
    """A message reduced to its normalised words, to compare two data sets."""
    return " ".join(load_matcher(PATTERNS_FILE).normaliser(text))


def write_patterns(tmp_path: Path, data: Any, name: str = "patterns.yml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def category(name: str, disclosure: List[str], risk: Optional[List[str]] = None, **extra: Any) -> Dict[str, Any]:
    found: Dict[str, Any] = {"id": name, "about": f"what {name} covers", "disclosure": disclosure, **extra}
    if risk:
        found["risk"] = risk
    return found


def mini_matcher(tmp_path: Path, patterns: List[str], guards: Optional[List[str]] = None, **extra: Any):
    data: Dict[str, Any] = {
        "text_speak": {"im": "i am", "dont": "do not"},
        "between_words": {"2": "to"},
        "word_lists": {"parent": ["mum", "dad", "step dad"]},
        "categories": [category("test", patterns)],
        **extra,
    }
    if guards:
        data["guards"] = guards
    return load_matcher(write_patterns(tmp_path, data))


# ---------------------------------------------------------------------------
# The shipped taxonomy, patterns and examples
# ---------------------------------------------------------------------------


def test_the_taxonomy_names_every_kind_of_danger_with_words_staff_can_read() -> None:
    matcher = load_matcher(PATTERNS_FILE)
    ids = {c.id for c in matcher.categories}
    assert TAXONOMY <= ids, f"missing from the taxonomy: {TAXONOMY - ids}"
    assert all(len(c.about) > 40 for c in matcher.categories)
    known = {h.id for h in load_knowledge(ROOT / "knowledge" / "lancashire.yml").helplines}
    for c in matcher.categories:
        assert set(c.helplines) <= known, (c.id, c.helplines)
    assert matcher.category("suicide").urgent and "samaritans" in matcher.category("suicide").helplines


def test_the_team_wrote_at_least_25_examples_of_every_kind_apart_from_the_blind_sets() -> None:
    per: Dict[str, int] = {}
    texts = set()
    for path in EXAMPLES_DIR.glob("danger*.yml"):
        for entry in yaml.safe_load(path.read_text(encoding="utf-8")):
            per[entry["category"]] = per.get(entry["category"], 0) + 1
            texts.add(key(entry["text"]))
    assert all(per.get(name, 0) >= 25 for name in TAXONOMY), per
    blind = set()
    for path in (ROOT / "tests" / "blind").rglob("*.yml"):
        entries = yaml.safe_load(path.read_text("utf-8"))
        blind |= {key(e["text"]) for e in entries if isinstance(e, dict) and "text" in e}
    ordinary = set()
    for path in EXAMPLES_DIR.glob("ordinary*.yml"):
        ordinary |= {key(e["text"]) for e in yaml.safe_load(path.read_text(encoding="utf-8"))}
    assert not (texts | ordinary) & blind, "a blind-written test message is in the training examples"


def test_every_regression_message_is_caught() -> None:
    matcher = load_matcher(PATTERNS_FILE)
    missed = [item["text"] for item in distress_messages() if matcher.assess(item["text"]) is None]
    assert not missed, f"{len(missed)} distress messages not caught: {missed}"


def test_no_regression_ordinary_message_is_flagged() -> None:
    matcher = load_matcher(PATTERNS_FILE)
    flagged = [(t, v.category, v.pattern) for t in ordinary_messages() if (v := matcher.assess(t)) is not None]
    assert not flagged, f"{len(flagged)} ordinary messages flagged (text, category, pattern): {flagged}"


def test_other_intents_training_examples_are_not_flagged_by_the_patterns() -> None:
    matcher = load_matcher(PATTERNS_FILE)
    flagged = []
    for path in sorted(NLU_DIR.glob("*.yml")):
        for message in RasaYAMLReader().read(path).intent_examples:
            if message.get(INTENT) == "safeguarding":
                continue
            found = matcher.assess(message.get(TEXT))
            if found is not None:
                flagged.append((path.name, message.get(INTENT), message.get(TEXT), found.pattern))
    assert not flagged, f"examples of other intents the safety net would take over: {flagged}"


def test_the_training_ordinary_examples_never_get_the_full_reply() -> None:
    matcher = load_matcher(PATTERNS_FILE)
    full = []
    for path in EXAMPLES_DIR.glob("ordinary*.yml"):
        for entry in yaml.safe_load(path.read_text(encoding="utf-8")):
            found = matcher.assess(entry["text"])
            if found is not None and found.level == "disclosure":
                full.append((entry["text"], found.pattern))
    assert len(full) <= 3, full


@pytest.mark.parametrize(
    "text, level",
    [
        ("im scared 2 go home", "disclosure"),
        ("my dad hits me", "disclosure"),
        ("i want to kms", "disclosure"),
        ("nobody would care if i was gone", "disclosure"),
        ("i cut myself", "disclosure"),
        ("what are the outcomes? also i'm scared to go home", "disclosure"),
        ("lowkey od'd this weekend", "risk"),
        ("i od'd last night", "disclosure"),
        ("some man online keeps asking for pics", "risk"),
        ("theres a lad in my year with a knife", "risk"),
        ("mum's always drunk and i look after my little bro", "risk"),
        ("nowhere to sleep tonight", "disclosure"),
    ],
)
def test_brief_examples(text: str, level: str) -> None:
    found = load_matcher(PATTERNS_FILE).assess(text)
    assert found is not None and found.level == level, (text, found)


@pytest.mark.parametrize(
    "text",
    [
        "what does 'to feel safe' mean?",
        "no one's in danger",
        "i'm fine, just asking",
        "this form is killing me",
        "my phone died",
        "got a headshot in fortnite",
        "is it safe to share the video",
        "what does the trust do about county lines",
        "I'm at my wits' end with my toddler's tantrums",
    ],
)
def test_ordinary_wording_is_not_flagged(text: str) -> None:
    assert load_matcher(PATTERNS_FILE).assess(text) is None, text


@pytest.mark.parametrize(
    "text, speaker",
    [
        ("my dad hits me", "child"),
        ("I'm a teacher and a pupil told me her dad hits her", "adult"),
        ("my son has cuts on his arms", "adult"),
        ("youth worker here, one of our lads has gone missing", "adult"),
        ("my friend cuts herself", "child"),
    ],
)
def test_who_is_talking(text: str, speaker: str) -> None:
    assert load_matcher(PATTERNS_FILE).speaker(text) == speaker


def test_a_disclosure_anywhere_wins_over_a_risk_earlier_in_the_file(tmp_path: Path) -> None:
    path = write_patterns(
        tmp_path,
        {"categories": [category("first", ["zzz never"], risk=["knife"]), category("second", ["hits me"])]},
    )
    found = load_matcher(path).assess("he hits me with a knife")
    assert found is not None and (found.level, found.category) == ("disclosure", "second")
    found = load_matcher(path).assess("he has a knife")
    assert found is not None and (found.level, found.category) == ("risk", "first")


def test_all_of_patterns_need_every_part_in_any_order(tmp_path: Path) -> None:
    matcher = mini_matcher(tmp_path, ["pills && (vodka|drink)"])
    assert matcher.assess("had some vodka and then the pills")
    assert matcher.assess("pills with a drink")
    assert not matcher.assess("pills")
    assert not matcher.assess("vodka")


# ---------------------------------------------------------------------------
# Normalisation and typo matching
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, words",
    [
        ("im scared 2 go home", "i am scared to go home"),
        ("I'M SCARED!!! 2 go home...", "i am scared to go home"),
        ("i don’t feel safe", "i do not feel safe"),
        ("u r sooooo mean", "you are soo mean"),
        ("i wanna die", "i want to die"),
        ("they r at skool", "they are at school"),
        ("2 people", "2 people"),
        ("call 2", "call 2"),
        ("open 2 5pm", "open 2 5pm"),
        ("scared 4 you", "scared for you"),
        ("Café naïve", "cafe naive"),
        ("kms", "kill myself"),
        ("", ""),
    ],
)
def test_normalisation(text: str, words: str) -> None:
    assert " ".join(load_matcher(PATTERNS_FILE).normaliser(text)) == words


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ("scared", "scared", True),
        ("scared", "scard", True),  # letter missing
        ("scared", "scaredd", True),  # letter added
        ("scared", "scarad", True),  # letter changed
        ("scared", "scraed", True),  # two letters swapped
        ("scared", "sacred", True),
        ("scared", "scr", False),
        ("scared", "scarfs", False),
        ("bullied", "bulied", True),
        ("abc", "cab", False),
        ("ab", "ba", True),
    ],
)
def test_within_one_edit(a: str, b: str, expected: bool) -> None:
    assert within_one_edit(a, b) is expected
    assert within_one_edit(b, a) is expected


def test_typos_only_for_long_words_with_the_same_first_letter(tmp_path: Path) -> None:
    matcher = mini_matcher(tmp_path, ["scared of home", "=pills now"])
    assert matcher.assess("scraed of home")
    assert matcher.assess("scard of home")
    assert not matcher.assess("scared of hme")  # "home" is short: no typo matching
    assert not matcher.assess("dcared of home")  # first letter differs
    assert matcher.assess("scarrred of home")  # letter runs are shortened first
    assert matcher.assess("pills now")
    assert not matcher.assess("pils now")  # "=" turns typo matching off


# ---------------------------------------------------------------------------
# Pattern language
# ---------------------------------------------------------------------------


def test_words_must_be_in_order_and_next_to_each_other(tmp_path: Path) -> None:
    matcher = mini_matcher(tmp_path, ["dad hits me"])
    assert matcher.assess("my dad hits me")
    assert matcher.assess("My DAD hits me!!!")
    assert not matcher.assess("dad always hits me")
    assert not matcher.assess("me hits dad")


def test_choices_optional_words_prefixes_and_lists(tmp_path: Path) -> None:
    matcher = mini_matcher(tmp_path, ["my? @parent (hit*|hurts|slaps) (me|my (sister|brother))"])
    for text in ["mum hits me", "my step dad hitting me", "dad slaps my sister", "my dad hurts me"]:
        assert matcher.assess(text), text
    for text in ["my dad hugs me", "my uncle hits me", "dad hurts my cat", "dad hurting me"]:
        assert not matcher.assess(text), text


def test_gaps(tmp_path: Path) -> None:
    matcher = mini_matcher(tmp_path, ["kid ...8 bruises", "scared ... home"])
    assert matcher.assess("a kid in my street who always has bruises")
    assert not matcher.assess("a kid a b c d e f g h i has bruises")  # 10 words apart
    assert matcher.assess("scared to go home")
    assert matcher.assess("scared home")
    assert not matcher.assess("scared a b c d e home")  # more than 4 ("gap_words")


def test_gap_size_setting(tmp_path: Path) -> None:
    matcher = mini_matcher(tmp_path, ["scared ... home"], settings={"gap_words": 1})
    assert matcher.assess("scared of home")
    assert not matcher.assess("scared to go home")


def test_text_speak_applies_to_patterns_and_messages(tmp_path: Path) -> None:
    matcher = mini_matcher(tmp_path, ["dont feel safe"])
    assert matcher.assess("i do not feel safe")
    assert matcher.assess("i don't feel safe")
    assert matcher.assess("i dont feel safe")


def test_categories_are_checked_in_file_order(tmp_path: Path) -> None:
    path = write_patterns(
        tmp_path,
        {"categories": [category("first", ["hurt me"]), category("second", ["dad"])]},
    )
    match = load_matcher(path).assess("dad hurt me")
    assert match is not None and (match.category, match.pattern) == ("first", "hurt me")
    second = load_matcher(path).assess("dad")
    assert second is not None and second.category == "second"


def test_guard_removes_only_its_own_words(tmp_path: Path) -> None:
    matcher = mini_matcher(
        tmp_path,
        ["feel safe", "@parent ... hit* me"],
        guards=["what does to feel safe mean", "beat me at fifa"],
    )
    assert not matcher.assess("what does to feel safe mean")
    assert matcher.assess("what does to feel safe mean? i dont feel safe")
    # The guard takes "beat me at fifa"; the rest still reads "dad and then hit me".
    matcher2 = mini_matcher(tmp_path, ["@parent ... hit* me"], guards=["hit me at fifa"])
    assert not matcher2.assess("dad hit me at fifa")
    assert matcher2.assess("dad hit me at fifa and then hit me")


def test_long_and_adversarial_messages_are_fast() -> None:
    matcher = load_matcher(PATTERNS_FILE)
    hostile = " ".join(["my dad my mum he she they someone hits to me scared i am"] * 150)
    start = time.perf_counter()
    matcher.assess(hostile)
    matcher.assess("what are the outcomes of the plan " * 300)
    assert time.perf_counter() - start < 1.0


# ---------------------------------------------------------------------------
# Loading and errors
# ---------------------------------------------------------------------------

ONE = "categories:\n  - id: x\n    about: y\n    disclosure: "


@pytest.mark.parametrize(
    "content, problem",
    [
        ("categories: [\n  - id: x\n", "not valid YAML"),
        ("- just a list\n", "must be a YAML mapping"),
        ("guards: []\n", "'categories' must be a non-empty list"),
        ("categories:\n  - id: x\n    about: y\n", "needs 'disclosure' or 'risk'"),
        ("categories:\n  - disclosure: [a]\n", "must be a mapping with an 'id'"),
        ("categories:\n  - id: x\n    disclosure: [a]\n", "needs 'about'"),
        ("categories:\n  - id: x\n    about: y\n    patterns: [a]\n", "unknown keys"),
        ("categories:\n  - id: x\n    about: y\n    urgent: maybe\n    risk: [a]\n", "urgent must be true or false"),
        (ONE + "['(dad hits me']\n", "missing ')'"),
        (ONE + "['dad hits) me']\n", "unexpected ')'"),
        (ONE + "['@nobody hits me']\n", "unknown word list '@nobody'"),
        (ONE + "['(a|b)? c?']\n", "every word in"),
        (ONE + "['... home']\n", "'...' cannot start or end"),
        (ONE + "['dad [hits] me']\n", "cannot read"),
        (ONE + "['(a||b) c']\n", "empty words or choice"),
        (ONE + "['a | b']\n", "unexpected '|'"),
        (ONE + "['a && ']\n", "empty part"),
        (ONE + "[a]\n  - id: x\n    about: y\n    disclosure: [b]\n", "appears twice"),
        ("settings: {gap_words: 0}\n" + ONE + "[a]\n", "gap_words"),
        ("text_speak: {'a b': c}\n" + ONE + "[a]\n", "text_speak entry"),
        ("word_lists: {l: ['@l']}\n" + ONE + "['@l']\n", "refers to itself"),
        ("guards: [5]\n" + ONE + "[a]\n", "guards must hold only non-empty text"),
    ],
)
def test_broken_patterns_file_fails_naming_the_file(tmp_path: Path, content: str, problem: str) -> None:
    path = write_patterns(tmp_path, content, name="broken_safety_net.yml")
    with pytest.raises(SafetyNetConfigError) as error:
        load_matcher(path)
    assert str(path) in str(error.value)
    assert problem in str(error.value)


def test_missing_patterns_file_fails_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yml"
    with pytest.raises(SafetyNetConfigError, match="nowhere.yml"):
        load_matcher(path)


def test_compile_patterns_accepts_parsed_data() -> None:
    matcher = compile_patterns({"categories": [category("x", ["hello there"])]}, Path("inline"))
    assert matcher.assess("oh hello there")
    assert matcher.pattern_count == 1


def test_matcher_is_compiled_once_and_reloaded_when_the_file_changes(tmp_path: Path) -> None:
    path = write_patterns(tmp_path, {"categories": [category("x", ["alpha"])]})
    first = load_matcher(path)
    assert load_matcher(path) is first
    write_patterns(tmp_path, {"categories": [category("x", ["bravo"])]})
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = load_matcher(path)
    assert second is not first
    assert second.assess("bravo") and not second.assess("alpha")


def test_default_file_is_found_from_another_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert safety_net.resolve_patterns_file() == PATTERNS_FILE.resolve()
    found = safety_net.assess("i wanna die")
    assert found is not None and found.category == "suicide"


# ---------------------------------------------------------------------------
# The classifier
# ---------------------------------------------------------------------------


def test_the_classifier_learns_from_examples_and_is_saved_and_loaded(tmp_path: Path) -> None:
    matcher = load_matcher(PATTERNS_FILE)
    danger = [f"he keeps doing the thing again {i}" for i in range(20)] + ["nobody at home feeds us"] * 5
    ordinary = [f"what is the plan for year {i}" for i in range(20)] + ["how much money is there"] * 5
    model = risk_model.train(danger, ordinary, matcher)
    assert model.score("he keeps doing the thing") > 0.5 > model.score("what is the plan")
    path = tmp_path / "model.joblib"
    risk_model.save(model, path, (25, 25))
    again = risk_model.load(path, matcher)
    assert again.score("he keeps doing the thing") == pytest.approx(model.score("he keeps doing the thing"))
    assert again.score("") == 0.0


def test_a_missing_or_old_classifier_says_what_to_run(tmp_path: Path) -> None:
    matcher = load_matcher(PATTERNS_FILE)
    with pytest.raises(risk_model.SafetyClassifierError, match="make safety-model"):
        risk_model.load(tmp_path / "none.joblib", matcher)
    import joblib

    joblib.dump({"format": 0}, tmp_path / "old.joblib")
    with pytest.raises(risk_model.SafetyClassifierError, match="another version"):
        risk_model.load(tmp_path / "old.joblib", matcher)


def test_bad_example_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "danger_x.yml").write_text("- just text\n", encoding="utf-8")
    with pytest.raises(risk_model.SafetyClassifierError, match="danger_x.yml"):
        risk_model.read_examples(tmp_path)
    (tmp_path / "danger_x.yml").write_text("- text: ok\n", encoding="utf-8")
    (tmp_path / "notes.yml").write_text("- text: ok\n", encoding="utf-8")
    with pytest.raises(risk_model.SafetyClassifierError, match="danger"):
        risk_model.read_examples(tmp_path)


# ---------------------------------------------------------------------------
# The Rasa component
# ---------------------------------------------------------------------------


class FixedScore:
    """Stands in for the trained classifier: one score for every text."""

    def __init__(self, value: float) -> None:
        self.value = value

    def score(self, text: str) -> float:
        return self.value


def make_component(tmp_path: Path, score: Optional[float] = None, **config: Any) -> SafetyNet:
    component = SafetyNet.create(
        {**SafetyNet.get_default_config(), "patterns_file": str(PATTERNS_FILE), "classifier_file": None, **config},
        LocalModelStorage(tmp_path),
        Resource("safety_net"),
        ExecutionContext(GraphSchema({}), "test"),
    )
    if score is not None:
        component.classifier = FixedScore(score)  # type: ignore[assignment]
    return component


def diet(text: str, ranking: List[Dict[str, Any]], fallback: bool = False) -> Message:
    """A message as DIETClassifier (and optionally FallbackClassifier) leaves it."""
    ranking = [dict(r) for r in ranking]
    intent = dict(ranking[0]) if ranking else {"name": None, "confidence": 0.0}
    if fallback:
        intent = {"name": "nlu_fallback", "confidence": 0.55}
        ranking.insert(0, dict(intent))
    message = Message(data={TEXT: text})
    message.set(INTENT, intent, add_to_output=True)
    message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
    return message


OUTCOMES_RANKING = [
    {"name": "ask_outcomes", "confidence": 0.91},
    {"name": "greet", "confidence": 0.05},
    {"name": "safeguarding", "confidence": 0.04},
]


def assert_safeguarding(message: Message, level: str, source: str, category: Optional[str] = None) -> Dict[str, Any]:
    assert message.get(INTENT) == {"name": "safeguarding", "confidence": 1.0}
    ranking = message.get(INTENT_RANKING_KEY)
    assert ranking[0] == {"name": "safeguarding", "confidence": 1.0}
    assert [r["name"] for r in ranking].count("safeguarding") == 1
    found = message.get("safety_net")
    assert (found["level"], found["source"]) == (level, source)
    if category:
        assert found["category"] == category
    return found


def test_a_disclosure_overrides_a_confident_other_intent(tmp_path: Path) -> None:
    message = diet("what are the outcomes? also i'm scared to go home", OUTCOMES_RANKING)
    make_component(tmp_path).process([message])
    found = assert_safeguarding(message, "disclosure", "pattern", "unsafe")
    assert "then" not in found and found["speaker"] == "child"
    assert [r["name"] for r in message.get(INTENT_RANKING_KEY)] == ["safeguarding", "ask_outcomes", "greet"]


def test_a_disclosure_overrides_nlu_fallback(tmp_path: Path) -> None:
    message = diet("i wnt 2 die", [{"name": "chitchat", "confidence": 0.3}, {"name": "greet", "confidence": 0.28}])
    FallbackClassifier({"threshold": 0.55, "ambiguity_threshold": 0.1}).process([message])
    assert message.get(INTENT)["name"] == "nlu_fallback"  # what the component receives
    make_component(tmp_path).process([message])
    found = assert_safeguarding(message, "disclosure", "pattern", "suicide")
    assert found["urgent"] is True and "samaritans" in found["helplines"]


def test_a_risk_keeps_the_question_asked_for_after_the_check(tmp_path: Path) -> None:
    ranking = [{"name": "ask_local_help", "confidence": 0.8}, {"name": "safeguarding", "confidence": 0.1}]
    message = diet("any help in preston, theres a lad with a knife at school", ranking)
    make_component(tmp_path).process([message])
    found = assert_safeguarding(message, "risk", "pattern", "weapons_violence")
    assert found["then"] == {"intent": "ask_local_help", "confidence": 0.8}


@pytest.mark.parametrize("score, fires", [(0.49, False), (0.5, True), (0.9, True)])
def test_the_classifier_gives_the_check_at_its_threshold(tmp_path: Path, score: float, fires: bool) -> None:
    message = diet("things just feel wrong lately", [{"name": "ask_plan", "confidence": 0.6}])
    before = copy.deepcopy(message.data)
    make_component(tmp_path, score=score, classifier_threshold=0.5).process([message])
    if fires:
        found = assert_safeguarding(message, "risk", "classifier")
        assert found["score"] == pytest.approx(score) and found["then"]["intent"] == "ask_plan"
    else:
        assert message.data == before


@pytest.mark.parametrize("confidence, fires", [(0.5, False), (0.94, False), (0.95, True)])
def test_the_intent_classifier_votes_only_when_all_but_certain(tmp_path: Path, confidence: float, fires: bool) -> None:
    ranking = [{"name": "safeguarding", "confidence": confidence}, {"name": "ask_outcomes", "confidence": 0.05}]
    message = diet("hmm", ranking)
    make_component(tmp_path, score=0.0, intent_vote_threshold=0.95).process([message])
    assert (message.get("safety_net") is not None) is fires
    if fires:
        assert_safeguarding(message, "risk", "intent")


def test_ordinary_messages_are_left_untouched(tmp_path: Path) -> None:
    component = make_component(tmp_path, score=0.0)
    messages = [diet(text, OUTCOMES_RANKING, fallback=i % 2 == 0) for i, text in enumerate(ordinary_messages())]
    before = [(copy.deepcopy(m.data), set(m.output_properties)) for m in messages]
    component.process(messages)
    after = [(m.data, m.output_properties) for m in messages]
    changed = [m.get(TEXT) for m, b, a in zip(messages, before, after) if b != a]
    assert not changed, changed


def test_the_net_reads_the_text_as_typed_not_the_tidied_one(tmp_path: Path) -> None:
    message = diet("what is the plan", OUTCOMES_RANKING)
    message.set("raw_text", "i want to die")
    make_component(tmp_path).process([message])
    assert_safeguarding(message, "disclosure", "pattern", "suicide")


def test_safety_net_attribute_reaches_the_tracker(tmp_path: Path) -> None:
    message = diet("my mum kicked me out", OUTCOMES_RANKING)
    make_component(tmp_path).process([message])
    # What rasa.core.processor.MessageProcessor._parse_message_with_graph builds:
    parse_data: Dict[str, Any] = {TEXT: "", INTENT: {"name": None, "confidence": 0.0}, ENTITIES: []}
    parse_data.update(message.as_dict(only_output_properties=True))
    assert parse_data["safety_net"]["level"] == "disclosure"
    event = UserUttered(message.get(TEXT), parse_data[INTENT], parse_data[ENTITIES], parse_data)
    restored = Event.from_parameters(event.as_dict())  # as a tracker store saves and loads it
    tracker = DialogueStateTracker.from_events("someone", [restored])
    latest = tracker.current_state()["latest_message"]  # what the action server receives
    assert latest["intent"]["name"] == "safeguarding"
    assert latest["safety_net"]["level"] == "disclosure"


def test_message_text_is_never_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    component = make_component(tmp_path, score=0.9)
    component.process([diet("my dad hits me zebracorn", OUTCOMES_RANKING)])
    component.process([diet("hello zebracorn", [{"name": "safeguarding", "confidence": 0.9}])])
    component.process([diet("what is zebracorn", OUTCOMES_RANKING)])
    assert caplog.records, "expected debug records saying why the net fired"
    assert not [r for r in caplog.records if "zebracorn" in r.getMessage()]
    assert not [r for r in caplog.records if r.levelno >= logging.INFO and r.name.startswith("bot.")]


@pytest.mark.parametrize("key", ["classifier_threshold", "intent_vote_threshold"])
@pytest.mark.parametrize("threshold", [-0.1, 1.5, "high", None, True])
def test_bad_threshold_is_rejected(tmp_path: Path, key: str, threshold: Any) -> None:
    with pytest.raises(InvalidConfigException, match=key):
        make_component(tmp_path, **{key: threshold})


def test_component_with_broken_files_fails_naming_the_file(tmp_path: Path) -> None:
    path = write_patterns(tmp_path, ONE + "['(oops']\n", name="my_patterns.yml")
    with pytest.raises(InvalidConfigException) as error:
        make_component(tmp_path, patterns_file=str(path))
    assert str(path) in str(error.value)
    with pytest.raises(InvalidConfigException, match="missing_file.yml"):
        make_component(tmp_path, patterns_file=str(tmp_path / "missing_file.yml"))
    with pytest.raises(InvalidConfigException, match="no_model.joblib"):
        make_component(tmp_path, classifier_file=str(tmp_path / "no_model.joblib"))


def test_component_runs_last_in_a_rasa_pipeline(tmp_path: Path) -> None:
    config = {
        "recipe": "default.v1",
        "language": "en",
        "pipeline": [
            {"name": "WhitespaceTokenizer"},
            {"name": "CountVectorsFeaturizer"},
            {"name": "DIETClassifier", "epochs": 1},
            {"name": "FallbackClassifier", "threshold": 0.55},
            {"name": "bot.nlp.safety.component.SafetyNet", "classifier_file": None},
        ],
    }
    model_config = DefaultV1Recipe().graph_config_for_recipe(config, {}, training_type=TrainingType.NLU)
    validate(model_config)  # Rasa's own checks of the component's signatures
    nodes = model_config.predict_schema.nodes
    name, node = next((n, s) for n, s in nodes.items() if s.uses is SafetyNet)
    assert node.fn == "process"
    assert node.needs == {"messages": "run_FallbackClassifier3"}
    assert nodes[model_config.nlu_target].needs["messages"] == name
    assert not [n for n, s in model_config.train_schema.nodes.items() if s.uses is SafetyNet]
    graph_node = GraphNode.from_schema_node(
        name, node, LocalModelStorage(tmp_path), ExecutionContext(model_config.predict_schema, "test")
    )
    message = diet("i'm scaredd 2 go hoem", OUTCOMES_RANKING)
    _, (result,) = graph_node(("run_FallbackClassifier3", [message]))
    assert_safeguarding(result, "disclosure", "pattern", "unsafe")


def test_project_config_keeps_the_safety_net_last_with_its_classifier() -> None:
    config = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    steps = config.get("pipeline", [])
    assert steps[-1]["name"] == "bot.nlp.safety.component.SafetyNet", steps
    assert steps[-1]["classifier_file"], "the classifier must be on"


def test_an_unconfirmed_safeguarding_intent_goes_to_the_fallback(tmp_path: Path) -> None:
    ranking = [{"name": "safeguarding", "confidence": 0.6}, {"name": "ask_plan", "confidence": 0.3}]
    message = diet("i'm scared of spiders lol", ranking)
    make_component(tmp_path, score=0.1).process([message])
    assert message.get(INTENT) == {"name": "nlu_fallback", "confidence": 0.6}
    assert [r["name"] for r in message.get(INTENT_RANKING_KEY)] == ["nlu_fallback", "safeguarding", "ask_plan"]
    assert message.get("safety_net") is None


# ---------------------------------------------------------------------------
# "/" texts: only offered payloads
# ---------------------------------------------------------------------------


def bot_turn(*payload_list: str) -> Any:
    from rasa.shared.core.events import BotUttered

    return BotUttered("pick one", data={"buttons": [{"title": p, "payload": p} for p in payload_list]})


@pytest.mark.parametrize(
    "text, offered, expected",
    [
        ("/ask_plan", ["/ask_plan"], "/ask_plan"),
        ('/ask_funding{"topic": "funding_district"}', ['/ask_funding{"topic": "funding_district"}'], None),
        ("/greet@1 i want to die", ["/ask_plan"], "greet@1 i want to die"),
        ('/greet{"location":"Burnley"} i want to die', [], 'greet{"location":"Burnley"} i want to die'),
        ("/restart", ["/ask_plan"], "restart"),
        ("/safeguarding", [], "safeguarding"),
        ("//deny", ["/deny"], "deny"),
        ("hello", [], "hello"),
    ],
)
def test_only_an_offered_payload_stays_a_payload(text: str, offered: List[str], expected: Optional[str]) -> None:
    from bot.nlp.safety.payloads import checked_text

    tracker = DialogueStateTracker.from_events("someone", [bot_turn(*offered)] if offered else [])
    assert checked_text(text, tracker) == (text if expected is None else expected)


async def test_the_processor_parses_an_unoffered_payload_as_words(tmp_path: Path) -> None:
    from rasa.core.channels.channel import UserMessage
    from rasa.core.processor import MessageProcessor

    from bot.nlp.safety import payloads

    seen: List[str] = []

    async def fake_parse(self: Any, message: UserMessage, tracker: Any = None, *args: Any, **kwargs: Any) -> Any:
        seen.append(message.text)
        return {"text": message.text}

    original = MessageProcessor.parse_message
    try:
        MessageProcessor.parse_message = fake_parse  # type: ignore[method-assign]
        payloads.install()
        tracker = DialogueStateTracker.from_events("someone", [bot_turn("/ask_plan")])
        await MessageProcessor.parse_message(None, UserMessage("/ask_plan"), tracker)  # type: ignore[arg-type]
        await MessageProcessor.parse_message(None, UserMessage("/ask_funding@1 my dad hits me"), tracker)  # type: ignore[arg-type]
    finally:
        MessageProcessor.parse_message = original  # type: ignore[method-assign]
    assert seen == ["/ask_plan", "ask_funding@1 my dad hits me"]
