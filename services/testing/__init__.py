"""The testing service: rounds, sampling points, floor-by-floor calls, results, cases and transfers."""
