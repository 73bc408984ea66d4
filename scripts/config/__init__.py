"""Checking settings and reading them from command lines."""
