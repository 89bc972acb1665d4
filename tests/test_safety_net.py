"""Tests for the safety net: the pattern matcher, its data, and the Rasa component."""

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

from bot.nlp.safety import match as safety_net  # noqa: E402
from bot.nlp.safety.component import SafetyNet  # noqa: E402
from bot.nlp.safety.match import (  # noqa: E402
    SafetyNetConfigError,
    compile_patterns,
    load_matcher,
    within_one_edit,
)

PATTERNS_FILE = ROOT / "knowledge" / "safety_net.yml"
DISTRESS_FILE = ROOT / "tests" / "safety" / "distress.yml"
ORDINARY_FILE = ROOT / "tests" / "safety" / "ordinary.yml"
TRAINING_FILE = ROOT / "data" / "nlu" / "safeguarding.yml"
NLU_DIR = ROOT / "data" / "nlu"
CATEGORIES = {
    "hurt_or_abused",
    "unsafe_at_home",
    "bullying",
    "self_harm_or_suicide",
    "adult_worried_about_child",
}


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def distress_messages() -> List[Dict[str, str]]:
    return yaml.safe_load(DISTRESS_FILE.read_text(encoding="utf-8"))["messages"]


def ordinary_messages() -> List[str]:
    return yaml.safe_load(ORDINARY_FILE.read_text(encoding="utf-8"))["messages"]


def training_examples(path: Path, intent: Optional[str] = None) -> List[str]:
    """Example texts from a Rasa YAML NLU file (entity markup removed by Rasa)."""
    data = RasaYAMLReader().read(path)
    return [m.get(TEXT) for m in data.intent_examples if intent is None or m.get(INTENT) == intent]


def key(text: str) -> str:
    """A message reduced to its normalised words, to compare two data sets."""
    return " ".join(load_matcher(PATTERNS_FILE).normaliser(text))


