"""deaios: the 0G decentralized AI operating system as one local, auditable Python + Solidity project."""

__version__ = "0.1.0"
