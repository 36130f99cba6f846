"""Every event of real /runs/stream answers, validated against /openapi.json's `StreamEvent`.

Streams of both generations (object input, list input, null input to continue), a failing
run (the server's OpenAI endpoint is a closed port), and agents whose tools run (and fail: the
tool's service is a closed port too), stopping for confirmation and going on.
`data` is JSON text: it is decoded and validated against the event's `contentSchema`.

Usage: stream_events.py BASE_URL
"""

import json
import sys
import uuid

import jsonschema
import requests
from referencing import Registry
from referencing.jsonschema import DRAFT202012

BASE = sys.argv[1]
COOKIE = {"opengpts_user_id": f"stream-events-{uuid.uuid4()}"}


def post(path, body):
    response = requests.post(BASE + path, json=body, cookies=COOKIE, timeout=30)
    response.raise_for_status()
    return response


def events(body):
    text = post("/runs/stream", body).text
    assert text.endswith("\r\n\r\n"), repr(text[-40:])
    for frame in text[:-4].split("\r\n\r\n"):
        if frame.startswith(": ping"):
            continue
        fields = dict(line.split(": ", 1) for line in frame.split("\r\n"))
        yield fields


def main():
    spec = requests.get(BASE + "/openapi.json", timeout=10).json()
    # The description as one resource, so every `#/components/...` reference resolves in it.
    registry = Registry().with_resource("urn:openapi", DRAFT202012.create_resource(spec))

    def validator(reference):
        return jsonschema.Draft202012Validator({"$ref": "urn:openapi" + reference}, registry=registry)

    media = spec["paths"]["/runs/stream"]["post"]["responses"]["200"]["content"]["text/event-stream"]
    stream_event = validator(media["itemSchema"]["$ref"])
    branches = spec["components"]["schemas"]["StreamEvent"]["oneOf"]
    checked = 0
    names = set()

    def check(body):
        nonlocal checked
        for event in events(body):
            stream_event.validate(event)
            branch = next(b for b in branches if b["properties"]["event"]["const"] == event["event"])
            content = branch["properties"].get("data", {}).get("contentSchema")
            if content is not None:
                validator(content["$ref"]).validate(json.loads(event["data"]))
            names.add(event["event"])
            checked += 1

    for configurable, inputs in [
        ({"type": "chatbot", "type==chatbot/llm_type": "Offline"}, [[{"type": "human", "content": "hi, my name is Ann"}], None]),
        ({"agent_type": "Offline"}, [{"messages": [{"type": "human", "content": "what is my name?"}]}]),
        ({"type": "chatbot", "type==chatbot/llm_type": "GPT 4o"}, [[{"type": "human", "content": "this fails"}]]),
        ({"type": "agent", "type==agent/agent_type": "Offline", "type==agent/interrupt_before_action": True,
          "type==agent/tools": [{"id": "w", "type": "wikipedia", "name": "Wikipedia", "description": "", "config": {}}]},
         [[{"type": "human", "content": "search wikipedia for the moon"}], None]),
        ({"agent_type": "Offline", "tools": ["Wikipedia", "Arxiv"]},
         [{"messages": [{"type": "human", "content": "search wikipedia and arxiv"}]}]),
    ]:
        assistant = post("/assistants", {"name": "events", "config": {"configurable": configurable}}).json()
        thread = post("/threads", {"name": "events", "assistant_id": assistant["assistant_id"]}).json()
        for run_input in inputs:
            check({"thread_id": thread["thread_id"], "input": run_input})

    missing = {"metadata", "data", "error", "end"} - names
    assert not missing, f"no {missing} event was seen"
    print(f"stream events: {checked} events valid against StreamEvent")


if __name__ == "__main__":
    main()
