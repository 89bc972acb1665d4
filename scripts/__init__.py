"""Build and test helpers run by the Makefile."""
