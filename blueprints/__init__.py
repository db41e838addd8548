"""One module per user-facing area; the module, its Blueprint and its URL prefix share one word."""
