"""Django's SQLite backend, with writers queueing on an operating-system lock."""
