"""The DynamoDB emulator the tests talk to: moto, served one request at a time.

Why not `moto_server`: it answers on many threads at once, and moto's conditional updates and
transactions are not atomic across threads. Two conditional writes on one item can both succeed,
which DynamoDB never allows, so a concurrency test against it cannot tell a bug in our condition
expressions from a race in the emulator. Served one request at a time, every request is atomic, as
it is on DynamoDB (and the same load runs faster than on the threaded server).

Usage: dynamodb-emulator.py ADDRESS_FILE. It binds a free port on 127.0.0.1 itself and writes
`http://127.0.0.1:<port>` to ADDRESS_FILE once it accepts connections.
"""

import os
import sys

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

# Enough pending connections for the heaviest concurrency test: each waits its turn instead of
# having its SYN dropped (socketserver's default backlog is 5).
BACKLOG = 512


def main() -> None:
    address_file = sys.argv[1]
    app = DomainDispatcherApplication(create_backend_app)
    # threaded=False: one request at a time. It also answers HTTP/1.0, so a connection never
    # holds the server between requests.
    server = make_server("127.0.0.1", 0, app, threaded=False)
    server.socket.listen(BACKLOG)
    partial = address_file + ".partial"
    with open(partial, "w") as out:
        out.write(f"http://127.0.0.1:{server.server_port}")
    os.replace(partial, address_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
