"""Command-line tools and the one launch path every tool uses (launch.py)."""
