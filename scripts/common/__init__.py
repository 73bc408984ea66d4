"""Helpers every layer uses: flags, durable writes, tool arguments, nearest names, paths, room to write.

They import nothing of the bundle's own outside this folder."""
