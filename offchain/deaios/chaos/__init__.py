"""Reliability under faults and load (`make chaos`): fault injection against a running local stack (`faults`) and
the record of what each fault case injected, checked and lost (`report`). The fault cases are tests/chaos/; the
loaded demo is scripts/demo_under_load.py; docs/reliability.md has the results.
"""
