"""What the assistant does to protect what people tell it.

- ``redact.py``: removes contact details, addresses, postcodes and names given with a school
  from text before it is stored (feedback views, and every user message in the tracker store).
- ``logs.py``: keeps user text out of every log line, at every level, in every process.
- ``retention.py``: deletes conversations and feedback older than ``RETENTION_DAYS``
  (``make purge``; the servers also run it on start and then periodically).
- ``erase.py``: deletes one conversation (the "delete my chat" intent, the widget's quick exit).
- ``files.py``: database files readable by their owner only.

Nothing is imported here, so importing ``bot.privacy`` does no work.
"""
