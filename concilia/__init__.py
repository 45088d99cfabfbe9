"""Concilia: complaint management and online dispute resolution."""

__version__ = "0.1.0"
