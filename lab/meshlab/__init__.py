"""meshlab: real Kubernetes control planes, kwok nodes and real istiod processes, all on loopback (LoadBalancer
addresses exist only inside the lab's own network namespaces)."""
