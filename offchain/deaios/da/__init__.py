"""Data availability: BN254 BLS signers (bls), the DA contracts' client side, encoder, nodes and clients."""
