"""Shared kernel: reference numbers, business-day calendars, throttling, task helpers. No business rules."""
