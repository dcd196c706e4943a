"""In-cluster discovery: the operator's router config and the pools' ready endpoints."""
