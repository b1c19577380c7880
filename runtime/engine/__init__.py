"""husk's engine: what people's containers need beyond the OCI runtime.

The image store, pulls and imports (`image`), networks (`network`), image
containers made into bundles and run through runtime.core (`containers`:
open this first) and clean-up (`prune`).  It uses runtime.core's public
names only and never imports runtime.cli (tests/unit/test_layers.py).
"""
