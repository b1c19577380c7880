"""Container networking: bridges, veth pairs (pyroute2), IPAM, nftables NAT
and published ports, and the name files (resolv.conf, hosts, hostname)."""
