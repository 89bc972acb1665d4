"""Benchmark of the assistant against a stock ``rasa init`` bot (``make bench``).

``python -m bench.run`` starts both servers, replays ``bench/scripts.yml`` from a
separate load process over 127.0.0.1, and writes ``bench/results/``.
"""
