"""husk: a low-level Linux container runtime (Python plan, C clone-to-exec).

SPDX-License-Identifier: GPL-3.0-or-later
"""

__version__ = "0.1.0"
OCI_VERSION = "1.2.0"
