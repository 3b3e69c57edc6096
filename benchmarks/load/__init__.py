"""Load and chaos tool (issue 13): the service as separate processes, a load driver, faults, a checker.

``python benchmarks/load_chaos.py bench|chaos`` (``make bench-load`` / ``make chaos``); ``tests/chaos`` runs a
reduced version of every fault scenario in the suite.
"""
