"""The common paths through the server, for tracing which of its code runs (scripts/hot-code.sh).

What a user of either API does most: the getting-started walk through the OpenGPTs API (an
assistant, a thread, messages, a run and its stream) and the LangGraph API's stream in the modes
useStream and agent-chat-ui ask for, and its event protocol (a run started with `run.start`, the
thread's events read back over SSE), on the offline model and on an OpenAI-compatible upstream
(a small one served here, in OpenAI's streaming format). Standard library only.

    python workload.py http://127.0.0.1:PORT UPSTREAM_PORT
"""

import http.server
import json
import socketserver
import sys
import threading
import urllib.request
import uuid

BASE = sys.argv[1]
UPSTREAM_PORT = int(sys.argv[2])
HEADERS = {"cookie": "opengpts_user_id=hot-code", "content-type": "application/json"}


def chunk(delta, finish=None):
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    body = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o", "choices": [choice]}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


ANSWER = b"".join([chunk({"role": "assistant", "content": ""})] + [chunk({"content": f"t{i} "}) for i in range(50)]
                  + [chunk({}, "stop"), b"data: [DONE]\n\n"])


class Upstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("content-length", str(len(ANSWER)))
        self.end_headers()
        self.wfile.write(ANSWER)

    def log_message(self, *args):
        pass


class ThreadedServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(BASE + path, data=data, headers=HEADERS, method=method)
    with urllib.request.urlopen(request, timeout=300) as response:
        text = response.read().decode()
    return json.loads(text) if text.startswith(("{", "[")) else text


def opengpts(config):
    assistant = call("POST", "/assistants", {"name": "bar", "config": config, "public": True})
    call("GET", "/assistants")
    thread = call("POST", "/threads", {"name": "hi", "assistant_id": assistant["assistant_id"]})
    messages = f"/threads/{thread['thread_id']}/messages"
    call("POST", messages, {"messages": [{"content": "Hi, my name is bob", "type": "human"}]})
    call("GET", messages)
    call("GET", f"/threads/{thread['thread_id']}/state")
    call("GET", "/threads")
    stream = call("POST", "/runs/stream", {"thread_id": thread["thread_id"],
                                            "input": [{"content": "what is my name?", "type": "human"}]})
    assert "event: end" in stream, stream[-300:]
    call("GET", messages)


def langgraph(graph_config):
    assistant = call("POST", "/langgraph/assistants", {"graph_id": "chatbot", "config": graph_config})
    call("POST", "/langgraph/assistants/search", {"graph_id": "chatbot", "limit": 10})
    for modes in (["messages-tuple"], ["values", "messages-tuple"], ["updates"], ["values"]):
        thread = call("POST", "/langgraph/threads", {})
        runs = f"/langgraph/threads/{thread['thread_id']}/runs"
        stream = call("POST", runs + "/stream", {"assistant_id": assistant["assistant_id"], "stream_mode": modes,
                                                  "input": {"messages": [{"role": "user", "content": "go"}]}})
        assert "event: metadata" in stream, stream[:300]
        call("GET", f"/langgraph/threads/{thread['thread_id']}/state")
        call("POST", f"/langgraph/threads/{thread['thread_id']}/history", {"limit": 10})
        call("GET", runs)
    call("POST", "/langgraph/threads/search", {"limit": 10})


def events(graph_config):
    """The event protocol: `run.start` on a new thread, then its events until the run's end."""
    assistant = call("POST", "/langgraph/assistants", {"graph_id": "chatbot", "config": graph_config})
    thread_id = str(uuid.uuid4())
    thread = f"/langgraph/threads/{thread_id}"
    started = call("POST", thread + "/commands", {"id": 1, "method": "run.start", "params": {
        "assistant_id": assistant["assistant_id"], "input": {"messages": [{"role": "user", "content": "go"}]}}})
    assert started["type"] == "success", started
    body = json.dumps({"channels": ["lifecycle", "messages", "values"]}).encode()
    request = urllib.request.Request(BASE + thread + "/stream/events", data=body, headers=HEADERS, method="POST")
    # The stream stays open: it is read until the run's end.
    with urllib.request.urlopen(request, timeout=300) as response:
        seen = b""
        while b"||completed" not in seen:
            line = response.readline()
            assert line, seen[-300:]
            seen += line
    call("GET", thread + "/state")


def main():
    upstream = ThreadedServer(("127.0.0.1", UPSTREAM_PORT), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    call("GET", "/ok")
    call("GET", "/langgraph/info")
    offline = {"configurable": {}}
    openai = {"configurable": {"type==chatbot/llm_type": "GPT 4o"}}
    for _ in range(2):
        opengpts(offline)
        opengpts({"configurable": {"type": "chatbot", "type==chatbot/llm_type": "GPT 4o"}})
        langgraph(offline)
        langgraph(openai)
        events(offline)
        events(openai)
    print("workload done")


main()
