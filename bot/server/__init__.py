"""Starting and running the servers: the launcher (serve.py), Rasa fixes (patches.py), balancing."""
