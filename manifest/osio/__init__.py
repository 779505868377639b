"""OS plumbing every layer may use: reading without touching atime, inode flags, mount
namespaces, capped reads, spool files, the worker pool and the test crash points."""
