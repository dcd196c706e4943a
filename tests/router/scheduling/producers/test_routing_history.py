"""The one routing history: shared by the readers asking the same bounds, written once
a pick by the scheduler."""

from __future__ import annotations

from triskel.common.routing_api import RoutingConfig
from triskel.router.scheduling.builtin import default_registry
from triskel.router.scheduling.config import build_scheduler
from triskel.router.scheduling.plugin import PluginContext
from triskel.router.scheduling.producers.routing_history import RoutingHistory

from support.prefix_scheduling import endpoint, prompt_request

REQUEST = prompt_request(range(17))  # 4 blocks of 4 tokens


def test_readers_asking_the_same_bounds_share_one_index() -> None:
    history = RoutingHistory(lambda: 0.0)
    first = history.index(100, 30.0)
    assert history.index(100, 30.0) is first
    assert history.index(100, 60.0) is not first  # another peer's bounds, its own index


def test_a_record_reaches_every_index_and_estimates_read_the_first() -> None:
    history = RoutingHistory(lambda: 0.0)
    plugin_index = history.index(100, 30.0)
    other = history.index(200, 30.0)
    history.record("w", REQUEST.block_hashes)
    assert plugin_index.match_lengths(REQUEST.block_hashes, ["w"]) == [4]
    assert other.match_lengths(REQUEST.block_hashes, ["w"]) == [4]
    assert history.estimates() is plugin_index


def test_estimates_read_an_index_of_whole_prompts() -> None:
    history = RoutingHistory(lambda: 0.0)
    capped = history.index(100, 30.0, max_prefix_blocks=2)
    history.record("w", REQUEST.block_hashes)
    assert capped.match_lengths(REQUEST.block_hashes, ["w"]) == [2]
    whole = history.estimates()  # not the capped one: created now, whole prompts
    assert whole is not capped
    history.record("w", REQUEST.block_hashes)
    assert whole.match_lengths(REQUEST.block_hashes, ["w"]) == [4]


def test_without_readers_nothing_is_kept_until_estimates_ask() -> None:
    history = RoutingHistory(lambda: 0.0)
    history.record("w", REQUEST.block_hashes)  # nobody reads yet: not kept
    estimates = history.estimates()  # the defaults' index, from now on
    assert estimates.match_lengths(REQUEST.block_hashes, ["w"]) == [0]
    history.record("w", REQUEST.block_hashes)
    assert estimates.match_lengths(REQUEST.block_hashes, ["w"]) == [4]
    assert history.index() is estimates


def test_two_scorers_read_the_one_history_the_scheduler_writes_once() -> None:
    config = RoutingConfig.model_validate(
        {
            "plugins": [
                {"type": "prefix-cache-scorer", "name": "prefix"},
                {"type": "hybrid-prefix-scorer", "name": "hybrid"},
                {"type": "max-score-picker"},
            ],
            "profiles": [
                {
                    "name": "default",
                    "plugins": [
                        {"pluginRef": "prefix"},
                        {"pluginRef": "hybrid"},
                        {"pluginRef": "max-score-picker"},
                    ],
                }
            ],
            "defaultProfile": "default",
        }
    )
    context = PluginContext()
    scheduler = build_scheduler(config, default_registry(), context)
    index = context.history.estimates()
    records: list[str] = []
    record = index.record

    def counted(worker_id: str, block_hashes: object) -> None:
        records.append(worker_id)
        record(worker_id, block_hashes)  # type: ignore[arg-type]

    index.record = counted  # type: ignore[method-assign]
    scheduler.sent(REQUEST, endpoint("b"))
    assert records == ["b"]  # one index, one write, though two plugins read it
    decision = scheduler.choose(REQUEST, [endpoint("a"), endpoint("b")])
    assert decision.endpoint.worker_id == "b"
    assert decision.scores == {"a": 0.0, "b": 2.0}
