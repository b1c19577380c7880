"""Unit tests: no root, no kernel features, seconds.

They import the installed package (the suite runs with python -I) and
use the C sources under native/ only to build small test programs with
gcc.  System tests, which need root, are in tests/linux.
"""

import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