def write_patterns(tmp_path: Path, data: Any, name: str = "patterns.yml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def mini_matcher(tmp_path: Path, patterns: List[str], guards: Optional[List[str]] = None, **extra: Any):
    data: Dict[str, Any] = {
        "text_speak": {"im": "i am", "dont": "do not"},
        "between_words": {"2": "to"},
        "word_lists": {"parent": ["mum", "dad", "step dad"]},
        "categories": [{"name": "test", "patterns": patterns}],
        **extra,
    }
    if guards:
        data["guards"] = guards
    return load_matcher(write_patterns(tmp_path, data))


# ---------------------------------------------------------------------------
# The shipped data
# ---------------------------------------------------------------------------


def test_every_distress_message_is_caught() -> None:
    matcher = load_matcher(PATTERNS_FILE)
    missed = [item["text"] for item in distress_messages() if matcher.assess(item["text"]) is None]
    assert not missed, f"{len(missed)} distress messages not caught: {missed}"


def test_distress_messages_get_their_category() -> None:
    matcher = load_matcher(PATTERNS_FILE)
    wrong = []
    for item in distress_messages():
        match = matcher.assess(item["text"])
        got = match.category if match else None
        if got != item["category"]:
            wrong.append((item["text"], item["category"], got, match.pattern if match else None))
    assert not wrong, f"wrong category (text, expected, got, pattern): {wrong}"


def test_no_ordinary_message_is_flagged() -> None:
    matcher = load_matcher(PATTERNS_FILE)
    flagged = []
    for text in ordinary_messages():
        match = matcher.assess(text)
        if match is not None:
            flagged.append((text, match.category, match.pattern))
    assert not flagged, f"{len(flagged)} ordinary messages flagged (text, category, pattern): {flagged}"


def test_test_sets_are_big_varied_and_separate_from_training() -> None:
    distress = distress_messages()
    ordinary = ordinary_messages()
    assert len(distress) >= 50
    assert len(ordinary) >= 40
    per_category = {name: 0 for name in CATEGORIES}
    for item in distress:
        assert item["category"] in CATEGORIES, item
        per_category[item["category"]] += 1
    assert min(per_category.values()) >= 8, per_category

    training = {key(text) for text in training_examples(TRAINING_FILE)}
    overlap = [text for text in [i["text"] for i in distress] + ordinary if key(text) in training]
    assert not overlap, f"test messages also in {TRAINING_FILE.name}: {overlap}"
    both = {key(i["text"]) for i in distress} & {key(t) for t in ordinary}
    assert not both, f"messages in both test sets: {both}"


def test_training_data_is_valid_and_caught_by_the_patterns() -> None:
    assert yaml.safe_load(TRAINING_FILE.read_text(encoding="utf-8"))["version"] == "3.1"
    examples = training_examples(TRAINING_FILE, "safeguarding")
    assert len(examples) >= 60
    assert len({key(t) for t in examples}) == len(examples), "duplicate training examples"
    matcher = load_matcher(PATTERNS_FILE)
    missed = [text for text in examples if matcher.assess(text) is None]
    assert not missed, f"safeguarding training examples the patterns miss: {missed}"


def test_other_intents_training_examples_are_not_flagged() -> None:
    matcher = load_matcher(PATTERNS_FILE)
    flagged = []
    for path in sorted(NLU_DIR.glob("*.yml")):
        data = RasaYAMLReader().read(path)
        for message in data.intent_examples:
            if message.get(INTENT) == "safeguarding":
                continue
            match = matcher.assess(message.get(TEXT))
            if match is not None:
                flagged.append((path.name, message.get(INTENT), message.get(TEXT), match.pattern))
    assert not flagged, f"examples of other intents the safety net would take over: {flagged}"


def test_held_out_nlu_test_messages_of_other_intents_are_not_flagged() -> None:
    path = ROOT / "tests" / "nlu_test.yml"
    if not path.exists():
        pytest.skip("tests/nlu_test.yml does not exist")
    matcher = load_matcher(PATTERNS_FILE)
    flagged = []
    for message in RasaYAMLReader().read(path).intent_examples:
        if message.get(INTENT) != "safeguarding":
            match = matcher.assess(message.get(TEXT))
            if match is not None:
                flagged.append((message.get(INTENT), message.get(TEXT), match.pattern))
    assert not flagged, f"held-out messages of other intents the safety net would take over: {flagged}"


def test_shipped_file_has_the_five_categories_in_priority_order_and_guards() -> None:
    data = yaml.safe_load(PATTERNS_FILE.read_text(encoding="utf-8"))
    names = [c["name"] for c in data["categories"]]
    assert set(names) == CATEGORIES
    assert names[0] == "self_harm_or_suicide"
    assert data["guards"]
    assert load_matcher(PATTERNS_FILE).categories == tuple(names)


def test_brief_examples() -> None:
    matcher = load_matcher(PATTERNS_FILE)
    for text in [
        "im scared 2 go home",
        "my dad hits me",
        "i want to kms",
        "nobody would care if i was gone",
        "theres a kid in my street who always has bruises",
        "they keep hitting me at skool",
        "i cut myself",
        "dont feel safe at home",
        "i wanna die",
        "what are the outcomes? also i'm scared to go home",
    ]:
        assert matcher.assess(text) is not None, text
    assert matcher.assess("what does 'to feel safe' mean?") is None


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
        {"categories": [{"name": "first", "patterns": ["hurt me"]}, {"name": "second", "patterns": ["dad"]}]},
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


@pytest.mark.parametrize(
    "content, problem",
    [
        ("categories: [\n  - name: x\n", "not valid YAML"),
        ("- just a list\n", "must be a YAML mapping"),
        ("guards: []\n", "'categories' must be a non-empty list"),
        ("categories:\n  - name: x\n    patterns: []\n", "categories.x.patterns must be a non-empty list"),
        ("categories:\n  - patterns: [a]\n", "must be a mapping with a 'name'"),
        ("categories:\n  - name: x\n    patterns: ['(dad hits me']\n", "missing ')'"),
        ("categories:\n  - name: x\n    patterns: ['dad hits) me']\n", "unexpected ')'"),
        ("categories:\n  - name: x\n    patterns: ['@nobody hits me']\n", "unknown word list '@nobody'"),
        ("categories:\n  - name: x\n    patterns: ['(a|b)? c?']\n", "every word in"),
        ("categories:\n  - name: x\n    patterns: ['... home']\n", "'...' cannot start or end"),
        ("categories:\n  - name: x\n    patterns: ['dad [hits] me']\n", "cannot read"),
        ("categories:\n  - name: x\n    patterns: ['(a||b) c']\n", "empty words or choice"),
        ("categories:\n  - name: x\n    patterns: ['a | b']\n", "unexpected '|'"),
        ("categories:\n  - name: x\n    patterns: [a]\n  - name: x\n    patterns: [b]\n", "appears twice"),
        ("settings: {gap_words: 0}\ncategories:\n  - name: x\n    patterns: [a]\n", "gap_words"),
        ("text_speak: {'a b': c}\ncategories:\n  - name: x\n    patterns: [a]\n", "text_speak entry"),
        ("word_lists: {l: ['@l']}\ncategories:\n  - name: x\n    patterns: ['@l']\n", "refers to itself"),
        ("guards: [5]\ncategories:\n  - name: x\n    patterns: [a]\n", "guards must hold only non-empty text"),
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
    matcher = compile_patterns({"categories": [{"name": "x", "patterns": ["hello there"]}]}, Path("inline"))
    assert matcher.assess("oh hello there")
    assert matcher.pattern_count == 1


def test_matcher_is_compiled_once_and_reloaded_when_the_file_changes(tmp_path: Path) -> None:
    path = write_patterns(tmp_path, {"categories": [{"name": "x", "patterns": ["alpha"]}]})
    first = load_matcher(path)
    assert load_matcher(path) is first
    write_patterns(tmp_path, {"categories": [{"name": "x", "patterns": ["bravo"]}]})
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = load_matcher(path)
    assert second is not first
    assert second.assess("bravo") and not second.assess("alpha")


def test_default_file_is_found_from_another_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert safety_net.resolve_patterns_file() == PATTERNS_FILE.resolve()
    match = safety_net.assess("i wanna die")
    assert match is not None and match.category == "self_harm_or_suicide"


# ---------------------------------------------------------------------------
# The Rasa component
# ---------------------------------------------------------------------------


def make_component(tmp_path: Path, **config: Any) -> SafetyNet:
    return SafetyNet.create(
        {**SafetyNet.get_default_config(), "patterns_file": str(PATTERNS_FILE), **config},
        LocalModelStorage(tmp_path),
        Resource("safety_net"),
        ExecutionContext(GraphSchema({}), "test"),
    )


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


def assert_safeguarding(message: Message, category: Optional[str], source: str) -> None:
    assert message.get(INTENT) == {"name": "safeguarding", "confidence": 1.0}
    ranking = message.get(INTENT_RANKING_KEY)
    assert ranking[0] == {"name": "safeguarding", "confidence": 1.0}
    assert [r["name"] for r in ranking].count("safeguarding") == 1
    assert message.get("safety_net") == {"category": category, "source": source}


def test_pattern_overrides_a_confident_other_intent(tmp_path: Path) -> None:
    message = diet("what are the outcomes? also i'm scared to go home", OUTCOMES_RANKING)
    make_component(tmp_path).process([message])
    assert_safeguarding(message, "unsafe_at_home", "pattern")
    # The other intents stay in the ranking, after safeguarding.
    assert [r["name"] for r in message.get(INTENT_RANKING_KEY)] == ["safeguarding", "ask_outcomes", "greet"]


def test_pattern_overrides_nlu_fallback(tmp_path: Path) -> None:
    message = diet("i wnt 2 die", [{"name": "chitchat", "confidence": 0.3}, {"name": "greet", "confidence": 0.28}])
    FallbackClassifier({"threshold": 0.55, "ambiguity_threshold": 0.1}).process([message])
    assert message.get(INTENT)["name"] == "nlu_fallback"  # what the component receives
    make_component(tmp_path).process([message])
    assert_safeguarding(message, "self_harm_or_suicide", "pattern")


def test_every_distress_message_gets_safeguarding(tmp_path: Path) -> None:
    component = make_component(tmp_path)
    messages = [diet(item["text"], OUTCOMES_RANKING, fallback=i % 2 == 0) for i, item in enumerate(distress_messages())]
    component.process(messages)
    wrong = [m.get(TEXT) for m in messages if m.get(INTENT) != {"name": "safeguarding", "confidence": 1.0}]
    assert not wrong, wrong
    categories = [m.get("safety_net")["category"] for m in messages]
    assert categories == [item["category"] for item in distress_messages()]


def test_ordinary_messages_are_left_untouched(tmp_path: Path) -> None:
    component = make_component(tmp_path)
    messages = [diet(text, OUTCOMES_RANKING, fallback=i % 2 == 0) for i, text in enumerate(ordinary_messages())]
    before = [(copy.deepcopy(m.data), set(m.output_properties)) for m in messages]
    component.process(messages)
    after = [(m.data, m.output_properties) for m in messages]
    changed = [m.get(TEXT) for m, b, a in zip(messages, before, after) if b != a]
    assert not changed, changed


@pytest.mark.parametrize(
    "threshold, confidence, fires",
    [
        (0.5, 0.49, False),
        (0.5, 0.5, True),
        (0.5, 0.8, True),
        (0.8, 0.79, False),
        (0.8, 0.8, True),
        (0.2, 0.25, True),
    ],
)
def test_classifier_threshold(tmp_path: Path, threshold: float, confidence: float, fires: bool) -> None:
    ranking = [{"name": "safeguarding", "confidence": confidence}, {"name": "ask_outcomes", "confidence": 0.1}]
    message = diet("hmm can you help with something about home", ranking)
    before = copy.deepcopy(message.data)
    make_component(tmp_path, classifier_threshold=threshold).process([message])
    if fires:
        assert_safeguarding(message, None, "classifier")
    else:
        # Below the threshold, DIET's own top pick is not trusted: the fallback checks with the person.
        assert message.get(INTENT) == {"name": "nlu_fallback", "confidence": confidence}
        assert [r["name"] for r in message.get(INTENT_RANKING_KEY)] == ["nlu_fallback", "safeguarding", "ask_outcomes"]
        assert message.get("safety_net") == {"category": None, "source": "classifier_unsure"}
        assert before[INTENT]["name"] == "safeguarding"


def test_an_unsure_non_safeguarding_message_is_untouched(tmp_path: Path) -> None:
    ranking = [{"name": "ask_outcomes", "confidence": 0.9}, {"name": "safeguarding", "confidence": 0.05}]
    message = diet("what are the outcomes", ranking)
    before = copy.deepcopy(message.data)
    make_component(tmp_path).process([message])
    assert message.data == before


def test_classifier_counts_behind_nlu_fallback(tmp_path: Path) -> None:
    # DIET ranked safeguarding first but below the FallbackClassifier threshold.
    ranking = [{"name": "safeguarding", "confidence": 0.52}, {"name": "ask_outcomes", "confidence": 0.46}]
    message = diet("things are not great at the moment", ranking, fallback=True)
    make_component(tmp_path).process([message])
    assert_safeguarding(message, None, "classifier")
    assert [r["name"] for r in message.get(INTENT_RANKING_KEY)] == ["safeguarding", "nlu_fallback", "ask_outcomes"]


def test_pattern_wins_over_classifier_as_source(tmp_path: Path) -> None:
    message = diet("my dad hits me", [{"name": "safeguarding", "confidence": 0.97}])
    make_component(tmp_path).process([message])
    assert_safeguarding(message, "hurt_or_abused", "pattern")


def test_message_without_prior_intent(tmp_path: Path) -> None:
    message = Message(data={TEXT: "i cut myself"})
    make_component(tmp_path).process([message])
    assert_safeguarding(message, "self_harm_or_suicide", "pattern")
    plain = Message(data={TEXT: "hello"})
    make_component(tmp_path).process([plain])
    assert plain.get(INTENT) is None and plain.get("safety_net") is None


def test_safety_net_attribute_reaches_the_tracker(tmp_path: Path) -> None:
    message = diet("my mum kicked me out", OUTCOMES_RANKING)
    make_component(tmp_path).process([message])
    # What rasa.core.processor.MessageProcessor._parse_message_with_graph builds:
    parse_data: Dict[str, Any] = {TEXT: "", INTENT: {"name": None, "confidence": 0.0}, ENTITIES: []}
    parse_data.update(message.as_dict(only_output_properties=True))
    assert parse_data["safety_net"] == {"category": "unsafe_at_home", "source": "pattern"}
    event = UserUttered(message.get(TEXT), parse_data[INTENT], parse_data[ENTITIES], parse_data)
    restored = Event.from_parameters(event.as_dict())  # as a tracker store saves and loads it
    tracker = DialogueStateTracker.from_events("someone", [restored])
    latest = tracker.current_state()["latest_message"]  # what the action server receives
    assert latest["intent"]["name"] == "safeguarding"
    assert latest["safety_net"] == {"category": "unsafe_at_home", "source": "pattern"}


def test_message_text_is_never_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    component = make_component(tmp_path)
    component.process([diet("my dad hits me zebracorn", OUTCOMES_RANKING)])
    component.process([diet("hello zebracorn", [{"name": "safeguarding", "confidence": 0.9}])])
    component.process([diet("what is zebracorn", OUTCOMES_RANKING)])
    assert caplog.records, "expected debug records saying why the net fired"
    assert not [r for r in caplog.records if "zebracorn" in r.getMessage()]
    assert not [r for r in caplog.records if r.levelno >= logging.INFO and r.name.startswith("bot.")]


@pytest.mark.parametrize("threshold", [-0.1, 1.5, "high", None, True])
def test_bad_threshold_is_rejected(tmp_path: Path, threshold: Any) -> None:
    with pytest.raises(InvalidConfigException, match="classifier_threshold"):
        make_component(tmp_path, classifier_threshold=threshold)


def test_component_with_broken_patterns_file_fails_naming_the_file(tmp_path: Path) -> None:
    path = write_patterns(tmp_path, "categories:\n  - name: x\n    patterns: ['(oops']\n", name="my_patterns.yml")
    with pytest.raises(InvalidConfigException) as error:
        make_component(tmp_path, patterns_file=str(path))
    assert str(path) in str(error.value)
    with pytest.raises(InvalidConfigException, match="missing_file.yml"):
        make_component(tmp_path, patterns_file=str(tmp_path / "missing_file.yml"))


def test_component_runs_last_in_a_rasa_pipeline(tmp_path: Path) -> None:
    config = {
        "recipe": "default.v1",
        "language": "en",
        "pipeline": [
            {"name": "WhitespaceTokenizer"},
            {"name": "CountVectorsFeaturizer"},
            {"name": "DIETClassifier", "epochs": 1},
            {"name": "FallbackClassifier", "threshold": 0.55},
            {"name": "bot.nlp.safety.component.SafetyNet", "classifier_threshold": 0.6},
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

    # Run it the way Rasa does (defaults merged with the pipeline's config).
    graph_node = GraphNode.from_schema_node(
        name, node, LocalModelStorage(tmp_path), ExecutionContext(model_config.predict_schema, "test")
    )
    message = diet("hello", [{"name": "safeguarding", "confidence": 0.55}])
    _, (result,) = graph_node(("run_FallbackClassifier3", [message]))
    # 0.55 is below this pipeline's 0.6: not forced, but handed to the fallback to check.
    assert result.get("safety_net") == {"category": None, "source": "classifier_unsure"}
    assert result.get(INTENT) == {"name": "nlu_fallback", "confidence": 0.55}
    message = diet("i'm scaredd 2 go hoem", OUTCOMES_RANKING)
    _, (result,) = graph_node(("run_FallbackClassifier3", [message]))
    assert_safeguarding(result, "unsafe_at_home", "pattern")


def test_project_config_keeps_the_safety_net_last() -> None:
    config = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    names = [step["name"] for step in config.get("pipeline", [])]
    assert names[-1] == "bot.nlp.safety.component.SafetyNet", names
