"""Pure manifest builders for one run's children: names and labels, pods, storage, the store, Jobs.

The lowest layer of the operator: it knows the API models and Kubernetes shapes, nothing of workloads
or of what a reconcile decides (``specforge_operator.plan`` composes these into a run's children).
"""
