"""Finding, checking, reading, caching and sampling the cases: from a folder of NIfTI files to training items."""
