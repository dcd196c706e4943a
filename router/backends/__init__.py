"""Worker protocols behind `triskel.router.worker_client.WorkerClient`."""
