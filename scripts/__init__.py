"""SMALabeller bundle components, importable as ``scripts.*`` from the bundle root."""
