"""Kernel names and numbers the runtime needs: namespaces, mount flags,
capabilities, rlimits, signals.  Tables only; no syscalls here."""
