"""Real local servers that play outside services for tests and manual runs (an SMS gateway, ...)."""
