"""What goes in and out of the network: placement, loss, weights and their settings, slicing and the inferers."""
