"""The benchmark (issue 7): chatsite's streaming API against the upstream itself and the seed's design."""
