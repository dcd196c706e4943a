"""A stand-in for the router's /metrics under heavy load, for autoscaling tests.

Every scrape first counts `per_scrape` more finished requests of `model` (1,000 prompt and
200 generated tokens, TTFT 50 ms, TPOT 10 ms) in a real `RouterMetrics`, then renders it:
two scrapes seconds apart read as far more load than any test pool serves, so a planner
scales up. Serve `scrape()` with whatever HTTP server the test runs (aiohttp, http.server).
"""

from __future__ import annotations

from triskel.router.metrics import RouterMetrics


class LoadedRouter:
    def __init__(self, model: str, per_scrape: int) -> None:
        self.metrics = RouterMetrics()
        self._model = model
        self._per_scrape = per_scrape
        self.scrapes = 0

    def scrape(self) -> tuple[bytes, str]:
        """The exposition (body, content type) after `per_scrape` more requests."""
        self.scrapes += 1
        for _ in range(self._per_scrape):
            self.metrics.observe_request(self._model, "http", "ok", ttft_s=0.05, tpot_s=0.01)
            self.metrics.observe_tokens(self._model, 1000, 200, 0)
        return self.metrics.render()
