"""The council's service directory: an Open Referral UK feed, imported into a local store.

- ``model.py``: the part of the Open Referral UK / HSDS 3.0 service record the assistant relies on,
  and the record it keeps (only what an answer needs);
- ``importer.py``: ``make import-services FROM=...`` fetches a feed (or reads a folder or file of its
  JSON), validates every service, and replaces the store only when the import is good;
- ``store.py``: the store file, written atomically and reloaded live by the action server.
"""
