"""The network at a glance: the dashboard `deaios up` serves, `deaios status`, and what both read."""
