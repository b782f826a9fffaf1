"""``Digest`` -> Markdown / HTML / text / RSS / Atom / email message bytes."""
