"""Staff users, their API tokens and permissions."""
