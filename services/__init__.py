"""Business rules that are not HTTP: each function takes a database session and plain values."""
