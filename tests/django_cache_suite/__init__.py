"""Django's own cache tests, run against pagecache.backends: see run.py."""
