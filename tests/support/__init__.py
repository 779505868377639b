"""Helpers the tests import: the CLI harness, bundle builders, network-namespace labs, the vault."""
