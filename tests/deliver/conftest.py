"""Every test here that uses ``store`` or ``database_url`` runs on SQLite and PostgreSQL."""

from tests.pg import on_both_databases

database_url = on_both_databases()
