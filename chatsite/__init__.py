"""chatsite: a self-hosted chat service for language models."""
