"""Message bytes -> the wire: mailers (file, SMTP) and the outbox loop."""
