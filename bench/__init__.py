"""`make bench`: every layer of the store measured side by side (see bench/README.md)."""
