"""cgroups: find the host's layout (v1, v2, hybrid) and manage one
container's cgroup on it."""
