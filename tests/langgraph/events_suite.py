"""LangGraph's thread-centric event protocol driven by its own client, langgraph-sdk's
`client.threads.stream()`, as a user's code would drive it, and by raw HTTP where the client
hides the wire (replay with `since`, the error envelopes).

Usage: python events_suite.py <base url of the OpenGPTs API> <transport: sse | websocket | both>
The server runs the offline model (tokens a few milliseconds apart) and a Wikipedia stand-in.
Each check prints its name; the first failure ends the suite with a non-zero exit.
"""

import asyncio
import json
import sys
import uuid

import httpx
from langgraph_sdk import get_client

BASE = sys.argv[1].rstrip("/")
URL = BASE + "/langgraph"
TRANSPORTS = ["sse", "websocket"] if sys.argv[2] == "both" else [sys.argv[2]]
SUFFIX = uuid.uuid4().hex[:8]
CHECKS = []
WIKIPEDIA = [{"id": "wikipedia", "type": "wikipedia", "name": "Wikipedia", "config": {}}]
TIMEOUT = 30


# Each check is a user of its own: its streams count against its own limit alone.
RUNNING = []


def me():
    return RUNNING[-1]


def user(name):
    return f"{name}-{SUFFIX}"


def cookie(name):
    return {"Cookie": f"opengpts_user_id={user(name)}"}


def client(name):
    return get_client(url=URL, headers=cookie(name))


def session(sdk, name, thread_id=None, **kwargs):
    """`sdk.threads.stream()` for `name`: its WebSocket takes the session's headers, not the
    client's (the SDK's way), so the cookie goes to both."""
    return sdk.threads.stream(thread_id, headers=cookie(name), **kwargs)


def human(text):
    return {"messages": [{"role": "user", "content": text}]}


def check(function):
    CHECKS.append(function)
    return function


def types(output):
    """The types of an output's messages (`await thread.output` is the thread's values)."""
    return [message["type"] for message in output["messages"]]


async def messages_of(thread):
    """Each message the thread streams: its text as the deltas built it, and as it ended. The
    projection feeds a message as it iterates, so the messages are read once it has ended."""
    streams = [message async for message in thread.messages]
    return [("".join([delta async for delta in message.text]), await message.text) for message in streams]


async def events(thread_id, name, body, until, since=None):
    """The thread's events over raw SSE, read until `until(event)` holds for one."""
    if since is not None:
        body = {**body, "since": since}
    found = []
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        async with http.stream("POST", f"{URL}/threads/{thread_id}/stream/events", json=body,
                               headers=cookie(name)) as response:
            assert response.status_code == 200, response.status_code
            assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    event = json.loads(line[6:])
                    found.append(event)
                    if until(event):
                        return found
    raise AssertionError(f"the stream ended: {found}")


def lifecycle(event, *names):
    return event["method"] == "lifecycle" and event["params"]["namespace"] == [] and \
        event["params"]["data"]["event"] in names


def the_nth_end(count):
    """Holds for the root `completed` of the thread's `count`th run."""
    ends = []

    def holds(event):
        if lifecycle(event, "completed", "failed"):
            ends.append(event)
        return len(ends) == count
    return holds


async def command(thread_id, name, body, status=200):
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        response = await http.post(f"{URL}/threads/{thread_id}/commands", content=body if isinstance(body, bytes)
                                   else json.dumps(body), headers={**cookie(name), "content-type": "application/json"})
    assert response.status_code == status, (response.status_code, response.text)
    return response.json()


async def agent(sdk, **configurable):
    made = await sdk.assistants.create(graph_id="agent", config={"configurable": {"tools": WIKIPEDIA, **configurable}})
    return made["assistant_id"]


@check
async def a_chat_streams_its_answer_and_its_output_is_the_thread():
    sdk = client(me())
    for transport in TRANSPORTS:
        async with session(sdk, me(), assistant_id="chatbot", transport=transport) as thread:
            await thread.run.start(input=human("Hello, my name is Ann"))
            streamed = await asyncio.wait_for(messages_of(thread), TIMEOUT)
            state = await asyncio.wait_for(thread.output, TIMEOUT)
        assert len(streamed) == 1 and streamed[0][0] == streamed[0][1] and "Ann" in streamed[0][1], streamed
        assert types(state) == ["human", "ai"], state
        assert state["messages"][1]["content"] == streamed[0][1], (state, streamed)
        stored = await sdk.threads.get(thread.thread_id)
        assert stored["metadata"]["graph_id"] == "chatbot", stored


