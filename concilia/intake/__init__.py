"""The public ways in: the complaint form, the tracking pages and the complaints API."""
