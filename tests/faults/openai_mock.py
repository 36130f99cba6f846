"""A stand-in for OpenAI's chat completions API, for the fault workload: it streams, in OpenAI's
wire format (`chat.completion.chunk` events, then `data: [DONE]`), an answer that quotes the
conversation's last user message, so a checker can tell which input an answer belongs to.

Usage: openai_mock.py --address-file FILE
It binds a free port on 127.0.0.1 and writes `http://127.0.0.1:<port>` to FILE once it listens.
"""

import argparse
import json
from http.server import BaseHTTPRequestHandler

from serving import serve


def chunk(delta, finish=None):
    return {"id": "chatcmpl-chaos", "object": "chat.completion.chunk", "created": 0, "model": "chaos",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        users = [message for message in request.get("messages", []) if message.get("role") == "user"]
        said = users[-1]["content"] if users else ""
        if isinstance(said, list):
            said = "".join(part.get("text", "") for part in said)
        words = f'You said: "{said}". That is all.'.split(" ")
        events = [chunk({"role": "assistant", "content": ""})]
        events += [chunk({"content": word if index == 0 else " " + word}) for index, word in enumerate(words)]
        events.append(chunk({}, "stop"))
        body = "".join(f"data: {json.dumps(event)}\n\n" for event in events) + "data: [DONE]\n\n"
        payload = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--address-file", required=True)
    serve(Handler, parser.parse_args().address_file)


if __name__ == "__main__":
    main()