@check
async def an_agents_tool_call_shows_on_tools_and_messages():
    sdk = client(me())
    assistant_id = await agent(sdk)
    for transport in TRANSPORTS:
        async with session(sdk, me(), assistant_id=assistant_id, transport=transport) as thread:
            await thread.run.start(input=human("Look up the moon in wikipedia"))
            handles = [call async for call in thread.tool_calls]
            calls = [(call.name, call.input, await asyncio.wait_for(call.output, TIMEOUT)) for call in handles]
            state = await asyncio.wait_for(thread.output, TIMEOUT)
        assert [(name, args) for name, args, _ in calls] == [("wikipedia", {"query": "Look up the moon in wikipedia"})], calls
        assert "moon" in json.dumps(calls[0][2]).lower(), calls
        assert types(state) == ["human", "ai", "tool", "ai"], state
    # The tool's message comes on a namespace of its own, the answers on the root's.
    seen = await events(thread.thread_id, me(), {"channels": ["messages", "lifecycle"]},
                        lambda event: lifecycle(event, "completed"), since=0)
    namespaces = {tuple(event["params"]["namespace"]) for event in seen if event["method"] == "messages"}
    call_id = state["messages"][2]["tool_call_id"]
    assert namespaces == {(), (f"tools:{call_id}",)}, namespaces


@check
async def a_confirmation_is_asked_on_input_and_answered_with_respond():
    sdk = client(me())
    assistant_id = await agent(sdk, interrupt_before_action=True)
    for transport in TRANSPORTS:
        async with session(sdk, me(), assistant_id=assistant_id, transport=transport) as thread:
            await thread.run.start(input=human("Look up the moon in wikipedia"))
            for _ in range(300):
                if thread.interrupted:
                    break
                await asyncio.sleep(0.05)
            assert thread.interrupted and len(thread.interrupts) == 1, thread.interrupts
            waiting = await sdk.threads.get_state(thread.thread_id)
            assert waiting["next"] == ["action"], waiting
            await thread.run.respond(True)
        # The answer is a second run: the log shows both.
        done = await events(thread.thread_id, me(), {"channels": ["lifecycle"]}, the_nth_end(1), since=0)
        ends = [event["params"]["data"]["event"] for event in done]
        assert ends == ["running", "interrupted", "running", "completed"], ends
        state = await sdk.threads.get_state(thread.thread_id)
        assert [m["type"] for m in state["values"]["messages"]] == ["human", "ai", "tool", "ai"], state
    # The interrupt asked names the calls waiting; an answer to it twice is refused.
    asked = await events(thread.thread_id, me(), {"channels": ["input"]}, lambda event: True, since=0)
    request = asked[0]["params"]["data"]
    assert request["payload"]["action_requests"][0]["name"] == "wikipedia", request
    again = await command(thread.thread_id, me(), {"id": 5, "method": "input.respond", "params": {
        "interrupt_id": request["interrupt_id"], "namespace": [], "response": True}})
    assert again == {"type": "error", "id": 5, "error": "no_such_run",
                     "message": "No interrupted run is bound to this thread."}, again


@check
async def a_batch_of_responses_answers_the_interrupt():
    sdk = client(me())
    assistant_id = await agent(sdk, interrupt_before_action=True)
    thread_id = str(uuid.uuid4())
    await command(thread_id, me(), {"id": 1, "method": "run.start", "params": {
        "assistant_id": assistant_id, "input": human("Look up the moon in wikipedia")}})
    asked = await events(thread_id, me(), {"channels": ["input"]}, lambda event: True)
    interrupt_id = asked[0]["params"]["data"]["interrupt_id"]
    entry = {"interrupt_id": interrupt_id, "namespace": [], "response": True}
    twice = await command(thread_id, me(), {"id": 2, "method": "input.respond", "params": {"responses": [entry, entry]}})
    assert twice["error"] == "invalid_argument", twice
    answered = await command(thread_id, me(), {"id": 3, "method": "input.respond", "params": {"responses": [entry]}})
    assert answered == {"type": "success", "id": 3, "result": {}, "meta": {"applied_through_seq": 0}}, answered
    await events(thread_id, me(), {"channels": ["lifecycle"]}, the_nth_end(1))
    state = await sdk.threads.get_state(thread_id)
    assert [m["type"] for m in state["values"]["messages"]] == ["human", "ai", "tool", "ai"], state


