"""A fault injector: an HTTP proxy placed between the server and one of its dependencies.

At a configured rate, with a seed, a request forwarded to the upstream fails in one of the ways
that dependency fails in the cloud, each kind in turn. Kinds, for `--flavor dynamodb` (in front of the emulator):
  throttle      400 ThrottlingException
  provisioned   400 ProvisionedThroughputExceededException
  internal      500 InternalServerError
  unavailable   503 ServiceUnavailable
  drop-before   the connection closed before the request reaches the upstream
  drop-after    the request applied upstream, then the connection closed with no answer
  late          the request applied upstream, the answer held past the client's timeout
For `--flavor openai` (in front of an OpenAI-compatible model):
  rate-limited  429 with `retry-after: 1`, before the stream
  server-error  500 before the stream
  dropped       the stream cut half-way (chunked, with no last chunk)
  stalled       the stream stopped half-way, silent for `--stall-seconds`, then cut
  paused        the stream stopped half-way, silent for `--pause-seconds`, then whole (only when
                named in `--kinds`: a slow provider, not a broken one)
For `--flavor lambda` (in front of Lambda's Invoke API, `cargo lambda watch` here):
  throttled     429 TooManyRequestsException
  service-error 500 ServiceException
  drop-before   the connection closed before the invoke reaches Lambda
  drop-after    the invoke delivered, then the connection closed with no answer
  twice         the invoke delivered twice (Lambda delivers an asynchronous event at least once)
Control: `GET /__faults` answers what was forwarded and injected, by kind; `POST /__faults`
with `{"rate": 0.0}` changes the rate (the workload stops the faults this way).

Usage: proxy.py --upstream URL --address-file FILE [--flavor dynamodb|openai|lambda] [--rate 0.2]
       [--seed 1] [--kinds a,b] [--late-seconds 6] [--stall-seconds 5] [--pause-seconds 5]
It binds a free port on 127.0.0.1 and writes `http://127.0.0.1:<port>` to FILE once it listens.
"""

import argparse
import http.client
import json
import random
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler

from serving import serve

DYNAMODB_ERRORS = {
    "throttle": (400, "ThrottlingException", "Rate of requests exceeds the allowed throughput."),
    "provisioned": (400, "ProvisionedThroughputExceededException",
                    "The level of configured provisioned throughput for the table was exceeded."),
    "internal": (500, "InternalServerError", "Internal server error"),
    "unavailable": (503, "ServiceUnavailable", "Service unavailable"),
}
OPENAI_ERRORS = {
    "rate-limited": (429, {"error": {"message": "Rate limit reached for requests", "type": "requests",
                                     "code": "rate_limit_exceeded"}}, [("retry-after", "1")]),
    "server-error": (500, {"error": {"message": "The server had an error while processing your request.",
                                     "type": "server_error"}}, []),
}
# As Lambda's Invoke API answers them (its error type in a header, the body's `Type` and `message`).
LAMBDA_ERRORS = {
    "throttled": (429, "TooManyRequestsException", {"Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
                                                    "Type": "User", "message": "Rate Exceeded."}),
    "service-error": (500, "ServiceException", {"Type": "Service",
                                                "message": "The AWS Lambda service encountered an internal error."}),
}
KINDS = {
    "dynamodb": list(DYNAMODB_ERRORS) + ["drop-before", "drop-after", "late"],
    "openai": list(OPENAI_ERRORS) + ["dropped", "stalled"],
    "lambda": list(LAMBDA_ERRORS) + ["drop-before", "drop-after", "twice"],
}
# Kinds used only when named: not failures, but slowness a run must outlast.
NAMED_ONLY = {"dynamodb": [], "openai": ["paused"], "lambda": []}


