"""Facts about each host's GPU stack: collection (on hosts), validation, snapshots."""
