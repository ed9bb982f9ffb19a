"""Dragoman's gateway and command line."""
