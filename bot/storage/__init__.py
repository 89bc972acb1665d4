"""Where conversations and their locks are kept: SQL engine, tracker store, lock store."""
