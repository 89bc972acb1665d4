"""Custom actions: they look facts up in the knowledge file (see knowledge.py)."""
