"""Reliability under faults and load (`make chaos`): fault injection against a running local stack
(`faults`), CPU hogs (`hogs`), the loaded demo (`deaios chaos demo`) and the record of what each fault case
injected, checked and lost (`report`). The fault matrix itself is tests/chaos/; docs/reliability.md has its
results.
"""
