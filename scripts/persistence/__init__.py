"""What survives a run: durable writes, the checkpoint's content, resume and the run lock."""
