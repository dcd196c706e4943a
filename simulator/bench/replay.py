"""Open-loop replay: every request leaves at its planned time, whatever the others do.

A closed loop (send the next request when one returns) hides overload: the
router slows, the client slows with it, and queueing never shows. Here each
request is its own task, started at its `send_at_s`, so a slow answer never
delays a later send, as with real users.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from triskel.simulator.bench.outcome import Outcome, RequestFailed
from triskel.simulator.bench.plan import BenchRequest
from triskel.simulator.bench.target import Clock

Send = Callable[[BenchRequest], Awaitable[Outcome]]
Sleep = Callable[[float], Awaitable[None]]
OnDone = Callable[[Outcome], None]


async def replay(
    requests: Sequence[BenchRequest],
    send: Send,
    clock: Clock,
    *,
    timeout_s: float,
    on_done: OnDone | None = None,
    sleep: Sleep = asyncio.sleep,
) -> list[Outcome]:
    """Sends each request at its time; their outcomes, in the order of `requests`.

    `requests` are sorted by send time. A request that fails, or takes longer
    than `timeout_s` from its send, gets a failed outcome; nothing is raised
    for it. `on_done` sees each outcome as it comes (a progress bar).
    """

    async def one(request: BenchRequest) -> Outcome:
        try:
            async with asyncio.timeout(timeout_s):
                outcome = await send(request)
        except RequestFailed as error:
            outcome = Outcome.failed(str(error))
        except TimeoutError:
            outcome = Outcome.failed(f"no complete answer within {timeout_s:g} s")
        except Exception as error:  # a client-side surprise fails this request, not the run
            outcome = Outcome.failed(f"{type(error).__name__}: {error}")
        if on_done is not None:
            on_done(outcome)
        return outcome

    tasks: list[asyncio.Task[Outcome]] = []
    try:
        for request in requests:
            delay_s = request.send_at_s - clock()
            if delay_s > 0:
                await sleep(delay_s)
            tasks.append(asyncio.create_task(one(request), name=f"bench-{request.index}"))
        return list(await asyncio.gather(*tasks))
    finally:
        # Interrupted (Ctrl-C): stop the requests still in flight.
        for task in tasks:
            task.cancel()
