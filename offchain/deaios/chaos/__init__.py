"""Reliability under faults and load (`make chaos`): fault injection against a running local stack (`faults`).
The loaded demo is scripts/demo_under_load.py; docs/reliability.md has the results.
"""