@check
async def a_review_is_answered_with_decisions():
    sdk = client(me())
    assistant_id = await agent(sdk, tool_review=True)
    async with session(sdk, me(), assistant_id=assistant_id) as thread:
        await thread.run.start(input=human("Look up the moon in wikipedia"))
        for _ in range(300):
            if thread.interrupted:
                break
            await asyncio.sleep(0.05)
        reject = {"decisions": [{"type": "reject", "message": "not now"}]}
        await thread.run.respond(reject)
    await events(thread.thread_id, me(), {"channels": ["lifecycle"]}, the_nth_end(1), since=0)
    state = await sdk.threads.get_state(thread.thread_id)
    assert "not now" in state["values"]["messages"][2]["content"], state
    # An input that is not messages, sent with run.start to a thread waiting for the user, is the
    # user's answer.
    async with session(sdk, me(), thread.thread_id, assistant_id=assistant_id) as again:
        await again.run.start(input=human("Look up the sun in wikipedia"))
    for _ in range(300):
        if (await sdk.threads.get_state(thread.thread_id))["next"]:
            break
        await asyncio.sleep(0.05)
    async with session(sdk, me(), thread.thread_id, assistant_id=assistant_id) as answer:
        await answer.run.start(input={"decisions": [{"type": "approve"}]})
    await events(thread.thread_id, me(), {"channels": ["lifecycle"]}, the_nth_end(2), since=0)
    state = await sdk.threads.get_state(thread.thread_id)
    kinds = [message["type"] for message in state["values"]["messages"]]
    assert kinds == ["human", "ai", "tool", "ai", "human", "ai", "tool", "ai"], kinds
    assert "sun" in state["values"]["messages"][6]["content"].lower(), state


@check
async def a_second_run_continues_the_threads_numbering():
    sdk = client(me())
    thread_id = str(uuid.uuid4())
    # The second is queued behind the first (run.start enqueues).
    for text in ["Hello, my name is Bo", "What is my name?"]:
        async with session(sdk, me(), thread_id, assistant_id="chatbot") as thread:
            await thread.run.start(input=human(text))
    every = await events(thread_id, me(), {"channels": ["lifecycle", "messages", "values", "updates", "tools", "input"]},
                         the_nth_end(2))
    seqs = [event["seq"] for event in every]
    assert seqs == list(range(1, len(seqs) + 1)), seqs
    runs = [event["event_id"].split(":")[1] for event in every if event["method"] == "lifecycle"]
    assert len(runs) == 4 and runs[0] == runs[1] != runs[2] == runs[3], runs
    state = await sdk.threads.get_state(thread_id)
    assert "Bo" in state["values"]["messages"][-1]["content"], state


@check
async def a_reconnect_with_since_gets_every_later_event_once():
    sdk = client(me())
    async with session(sdk, me(), assistant_id="chatbot") as thread:
        await thread.run.start(input=human("Hello there, tell me something long"))
        await asyncio.wait_for(thread.output, TIMEOUT)
    body = {"channels": ["lifecycle", "messages", "values"]}
    whole = await events(thread.thread_id, me(), body, lambda event: lifecycle(event, "completed"))
    cut = len(whole) // 2
    first = await events(thread.thread_id, me(), body, lambda event: event["seq"] == whole[cut]["seq"], since=0)
    rest = await events(thread.thread_id, me(), body, lambda event: lifecycle(event, "completed"), since=first[-1]["seq"])
    assert first + rest == whole, (first, rest)
    only_messages = await events(thread.thread_id, me(), {"channels": ["messages"], "namespaces": [[]], "depth": 0},
                                 lambda event: event["params"]["data"]["event"] == "message-finish", since=0)
    assert {event["method"] for event in only_messages} == {"messages"}


@check
async def a_failed_run_ends_failed_and_output_raises():
    sdk = client(me())
    assistant_id = await agent(sdk)
    for transport in TRANSPORTS:
        async with session(sdk, me(), assistant_id=assistant_id, transport=transport) as thread:
            await thread.run.start(input=human("Look up the moon in wikipedia"), config={"recursion_limit": 1})
            try:
                await asyncio.wait_for(thread.output, TIMEOUT)
                raise AssertionError("a failed run gave an output")
            except RuntimeError as error:
                assert str(error).startswith("Run errored:"), error
        stored = await sdk.threads.get(thread.thread_id)
        assert stored["status"] == "error", stored


@check
async def a_run_of_any_protocol_is_on_the_threads_log():
    sdk = client(me())
    thread = await sdk.threads.create()
    parts = [part async for part in sdk.runs.stream(thread["thread_id"], "chatbot", input=human("Hi, classic"))]
    assert parts[-1].event == "values", parts
    seen = await events(thread["thread_id"], me(), {"channels": ["lifecycle", "messages"]},
                        lambda event: lifecycle(event, "completed"), since=0)
    assert seen[0]["params"]["data"] == {"event": "running", "graph_name": "chatbot"}, seen[0]
    started = await command(thread["thread_id"], me(), {"id": 1, "method": "run.start", "params": {
        "assistant_id": "chatbot", "input": human("And now the new way")}})
    joined = await sdk.runs.join(thread["thread_id"], started["result"]["run_id"])
    assert [m["type"] for m in joined["messages"]] == ["human", "ai", "human", "ai"], joined


