"""meshlab: real Kubernetes control planes, kwok nodes and real istiod processes, all on loopback."""
