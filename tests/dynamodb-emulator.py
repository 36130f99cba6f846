"""The DynamoDB emulator the tests talk to: moto, served one request at a time.

Why not `moto_server`: it answers on many threads at once, and moto's conditional updates and
transactions are not atomic across threads. Two conditional writes on one item can both succeed,
which DynamoDB never allows, so a concurrency test against it cannot tell a bug in our condition
expressions from a race in the emulator. Served one request at a time, every request is atomic, as
it is on DynamoDB (and the same load runs faster than on the threaded server).

moto also ignores TransactWriteItems' `ClientRequestToken` (its source never reads it). DynamoDB
answers a transaction sent again with a token it has applied, within ten minutes, with success and
applies nothing; the SDK relies on that when it retries a transaction whose answer was lost. So
this server keeps the tokens of the transactions it applied and answers as DynamoDB does:
success for the same token and request, `IdempotentParameterMismatchException` for the same
token with another request.

And moto rolls a failed transaction back by copying every table it names, whole, before each of
its items: once a table holds a few thousand items, each transaction costs tens of milliseconds and
megabytes of garbage, and a long fault workload (1,000 runs) outgrew 24 GB. This server keeps aside
only the items a transaction names, and puts them back if it fails: the same all-or-nothing, at the
cost of the transaction's own items.

Usage: dynamodb-emulator.py ADDRESS_FILE. It binds a free port on 127.0.0.1 itself and writes
`http://127.0.0.1:<port>` to ADDRESS_FILE once it accepts connections.
"""

import hashlib
import io
import json
import os
import sys
import time

import copy

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

# Enough pending connections for the heaviest concurrency test: each waits its turn instead of
# having its SYN dropped (socketserver's default backlog is 5).
BACKLOG = 512


# How long DynamoDB remembers a transaction's token.
TOKEN_SECONDS = 600


class IdempotentTransactions:
    """WSGI middleware: TransactWriteItems with a ClientRequestToken, as DynamoDB treats them."""

    def __init__(self, app):
        self.app = app
        self.applied = {}  # token -> (digest of the request without it, when it was applied)

    def __call__(self, environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").endswith(".TransactWriteItems"):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(raw)
            request = json.loads(raw or b"{}")
            token = request.pop("ClientRequestToken", None)
            if token is not None:
                return self.transaction(token, request, environ, start_response)
        return self.app(environ, start_response)

    def transaction(self, token, request, environ, start_response):
        now = time.monotonic()
        self.applied = {t: seen for t, seen in self.applied.items() if now - seen[1] < TOKEN_SECONDS}
        digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()
        if token in self.applied:
            if self.applied[token][0] != digest:
                body = json.dumps({
                    "__type": "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException",
                    "message": "The request uses the same client token as a previous, but non-identical request.",
                }).encode()
                start_response("400 Bad Request", [("Content-Type", "application/x-amz-json-1.0"),
                                                   ("Content-Length", str(len(body)))])
                return [body]
            body = b"{}"
            start_response("200 OK", [("Content-Type", "application/x-amz-json-1.0"),
                                      ("Content-Length", str(len(body)))])
            return [body]
        status = {}

        def remember(code, headers, exc_info=None):
            status["code"] = code
            return start_response(code, headers, exc_info)

        answer = self.app(environ, remember)
        if status.get("code", "").startswith("200"):
            self.applied[token] = (digest, now)
        return answer


class TablesKeptInPlace:
    """`copy` as moto's DynamoDB backend sees it: a table is not copied (rolled_back_by_item keeps
    the transaction's items aside instead); anything else is, as before."""

    @staticmethod
    def deepcopy(value, memo=None):
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def rolled_back_by_item(transact_write_items):
    """moto's TransactWriteItems, which keeps aside the items the transaction names and puts
    them back if it fails (moto's own rollback then puts back the very tables it holds)."""

    def transaction(backend, transact_items):
        kept = []
        for entry in transact_items:
            try:
                operation = next(iter(entry.values()))
                table = backend.tables[operation["TableName"]]
                key = operation.get("Key") or {
                    name: operation["Item"][name] for name in (table.hash_key_attr, table.range_key_attr) if name
                }
                hash_key, range_key = backend.get_keys_value(table, key)
                before = table.get_item(hash_key, range_key)
            except Exception:
                continue  # moto refuses this item itself, before the transaction writes anything
            kept.append((table, hash_key, range_key, copy.deepcopy(before)))
        try:
            return transact_write_items(backend, transact_items)
        except Exception:
            # Last to first: an item named twice (which moto refuses) ends as it was at the start.
            for table, hash_key, range_key, before in reversed(kept):
                if before is None:
                    table.delete_item(hash_key, range_key)
                elif range_key is not None:
                    table.items[hash_key][range_key] = before
                else:
                    table.items[hash_key] = before
            raise

    return transaction


def main() -> None:
    dynamodb_models.copy = TablesKeptInPlace
    DynamoDBBackend.transact_write_items = rolled_back_by_item(DynamoDBBackend.transact_write_items)
    address_file = sys.argv[1]
    app = IdempotentTransactions(DomainDispatcherApplication(create_backend_app))
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
