"""The vocabulary every other part speaks: versions, GPU models, stacks, hosts, fleets, desired state, policy."""
