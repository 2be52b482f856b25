"""Share prices for investing round-ups: providers (sample data offline, a real HTTP feed) and their store."""
