"""Hand-over: export packages, receiving them, plain BagIt copies and the human report."""
