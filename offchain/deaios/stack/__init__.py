"""The local stack: `deaios up` (Anvil + contracts + storage nodes + indexer) and how clients find it.

`config` describes a running stack (`stack.json`) and resolves which one a client command talks to;
`launcher` starts and supervises the processes; `cli` holds `deaios up` / `deaios down`.
"""
