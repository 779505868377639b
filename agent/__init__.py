"""sealbox agent: command line, daemon and network isolation."""
