"""Names shared by the actions, the domain and the training data: one place for each."""

# Intents. Every topic in the knowledge file is asked with the intent ``ask_<topic id>``.
TOPIC_INTENT_PREFIX = "ask_"
INTENT_OUTCOME_DETAIL = "ask_outcome_detail"
INTENT_LOCAL_HELP = "ask_local_help"
INTENT_SOURCE = "ask_source"
INTENT_MORE = "ask_more"
INTENT_HUMAN = "ask_human"
INTENT_CAPABILITIES = "ask_capabilities"
INTENT_SAFEGUARDING = "safeguarding"
INTENT_AFFIRM = "affirm"
INTENT_DENY = "deny"
INTENT_FEEDBACK = "give_feedback"
NLU_FALLBACK = "nlu_fallback"
# Follow-ups about a detail of the last answer: ``ask_<kind>`` for each kind in the knowledge file.
DETAIL_INTENTS = {
    "ask_how_often": "how_often",
    "ask_who_for": "who_for",
    "ask_who_gives": "who_gives",
    "ask_what_for": "what_for",
    "ask_in_kind": "in_kind",
    "ask_when": "when",
    "ask_how_many": "how_many",
    "ask_why": "why",
}
# Replies to a question the assistant asked ("Did you mean ...?", "Is someone in danger?").
CONFIRM_INTENTS = {INTENT_AFFIRM, INTENT_DENY}
INTENT_MORE_SERVICES = "ask_more_services"

# Entities, as labelled by the local spaCy entity ruler (bot/nlp/spacy_pipeline.py) or set by a button.
ENTITY_LOCATION = "location"
ENTITY_OUTCOME = "outcome"
ENTITY_TOPIC = "topic"

# Slots.
SLOT_LAST_TOPIC = "last_topic"
SLOT_CURRENCY_TOLD = "currency_told"
SLOT_LOCATION = "location"
SLOT_OUTCOME = "outcome"
SLOT_ANSWER_INTENT = "answer_intent"
SLOT_ANSWER_TEXT = "answer_text"
SLOT_OFFERED_INTENT = "offered_intent"
SLOT_SAFETY_CHECK = "safety_check"
SLOT_SAFETY_SPEAKER = "safety_speaker"
SLOT_SAFETY_CATEGORY = "safety_category"
SLOT_SERVICES_QUERY = "services_query"  # place, outward code (never a full postcode), age or stage
SLOT_SERVICES_SHOWN = "services_shown"  # how many services of that query have been shown

# Pseudo-topics recorded in SLOT_LAST_TOPIC for answers that are not a knowledge topic.
TOPIC_OUTCOME_PREFIX = "outcome:"
TOPIC_DETAIL_PREFIX = "detail:"
TOPIC_LOCAL_HELP = "local_help"
TOPIC_CURRENCY = "currency"
TOPIC_SERVICES = "services"  # an answer from the imported service directory

# Actions, and which one answers which intent (a test checks this against data/rules/).
ACTION_ANSWER_TOPIC = "action_answer_topic"
ACTION_ANSWER_DETAIL = "action_answer_detail"
ACTION_OUTCOME_DETAIL = "action_outcome_detail"
ACTION_LOCAL_HELP = "action_local_help"
ACTION_SOURCE = "action_source"
ACTION_TELL_MORE = "action_tell_more"
ACTION_HUMAN = "action_human"
ACTION_SAFEGUARDING = "action_safeguarding"
ACTION_FALLBACK = "action_fallback"
INTENT_ACTIONS = {
    INTENT_OUTCOME_DETAIL: ACTION_OUTCOME_DETAIL,
    INTENT_LOCAL_HELP: ACTION_LOCAL_HELP,
    INTENT_SOURCE: ACTION_SOURCE,
    INTENT_MORE: ACTION_TELL_MORE,
    INTENT_HUMAN: ACTION_HUMAN,
    INTENT_CAPABILITIES: "utter_capabilities",
    INTENT_FEEDBACK: "action_start_feedback",
    **{intent: ACTION_ANSWER_DETAIL for intent in DETAIL_INTENTS},
}

# Responses in domain.yml that actions send.
UTTER_CAPABILITIES = "utter_capabilities"
UTTER_NOT_KNOWN = "utter_not_known"
UTTER_NO_SOURCE = "utter_no_source"
UTTER_ERROR = "utter_error"
UTTER_ANYTHING_ELSE = "utter_anything_else"

# "Delete my chat" (actions/privacy.py). The tracker store deletes a conversation whose turn ran
# this action: bot/privacy/erase.py names it too (FORGET_ACTION), and a test checks they agree.
ACTION_FORGET_CONVERSATION = "action_forget_conversation"
UTTER_FORGET_DONE = "utter_forget_done"

# Responses the Rasa server sends itself when it cannot answer a message (bot/server/turns.py):
# a short apology, then always the helplines.
UTTER_TECHNICAL_PROBLEM = "utter_technical_problem"
UTTER_SAFETY_FALLBACK_HELPLINES = "utter_safety_fallback_helplines"
