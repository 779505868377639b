"""Command modules of the sealbox CLI, one per command group."""
