"""What the tools of this folder share: a threaded HTTP server on a free loopback port that
tells its address through a file once it listens."""

import os
from http.server import ThreadingHTTPServer


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # Every client connection waits its turn instead of having its SYN dropped.
    request_queue_size = 512


def serve(handler, address_file):
    """Serves `handler` until killed, after writing `http://127.0.0.1:<port>` to `address_file`."""
    server = Server(("127.0.0.1", 0), handler)
    partial = address_file + ".partial"
    with open(partial, "w") as out:
        out.write(f"http://127.0.0.1:{server.server_port}")
    os.replace(partial, address_file)
    server.serve_forever()
