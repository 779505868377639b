"""The bundle format itself: BagIt files, item records, stored names, canonical JSON, timestamps.

Pure functions over bytes and paths, no I/O policy; everything above builds on these.
FORMAT.md (one folder up) is the document they implement."""
