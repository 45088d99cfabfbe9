"""Concilia's own NLU training sets and the script that writes them (see README.md here)."""
