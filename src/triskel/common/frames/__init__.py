"""Worker frames: length-prefixed protobuf messages over long-lived connections.

codec.py   the wire format (preface, header, kinds) and a parser with a size limit
writer.py  frames sent in one turn of the event loop leave in one write
The worker's server is triskel.workers.frame_server, the router's client
triskel.router.backends.frame_channel; proto/triskel/v1/worker_frames.proto is the spec.
"""
