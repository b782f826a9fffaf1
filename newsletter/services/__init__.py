"""The only place that wires the stages together (ingest, editions, subscriptions, LLM)."""
