"""husk's engine: what people's containers need beyond the OCI runtime.

Image containers run through runtime.core (`run`: `husk run IMAGE`, `rm`,
`containers`; open this first), clean-up (`prune`), the image store,
pulls and imports (`image`) and networks (`network`).  It uses runtime.core's public
names only and never imports runtime.cli (tests/unit/test_layers.py).
"""
