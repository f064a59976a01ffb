"""Storage: the log layer's file format (merkle), the Flow contract's client side, nodes and clients."""
