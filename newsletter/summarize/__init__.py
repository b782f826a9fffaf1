"""Pure functions over entries: merge duplicates (``dedupe``), rank (``rank``), group into
sections (``group``), summarize (``summary``), assemble a digest (``digest``).

Import the module you need: this package imports none of them, so that using one (the
LLM summaries use ``summary``) does not load numpy and scipy for the others.
"""
