"""Connections to other systems: shops, CRMs, mail and webhooks."""
