"""ERC-7857 intelligent NFTs (`contracts/inft/`): encrypted agent metadata in the storage network, data keys
sealed to owners, and a re-encryption oracle (a trusted party standing in for a TEE) that moves the data on
transfer. `crypto.py` (AES-GCM, ECIES over X25519), `proofs.py` (access/ownership proofs), `chain.py` (web3
client), `oracle.py` (the oracle service), `flows.py` (mint/transfer/read), `cli.py` (`deaios inft`).
See docs/inft.md."""
