"""Alignment nodes: operators of alignment licenses supervise storage and DA nodes (`deaios alignment node`)."""
