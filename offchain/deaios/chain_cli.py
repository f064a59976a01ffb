"""Compatibility names for code written before `deaios.cli_context` (the one CLI context helper): the chain,
contracts and key of a client command's options. New code imports from `deaios.cli_context`."""

from deaios.cli_context import ChainTarget, normalize_key, resolve_target

__all__ = ["ChainTarget", "normalize_key", "resolve_target"]