@check
async def anothers_thread_is_neither_read_nor_run():
    sdk = client(me())
    async with session(sdk, me(), assistant_id="chatbot") as thread:
        await thread.run.start(input=human("private words"))
        await asyncio.wait_for(thread.output, TIMEOUT)
    refused = await command(thread.thread_id, "eve", {"id": 1, "method": "run.start", "params": {
        "assistant_id": "chatbot", "input": human("mine now")}})
    assert refused["error"] == "unknown_error" and refused["message"] == "404: Thread or assistant not found.", refused
    # Eve's stream of Ann's thread sends none of its events: it only says it is alive (or, on a
    # Lambda function, ends once it has had nothing to send for a while).
    received = b""
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        async with http.stream("POST", f"{URL}/threads/{thread.thread_id}/stream/events",
                               json={"channels": ["messages", "values", "lifecycle"]},
                               headers=cookie("eve")) as response:
            assert response.status_code == 200

            async def read():
                nonlocal received
                async for chunk in response.aiter_raw():
                    received += chunk
            try:
                await asyncio.wait_for(read(), 7)
            except asyncio.TimeoutError:
                pass
    assert b"data:" not in received and received in (b"", b": heartbeat\r\n\r\n"), received


@check
async def errors_get_the_references_envelopes():
    thread_id = str(uuid.uuid4())
    assert await command(thread_id, me(), b"not json", 400) == {"detail": "Invalid JSON body"}
    assert await command(thread_id, me(), {"method": "run.start"}, 400) == {
        "type": "error", "id": None, "error": "invalid_argument",
        "message": "Protocol commands must include an integer id and string method."}
    assert (await command(thread_id, me(), {"id": "x", "method": "run.start"}, 400))["id"] == "x"
    cases = [
        ("state.get", {}, "unknown_command", "Unknown protocol command: state.get"),
        ("run.start", {"input": human("hi")}, "invalid_argument", "run.start requires an assistant_id."),
        ("run.start", {"assistant_id": "chatbot", "config": {"configurable": {"checkpoint_id": "not-a-uuid"}}},
         "invalid_argument", "Invalid config.configurable.checkpoint_id: 'not-a-uuid'."),
        ("input.respond", {"namespace": [], "response": 1}, "invalid_argument", "input.respond requires an interrupt_id."),
        ("input.respond", {"interrupt_id": "abc", "namespace": [], "response": 1}, "no_such_run",
         "No interrupted run is bound to this thread."),
        ("subscription.subscribe", {"channels": ["bogus"]}, "invalid_argument",
         "subscription.subscribe received an unsupported channel."),
        ("agent.getTree", {}, "no_such_run", "No active run is bound to this thread."),
    ]
    for number, (method, params, code, message) in enumerate(cases, start=1):
        answer = await command(thread_id, me(), {"id": number, "method": method, "params": params})
        assert answer == {"type": "error", "id": number, "error": code, "message": message}, (method, answer)
    unknown = await command(thread_id, me(), {"id": 9, "method": "run.start", "params": {"assistant_id": "nope"}})
    assert unknown["error"] == "unknown_error" and unknown["message"].startswith("422: Invalid assistant: 'nope'."), unknown
    subscribed = await command(thread_id, me(), {"id": 10, "method": "subscription.subscribe",
                                                  "params": {"channels": ["values"]}})
    assert subscribed["result"]["replayed_events"] == 0 and subscribed["meta"] == {"applied_through_seq": 0}
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        stream = f"{URL}/threads/{thread_id}/stream/events"
        for body, detail in [
            ({}, "channels is required and must be a non-empty array"),
            ({"channels": ["values", "bogus"]}, "channels contains unsupported entries: bogus. Allowed: values, "
             "updates, messages, tools, custom, lifecycle, input, tasks, or any `custom:<name>`."),
        ]:
            response = await http.post(stream, json=body, headers=cookie(me()))
            assert (response.status_code, response.json()) == (400, {"detail": detail}), response.text
        response = await http.post(stream, content=b"{", headers=cookie(me()))
        assert (response.status_code, response.json()) == (400, {"detail": "Invalid JSON body"})


