"""The assistant's own NLU parts: the local spaCy pipeline and custom Rasa components."""
