"""The `husk` command line: thin click faces over runtime.core.container."""
