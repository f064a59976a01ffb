"""Compute market: receipt formats (EIP-712), the contracts' client side, provider broker and user client."""
