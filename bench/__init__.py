"""The benchmark: chatsite's streaming API against the upstream itself and the seed's design."""
