"""newsletter: digest newsletters from the feeds you follow.

The pipeline, one module per stage::

    sources (config) -> fetch -> parse -> store -> summarize -> digest -> render -> mail -> deliver
"""

__version__ = "0.1.0"
