"""Keys and signatures: the key store, Ed25519/minisign, trusted timestamps, the custody chain and
the receipts that anchor it."""
