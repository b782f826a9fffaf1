"""Pure functions over entries: merge duplicates, rank, group into sections, summarize."""

from newsletter.summarize.group import Group, Topic, cluster_labels, group_texts, section_summary

__all__ = ["Group", "Topic", "cluster_labels", "group_texts", "section_summary"]
