"""The AI marketplace (`contracts/market/`): INFT sales with oracle-proof settlement, offers, rentals, and
compute bundles. `chain.py` is the web3 client, `cli.py` the `deaios market` commands; see docs/market.md."""
