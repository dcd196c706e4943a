"""`triskel bench`: replay a trace against a running router, open loop, and measure it.

    trace ──► plan (send time, prompt token ids, output length per request)
          ──► replay: each request sent at its time, whatever the others do
              ──► target (HTTP SSE or gRPC stream) ──► outcome per request
          ──► RequestRecords in a RunResult ──► the simulator's metrics and table

Times are wall-clock seconds at the client from the start of the replay, so a
bench run and a simulation of the same trace read the same way.
"""
