"""Names shared by the actions, the domain and the training data: one place for each."""

# Intents. Every topic in the knowledge file is asked with the intent ``ask_<topic id>``.
TOPIC_INTENT_PREFIX = "ask_"
INTENT_OUTCOME_DETAIL = "ask_outcome_detail"
INTENT_LOCAL_HELP = "ask_local_help"
INTENT_WHO_PAYS = "ask_who_pays"
INTENT_SOURCE = "ask_source"
INTENT_SAFEGUARDING = "safeguarding"

# Entities, as labelled by the local spaCy entity ruler (bot/nlp/spacy_pipeline.py).
ENTITY_LOCATION = "location"
ENTITY_OUTCOME = "outcome"

# Slots.
SLOT_LAST_TOPIC = "last_topic"
SLOT_CURRENCY_TOLD = "currency_told"
SLOT_LOCATION = "location"
SLOT_OUTCOME = "outcome"

# Pseudo-topics recorded in SLOT_LAST_TOPIC for answers that are not a knowledge topic.
TOPIC_OUTCOME_PREFIX = "outcome:"
TOPIC_LOCAL_HELP = "local_help"
TOPIC_CURRENCY = "currency"

# Responses in domain.yml that actions send.
UTTER_CAPABILITIES = "utter_capabilities"
UTTER_NOT_KNOWN = "utter_not_known"
UTTER_NO_SOURCE = "utter_no_source"

# "Delete my chat" (actions/privacy.py). The tracker store deletes a conversation whose turn ran
# this action: bot/privacy/erase.py names it too (FORGET_ACTION), and a test checks they agree.
ACTION_FORGET_CONVERSATION = "action_forget_conversation"
UTTER_FORGET_DONE = "utter_forget_done"