@check
async def a_fork_starts_from_the_checkpoint_named():
    sdk = client(me())
    thread_id = str(uuid.uuid4())
    async with session(sdk, me(), thread_id, assistant_id="chatbot") as thread:
        await thread.run.start(input=human("Hello, my name is Ann"))
    await events(thread_id, me(), {"channels": ["lifecycle"]}, the_nth_end(1))
    after_first = (await sdk.threads.get_state(thread_id))["checkpoint"]["checkpoint_id"]
    async with session(sdk, me(), thread_id, assistant_id="chatbot") as thread:
        await thread.run.start(input=human("Hello, my name is Bo"))
    await events(thread_id, me(), {"channels": ["lifecycle"]}, the_nth_end(2))
    async with session(sdk, me(), thread_id, assistant_id="chatbot") as thread:
        await thread.run.start(input=human("What is my name?"),
                               config={"configurable": {"checkpoint_id": after_first}})
    seen = await events(thread_id, me(), {"channels": ["lifecycle", "values"]}, the_nth_end(3))
    opening = next(event for event in reversed(seen) if lifecycle(event, "running"))
    first_values = next(event for event in seen if event["method"] == "values" and event["seq"] > opening["seq"])
    contents = [message["content"] for message in first_values["params"]["data"]["messages"]]
    assert contents[0] == "Hello, my name is Ann" and contents[-1] == "What is my name?" and len(contents) == 3, contents
    state = await sdk.threads.get_state(thread_id)
    assert "Ann" in state["values"]["messages"][-1]["content"], state
    tree = await command(thread_id, me(), {"id": 1, "method": "agent.getTree", "params": {}})
    assert tree["result"]["tree"] == {"namespace": [], "status": "completed", "graph_name": "chatbot", "children": []}, tree


@check
async def a_socket_takes_commands_and_sends_each_event_once():
    if "websocket" not in TRANSPORTS:
        return
    import websockets

    thread_id = str(uuid.uuid4())
    url = URL.replace("http://", "ws://") + f"/threads/{thread_id}/stream/events"
    async with websockets.connect(url, additional_headers=cookie(me())) as socket:
        async def ask(frame):
            await socket.send(frame if isinstance(frame, str) else json.dumps(frame))
            while True:
                reply = json.loads(await asyncio.wait_for(socket.recv(), TIMEOUT))
                if reply["type"] != "event":
                    return reply
        assert await ask("not json") == {"type": "error", "id": None, "error": "invalid_argument",
                                         "message": "Protocol commands must be valid JSON."}
        first = await ask({"id": 1, "method": "subscription.subscribe", "params": {"channels": ["lifecycle"]}})
        second = await ask({"id": 2, "method": "subscription.subscribe", "params": {"channels": ["lifecycle", "values"]}})
        assert first["type"] == second["type"] == "success", (first, second)
        started = await ask({"id": 3, "method": "run.start", "params": {"assistant_id": "chatbot",
                                                                         "input": human("Hello, my name is Ann")}})
        assert started["type"] == "success", started
        seqs = []
        while True:
            event = json.loads(await asyncio.wait_for(socket.recv(), TIMEOUT))
            seqs.append(event["seq"])
            if lifecycle(event, "completed"):
                break
        assert seqs == sorted(set(seqs)), f"each event once, in order: {seqs}"
        gone = await ask({"id": 4, "method": "subscription.unsubscribe",
                          "params": {"subscription_id": second["result"]["subscription_id"]}})
        assert gone["type"] == "success", gone
        unknown = await ask({"id": 5, "method": "subscription.unsubscribe", "params": {"subscription_id": "nope"}})
        assert (unknown["error"], unknown["message"]) == ("no_such_subscription", "Unknown subscription: nope"), unknown
        for number in range(15):
            await ask({"id": 10 + number, "method": "subscription.subscribe", "params": {"channels": ["tasks"]}})
        capped = await ask({"id": 30, "method": "subscription.subscribe", "params": {"channels": ["tasks"]}})
        assert capped["error"] == "invalid_argument" and "at most 16 subscriptions" in capped["message"], capped


@check
async def a_local_server_needs_nothing_but_its_url():
    sdk = get_client(url=URL)
    async with sdk.threads.stream(assistant_id="chatbot", transport=TRANSPORTS[-1]) as thread:
        await thread.run.start(input=human("Hello from nowhere"))
        state = await asyncio.wait_for(thread.output, TIMEOUT)
    assert types(state) == ["human", "ai"], state


async def main():
    only = set(sys.argv[3:])
    for function in CHECKS:
        if only and function.__name__ not in only:
            continue
        print(function.__name__, flush=True)
        RUNNING.append(function.__name__[:40])
        await function()
    print("all passed")


asyncio.run(main())
