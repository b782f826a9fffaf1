"""Every table and every query: the database behind the pipeline."""
