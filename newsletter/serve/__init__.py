"""Long-running processes: the schedule (pure), the daemon, the web pages."""