class Faults:
    def __init__(self, rate, seed, kinds):
        self.rate = rate
        self.kinds = kinds
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.forwarded = 0
        self.injected = {kind: 0 for kind in kinds}

    def draw(self):
        """The fault for the next request, or None. Kinds take turns, so that a short run
        meets every one."""
        with self.lock:
            self.forwarded += 1
            if self.random.random() >= self.rate:
                return None
            kind = self.kinds[sum(self.injected.values()) % len(self.kinds)]
            self.injected[kind] += 1
            return kind

    def report(self):
        with self.lock:
            return {"rate": self.rate, "requests": self.forwarded, "injected": dict(self.injected)}


def handler(upstream, faults, late_seconds, stall_seconds, pause_seconds):
    target = urllib.parse.urlsplit(upstream)

    class Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            self.relay()

        def do_POST(self):
            self.relay()

        def answer(self, status, body, headers=()):
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def drop(self):
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        def cut(self, response, payload, silence, resume=False):
            """The upstream's stream, cut half-way: what a provider's broken stream looks like;
            or, resumed, one that only paused there."""
            self.send_response(response.status)
            self.send_header("Content-Type", response.getheader("Content-Type", "text/event-stream"))
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            half = payload[: len(payload) // 2]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(half), half))
            self.wfile.flush()
            time.sleep(silence)
            if not resume:
                return self.drop()
            rest = payload[len(half):]
            self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(rest), rest))
            self.wfile.flush()

        def forward(self, body, headers):
            connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            connection.close()
            return response, payload

        def relay(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == "/__faults":
                if self.command == "POST":
                    faults.rate = float(json.loads(body)["rate"])
                return self.answer(200, json.dumps(faults.report()).encode(), [("Content-Type", "application/json")])
            kind = faults.draw()
            if kind in OPENAI_ERRORS:
                status, error, headers = OPENAI_ERRORS[kind]
                return self.answer(status, json.dumps(error).encode(), [("Content-Type", "application/json")] + headers)
            if kind in DYNAMODB_ERRORS:
                status, name, message = DYNAMODB_ERRORS[kind]
                error = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{name}", "message": message})
                return self.answer(status, error.encode(), [("Content-Type", "application/x-amz-json-1.0")])
            if kind in LAMBDA_ERRORS:
                status, name, error = LAMBDA_ERRORS[kind]
                headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", name)]
                return self.answer(status, json.dumps(error).encode(), headers)
            if kind == "drop-before":
                return self.drop()
            headers = {name: value for name, value in self.headers.items()
                       if name.lower() not in ("connection", "keep-alive", "transfer-encoding")}
            if kind == "twice":
                threading.Thread(target=self.forward, args=(body, headers), daemon=True).start()
            response, payload = self.forward(body, headers)
            if kind == "drop-after":
                return self.drop()
            if kind in ("dropped", "stalled"):
                return self.cut(response, payload, stall_seconds if kind == "stalled" else 0)
            if kind == "paused":
                return self.cut(response, payload, pause_seconds, resume=True)
            if kind == "late":
                time.sleep(late_seconds)
            relayed = [(name, value) for name, value in response.getheaders()
                       if name.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length")]
            try:
                self.answer(response.status, payload, relayed)
            except OSError:
                # The client gave up waiting, as it should.
                self.close_connection = True

    return Proxy


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--address-file", required=True)
    parser.add_argument("--rate", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--flavor", choices=sorted(KINDS), default="dynamodb")
    parser.add_argument("--kinds", default="")
    parser.add_argument("--late-seconds", type=float, default=6.0)
    parser.add_argument("--stall-seconds", type=float, default=5.0)
    parser.add_argument("--pause-seconds", type=float, default=5.0)
    args = parser.parse_args()
    kinds = [kind for kind in args.kinds.split(",") if kind] or KINDS[args.flavor]
    known = KINDS[args.flavor] + NAMED_ONLY[args.flavor]
    unknown = set(kinds) - set(known)
    if unknown:
        parser.error(f"unknown kinds {sorted(unknown)}: use {known}")
    faults = Faults(args.rate, args.seed, kinds)
    serve(handler(args.upstream, faults, args.late_seconds, args.stall_seconds, args.pause_seconds),
          args.address_file)


if __name__ == "__main__":
    main()
