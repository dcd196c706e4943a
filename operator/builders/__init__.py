"""Pure builders of the Kubernetes objects the operator creates (plain dicts, no I/O).

Handlers call them, then `kopf.adopt` / apply the result:

    labels.py         labels, the pool's pod selector, owner references
    engines/          one container builder per engine (mock, vllm, sglang)
    deployment.py     the pool's Deployment
    service.py        the pool's headless Service
    pdb.py            the pool's PodDisruptionBudget (None below 2 replicas)
    router_config.py  the ConfigMap routers read
"""
