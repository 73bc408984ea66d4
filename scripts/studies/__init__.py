"""The quality studies behind the model card: how well the bundle segments, on its own and beside other tools."""
