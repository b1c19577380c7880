"""`python -m runtime` is the husk command line."""

from runtime.cli.main import main

main()
