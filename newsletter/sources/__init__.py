"""Bytes in from the world -> ``Entry``: fetch, parse (+ adapters), normalize, OPML."""
