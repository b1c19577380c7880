"""Starting processes through husk-init and talking to it."""
