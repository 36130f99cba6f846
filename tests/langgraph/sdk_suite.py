"""The LangGraph API driven by its own client, langgraph-sdk, as a user's code would drive it.

Usage: python sdk_suite.py <base url of the OpenGPTs API>
The server runs the offline model (tokens a few milliseconds apart) and a Wikipedia stand-in.
Each check prints its name; the first failure ends the suite with a non-zero exit.
"""

import asyncio
import json
import re
import sys
import time
import uuid

import httpx
from langgraph_sdk.errors import ConflictError, NotFoundError, UnprocessableEntityError

from harness import check, raises, run_checks, user
from harness import client as client_at

BASE = sys.argv[1].rstrip("/")
URL = BASE + "/langgraph"


def client(name):
    return client_at(URL, name)


def human(text):
    return {"messages": [{"role": "user", "content": text}]}


async def events(stream):
    return [(part.event, part.data) async for part in stream]


def names(parts):
    return [event for event, _ in parts]


def types(messages):
    return [message["type"] for message in messages]


class Going:
    """A long run streamed in a task of its own: it holds its thread while the suite does
    something else (a background run might be finished by the time its creation answers, as
    under `cargo lambda watch`, whose asynchronous invokes wait for the function)."""

    def __init__(self, sdk, thread_id, **kwargs):
        self.parts = []
        self.started = asyncio.Event()
        self.task = asyncio.create_task(self.consume(sdk, thread_id, kwargs))

    async def consume(self, sdk, thread_id, kwargs):
        kwargs.setdefault("input", human("Tell me everything " * 20))
        kwargs.setdefault("stream_mode", ["values", "messages-tuple"])
        async for part in sdk.runs.stream(thread_id, "chatbot", **kwargs):
            self.parts.append(part)
            if part.event == "messages":
                self.started.set()
        self.started.set()

    async def run_id(self):
        await self.started.wait()
        return self.parts[0].data["run_id"]

    async def end(self):
        await self.task
        return self.parts


@check
async def health_and_info():
    async with httpx.AsyncClient() as http:
        ok = await http.get(URL + "/ok")
        assert ok.json() == {"ok": True, "services": {}}, ok.text
        info = await http.get(URL + "/info")
        assert info.status_code == 200 and "version" in info.json(), info.text


@check
async def default_assistants_one_per_graph():
    alice = client("alice")
    found = await alice.assistants.search(graph_id="chatbot")
    assert [a["assistant_id"] for a in found] == ["8a4ac7a4-50eb-5206-98cc-4a72345cb1f7"], found
    assert found[0]["metadata"] == {"created_by": "system"} and found[0]["name"] == "chatbot"
    graphs = {a["graph_id"] for a in await alice.assistants.search(metadata={"created_by": "system"})}
    assert graphs == {"chatbot", "chat_retrieval", "agent"}, graphs
    refused = await raises(Exception, alice.assistants.update(found[0]["assistant_id"], name="mine"))
    assert getattr(refused, "response", None) is not None and refused.response.status_code == 403, refused


@check
async def assistants_lifecycle():
    alice, bob = client("alice"), client("bob")
    made = await alice.assistants.create(
        graph_id="agent", config={"configurable": {"system_message": "Be brief."}},
        metadata={"team": "red"}, name="Brief agent", description="answers briefly")
    assert list(made) == ["assistant_id", "graph_id", "config", "context", "metadata", "name", "created_at",
                          "updated_at", "version", "description"], list(made)
    assert made["version"] == 1 and made["graph_id"] == "agent" and made["config"]["configurable"]["system_message"]
    got = await alice.assistants.get(made["assistant_id"])
    assert got == made, (got, made)
    updated = await alice.assistants.update(made["assistant_id"], metadata={"size": "s"}, name="Briefer")
    assert updated["version"] == 2 and updated["metadata"] == {"team": "red", "size": "s"}, updated
    assert updated["name"] == "Briefer"
    assert [a["assistant_id"] for a in await alice.assistants.search(metadata={"team": "red"})] == [made["assistant_id"]]
    assert await alice.assistants.count(graph_id="agent") == 2
    schemas = await alice.assistants.get_schemas(made["assistant_id"])
    assert schemas["graph_id"] == "agent" and "messages" in schemas["input_schema"]["properties"], schemas
    graph = await alice.assistants.get_graph(made["assistant_id"])
    assert [node["id"] for node in graph["nodes"]] == ["__start__", "agent", "action", "__end__"], graph
    versions = await alice.assistants.get_versions(made["assistant_id"])
    assert [v["version"] for v in versions] == [2, 1], versions
    assert versions[1]["name"] == "Brief agent" and versions[1]["metadata"] == {"team": "red"}, versions[1]
    back = await alice.assistants.set_latest(made["assistant_id"], 1)
    assert back["version"] == 1 and back["name"] == "Brief agent" and back["metadata"] == {"team": "red"}, back
    forward = await alice.assistants.set_latest(made["assistant_id"], 2)
    assert forward["name"] == "Briefer" and forward["version"] == 2, forward
    third = await alice.assistants.update(made["assistant_id"], name="Third")
    assert third["version"] == 3, third
    await raises(NotFoundError, alice.assistants.set_latest(made["assistant_id"], 9))
    # Someone else's assistant is not there for them, and cannot be taken over by id.
    await raises(NotFoundError, bob.assistants.get(made["assistant_id"]))
    await raises(ConflictError, bob.assistants.create(graph_id="chatbot", assistant_id=made["assistant_id"]))
    again = await alice.assistants.create(graph_id="agent", assistant_id=made["assistant_id"], if_exists="do_nothing")
    assert again["assistant_id"] == made["assistant_id"] and again["version"] == 3
    # The same assistant through the OpenGPTs API, as a bot of its type.
    async with httpx.AsyncClient(cookies={"opengpts_user_id": user("alice")}) as http:
        seen = (await http.get(f"{BASE}/assistants/{made['assistant_id']}")).json()
        assert seen["config"]["configurable"]["type"] == "agent", seen
        assert seen["config"]["configurable"]["type==agent/system_message"] == "Be brief.", seen
    await alice.assistants.delete(made["assistant_id"])
    await raises(NotFoundError, alice.assistants.get(made["assistant_id"]))


@check
async def paginated_searches_say_what_is_left():
    async with httpx.AsyncClient(cookies={"opengpts_user_id": user("pager")}) as http:
        first = await http.post(URL + "/assistants/search", json={"limit": 2, "offset": 0})
        assert first.headers["x-pagination-total"] == "3" and first.headers["x-pagination-next"] == "2", first.headers
        last = await http.post(URL + "/assistants/search", json={"limit": 2, "offset": 2})
        assert last.headers["x-pagination-total"] == "3" and "x-pagination-next" not in last.headers


@check
async def threads_lifecycle():
    alice, bob = client("alice"), client("bob")
    thread = await alice.threads.create(metadata={"topic": "sdk"})
    assert thread["status"] == "idle" and thread["values"] is None and thread["metadata"] == {"topic": "sdk"}
    assert (await alice.threads.get(thread["thread_id"]))["thread_id"] == thread["thread_id"]
    patched = await alice.threads.update(thread["thread_id"], metadata={"more": 1})
    assert patched["metadata"] == {"topic": "sdk", "more": 1}, patched
    found = await alice.threads.search(metadata={"topic": "sdk"})
    assert [t["thread_id"] for t in found] == [thread["thread_id"]], found
    assert thread["thread_id"] in [t["thread_id"] for t in await alice.threads.search(status="idle", limit=100)]
    assert await alice.threads.count(metadata={"topic": "sdk"}) == 1
    chosen = str(uuid.uuid4())
    await alice.threads.create(thread_id=chosen)
    conflict = await raises(ConflictError, alice.threads.create(thread_id=chosen))
    assert f"Thread with ID {chosen} already exists" in str(conflict.response.text), conflict.response.text
    assert (await alice.threads.create(thread_id=chosen, if_exists="do_nothing"))["thread_id"] == chosen
    await raises(NotFoundError, bob.threads.get(thread["thread_id"]))
    await raises(ConflictError, bob.threads.create(thread_id=chosen))
    empty = await alice.threads.get_state(thread["thread_id"])
    assert empty["values"] == {} and empty["checkpoint"] is None and empty["next"] == [], empty
    await alice.threads.delete(thread["thread_id"])
    missing = await raises(NotFoundError, alice.threads.get(thread["thread_id"]))
    assert f"Thread with ID {thread['thread_id']} not found" in missing.response.text


@check
async def every_stream_mode_and_several_at_once():
    alice = client("alice")
    thread = await alice.threads.create()
    values = await events(alice.runs.stream(thread["thread_id"], "chatbot", input=human("Hello there")))
    assert names(values) == ["metadata", "values", "values"], names(values)
    assert types(values[1][1]["messages"]) == ["human"] and types(values[2][1]["messages"]) == ["human", "ai"]
    answer = values[2][1]["messages"][1]["content"]
    assert answer, values

    updates = await events(alice.runs.stream(thread["thread_id"], "chatbot", input=human("Hi again"),
                                             stream_mode="updates"))
    assert names(updates) == ["metadata", "updates"], names(updates)
    assert list(updates[1][1]) == ["chatbot"] and types(updates[1][1]["chatbot"]["messages"]) == ["ai"]

    tuples = await events(alice.runs.stream(thread["thread_id"], "chatbot", input=human("And again"),
                                            stream_mode="messages-tuple"))
    chunks = [data for event, data in tuples if event == "messages"]
    assert all(chunk["type"] == "AIMessageChunk" for chunk, _ in chunks), chunks
    assert chunks[-1][0]["chunk_position"] == "last" and chunks[-2][0]["response_metadata"]["finish_reason"] == "stop"
    said = "".join(chunk["content"] for chunk, _ in chunks)
    state = await alice.threads.get_state(thread["thread_id"])
    assert said == state["values"]["messages"][-1]["content"], (said, state["values"]["messages"][-1])
    assert {meta["langgraph_node"] for _, meta in chunks} == {"chatbot"}
    assert chunks[0][1]["thread_id"] == thread["thread_id"] and chunks[0][1]["graph_id"] == "chatbot"

    partial = await events(alice.runs.stream(thread["thread_id"], "chatbot", input=human("Once more"),
                                             stream_mode="messages"))
    assert names(partial)[:2] == ["metadata", "messages/metadata"], names(partial)
    assert partial[-1][0] == "messages/partial" and partial[-1][1][0]["type"] == "ai"

    lifecycle = await events(alice.runs.stream(thread["thread_id"], "chatbot", input=human("Events too"),
                                               stream_mode="events"))
    kinds = [(data["event"], data["name"]) for event, data in lifecycle if event == "events"]
    assert kinds[:3] == [("on_chain_start", "chatbot"), ("on_chain_start", "chatbot"),
                         ("on_chat_model_start", "ChatModel")], kinds[:3]
    assert kinds[-4:] == [("on_chat_model_end", "ChatModel"), ("on_chain_stream", "chatbot"),
                          ("on_chain_end", "chatbot"), ("on_chain_end", "chatbot")], kinds[-4:]
    streamed = "".join(data["data"]["chunk"]["content"] for event, data in lifecycle
                       if event == "events" and data["event"] == "on_chat_model_stream")
    final = [data for event, data in lifecycle if event == "events"][-1]["data"]["output"]["messages"][-1]
    assert streamed == final["content"] and final["type"] == "ai", (streamed, final)

    mixed = await events(alice.runs.stream(thread["thread_id"], "chatbot", input=human("Last one"),
                                           stream_mode=["values", "messages-tuple", "custom"]))
    assert set(names(mixed)) == {"metadata", "values", "messages"}, names(mixed)
    assert names(mixed)[1] == "values" and names(mixed)[-1] == "values"
    async with httpx.AsyncClient(cookies={"opengpts_user_id": user("alice")}) as http:
        bad = await http.post(f"{URL}/threads/{thread['thread_id']}/runs/stream",
                              json={"assistant_id": "chatbot", "input": None, "stream_mode": "debug"})
        assert bad.status_code == 422 and "messages-tuple" in bad.json()["detail"], bad.text
        unknown = await http.post(f"{URL}/threads/{thread['thread_id']}/runs/wait", json={"assistant_id": "x"})
        assert unknown.status_code == 422 and "Invalid assistant: 'x'" in unknown.json()["detail"], unknown.text
        nowhere = await http.post(f"{URL}/threads/{uuid.uuid4()}/runs/stream", json={"assistant_id": "chatbot"})
        assert nowhere.status_code == 404 and nowhere.json() == {"detail": "Thread or assistant not found."}
    history = await alice.threads.get_history(thread["thread_id"], limit=3)
    assert len(history) == 3 and history[0]["checkpoint_id"] == state["checkpoint_id"] or len(history) == 3
    assert history[0]["parent_checkpoint"]["checkpoint_id"] == history[1]["checkpoint"]["checkpoint_id"]


@check
async def the_stream_tells_where_the_run_is_and_the_run_answers_at_once():
    async with httpx.AsyncClient(cookies={"opengpts_user_id": user("alice")}) as http:
        thread = (await http.post(URL + "/threads", json={})).json()
        path = f"{URL}/threads/{thread['thread_id']}/runs/stream"
        async with http.stream("POST", path, json={"assistant_id": "chatbot", "input": human("Hi")}) as response:
            body = b"".join([chunk async for chunk in response.aiter_raw()])
            location, content_location = response.headers["location"], response.headers["content-location"]
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert body.startswith(b"event: metadata\r\ndata: {\"run_id\":"), body[:80]
        assert b"event: end" not in body and body.endswith(b"\r\n\r\n")
        # Relative to the API's root, as the SDKs read them (they append them to their URL).
        assert location == f"/threads/{thread['thread_id']}/runs/{content_location.rsplit('/', 1)[1]}/stream", location
        assert location == content_location + "/stream", location
        run = (await http.get(URL + content_location)).json()
        assert run["status"] == "success", run
        # A stateless wait names its (ephemeral) thread too.
        waited = await http.post(URL + "/runs/wait", json={"assistant_id": "chatbot", "input": human("Hi")})
        head = waited.headers["content-location"]
        assert re.fullmatch(r"/threads/[0-9a-f-]{36}/runs/[0-9a-f-]{36}", head), head
        assert waited.headers["location"] == head + "/join", waited.headers


@check
async def a_resumable_stream_is_joined_and_replayed_from_any_event():
    alice = client("alice")
    thread = await alice.threads.create()
    live = [part async for part in alice.runs.stream(
        thread["thread_id"], "chatbot", input=human("Hello"), stream_mode=["values", "messages-tuple"],
        stream_resumable=True)]
    assert live[0].event == "metadata" and all(part.id for part in live), live[:2]
    ids = [part.id for part in live]
    assert len(set(ids)) == len(ids), ids
    run_id = live[0].data["run_id"]
    replayed = [part async for part in alice.runs.join_stream(thread["thread_id"], run_id, last_event_id="0")]
    assert replayed == live, (replayed[:3], live[:3])
    after = [part async for part in alice.runs.join_stream(thread["thread_id"], run_id, last_event_id=ids[2])]
    assert after == live[3:], (after[:2], live[3:5])
    values = [part async for part in alice.runs.join_stream(
        thread["thread_id"], run_id, last_event_id="0", stream_mode="values")]
    assert [part.event for part in values] == ["values", "values"], values
    assert [part async for part in alice.runs.join_stream(thread["thread_id"], run_id)] == []
    # A run joined while it goes: its events from then on, to its end.
    going = Going(alice, thread["thread_id"], stream_mode=["values", "messages-tuple"], stream_resumable=True)
    run_id = await going.run_id()
    joined = [part async for part in alice.runs.join_stream(thread["thread_id"], run_id)]
    live = await going.end()
    assert joined and joined[-1].event == "values", joined[-2:]
    assert "metadata" not in [part.event for part in joined]
    assert joined == live[-len(joined):] and len(joined) < len(live), (len(joined), len(live))
    whole = [part async for part in alice.runs.join_stream(thread["thread_id"], run_id, last_event_id="0")]
    assert whole == live
    final = await alice.threads.get_state(thread["thread_id"])
    assert whole[-1].data == final["values"], (whole[-1].data, final["values"])
    # Not resumable: a join while it goes gets its live events (from the process that runs it)...
    going = Going(alice, thread["thread_id"])
    run_id = await going.run_id()
    watched = [part async for part in alice.runs.join_stream(thread["thread_id"], run_id)]
    live = await going.end()
    assert watched and watched == live[-len(watched):] and watched[-1].event == "values", (watched[-2:], live[-2:])
    # ...and nothing was kept: a join after it ends with no events.
    plain = await alice.runs.create(thread["thread_id"], "chatbot", input=human("Hello"))
    await alice.runs.join(thread["thread_id"], plain["run_id"])
    assert [part async for part in alice.runs.join_stream(thread["thread_id"], plain["run_id"], last_event_id="0")] == []
    assert (await alice.runs.get(thread["thread_id"], plain["run_id"]))["status"] == "success"


@check
async def background_runs_wait_join_list_and_get():
    alice = client("alice")
    thread = await alice.threads.create()
    run = await alice.runs.create(thread["thread_id"], "chatbot", input=human("Hello"), metadata={"tag": "bg"})
    assert run["status"] in ("pending", "running") and run["metadata"]["tag"] == "bg", run
    joined = await alice.runs.join(thread["thread_id"], run["run_id"])
    assert types(joined["messages"]) == ["human", "ai"], joined
    done = await alice.runs.get(thread["thread_id"], run["run_id"])
    assert done["status"] == "success" and done["kwargs"]["stream_mode"] == ["values"], done
    waited = await alice.runs.wait(thread["thread_id"], "chatbot", input=human("Bye"))
    assert types(waited["messages"]) == ["human", "ai", "human", "ai"], waited
    listed = await alice.runs.list(thread["thread_id"])
    assert len(listed) == 2 and listed[1]["run_id"] == run["run_id"], listed
    await raises(NotFoundError, alice.runs.get(thread["thread_id"], str(uuid.uuid4())))
    await alice.runs.delete(thread["thread_id"], run["run_id"])
    await raises(NotFoundError, alice.runs.get(thread["thread_id"], run["run_id"]))
    assert len(await alice.runs.list(thread["thread_id"])) == 1
    too_late = await raises(UnprocessableEntityError, alice.runs.create(thread["thread_id"], "chatbot",
                                                                        input=human("Later"), after_seconds=601))
    assert "after_seconds must be" in too_late.response.text, too_late.response.text
    began = time.monotonic()
    later = await alice.runs.create(thread["thread_id"], "chatbot", input=human("Later"), after_seconds=1.5)
    assert later["status"] == "pending", later
    joined = await alice.runs.join(thread["thread_id"], later["run_id"])
    assert time.monotonic() - began >= 1.5, "the run waited for its start"
    assert joined["messages"][-2]["content"] == "Later" and joined["messages"][-1]["type"] == "ai", joined
    await alice.runs.delete(thread["thread_id"], later["run_id"])
    stateless = await alice.runs.wait(None, "chatbot", input=human("Hello"))
    assert types(stateless["messages"]) == ["human", "ai"], stateless
    parts = await events(alice.runs.stream(None, "chatbot", input=human("Hello"), stream_mode="updates"))
    assert names(parts) == ["metadata", "updates"], names(parts)


@check
async def busy_threads_follow_the_multitask_strategy():
    alice = client("alice")
    thread = await alice.threads.create()
    going = Going(alice, thread["thread_id"])
    first_id = await going.run_id()
    busy = await alice.threads.get(thread["thread_id"])
    assert busy["status"] == "busy", busy
    rejected = await raises(ConflictError, alice.runs.create(thread["thread_id"], "chatbot", input=human("No"),
                                                             multitask_strategy="reject"))
    assert "Thread is already running a task" in rejected.response.text
    second = await alice.runs.wait(thread["thread_id"], "chatbot", input=human("Now"),
                                   multitask_strategy="interrupt")
    assert types(second["messages"])[-2:] == ["human", "ai"], second
    await going.end()
    first = await alice.runs.get(thread["thread_id"], first_id)
    assert first["status"] == "interrupted", first
    going = Going(alice, thread["thread_id"])
    await going.run_id()
    queued = await alice.runs.wait(thread["thread_id"], "chatbot", input=human("Queued"))
    assert queued["messages"][-1]["type"] == "ai" and queued["messages"][-2]["content"] == "Queued", queued
    assert (await going.end())[-1].event == "values"
    # A rollback cancels the running run and deletes it.
    going = Going(alice, thread["thread_id"])
    doomed = await going.run_id()
    await alice.runs.wait(thread["thread_id"], "chatbot", input=human("Instead"), multitask_strategy="rollback")
    await going.end()
    await raises(NotFoundError, alice.runs.get(thread["thread_id"], doomed))
    assert doomed not in [run["run_id"] for run in await alice.runs.list(thread["thread_id"], limit=100)]


@check
async def a_run_is_cancelled_and_its_thread_freed():
    alice = client("alice")
    thread = await alice.threads.create()
    going = Going(alice, thread["thread_id"])
    run_id = await going.run_id()
    await alice.runs.cancel(thread["thread_id"], run_id, wait=True)
    cancelled = await alice.runs.get(thread["thread_id"], run_id)
    assert cancelled["status"] == "interrupted", cancelled
    assert (await alice.threads.get(thread["thread_id"]))["status"] == "idle"
    await going.end()


@check
async def an_agent_stops_before_its_tools_and_resumes():
    alice = client("alice")
    agent = await alice.assistants.create(graph_id="agent", config={"configurable": {
        "tools": [{"id": "wikipedia", "type": "wikipedia", "name": "Wikipedia", "config": {}}],
        "interrupt_before_action": True}})
    thread = await alice.threads.create()
    parts = await events(alice.runs.stream(thread["thread_id"], agent["assistant_id"],
                                           input=human("Look up the moon in wikipedia"),
                                           stream_mode=["values", "updates"]))
    updates = [data for event, data in parts if event == "updates"]
    assert list(updates[0]) == ["agent"] and updates[-1] == {"__interrupt__": []}, updates
    stopped = await alice.threads.get(thread["thread_id"])
    assert stopped["status"] == "interrupted", stopped
    assert stopped["metadata"]["graph_id"] == "agent", stopped
    state = await alice.threads.get_state(thread["thread_id"])
    assert state["next"] == ["action"] and state["tasks"][0]["name"] == "action", state
    waiting = await alice.threads.search(status="interrupted", limit=100)
    assert thread["thread_id"] in [t["thread_id"] for t in waiting]
    call_message = state["values"]["messages"][-1]
    call_message["tool_calls"][0]["args"] = {"query": "the sun"}
    await alice.threads.update_state(thread["thread_id"], {"messages": [call_message]}, as_node="agent")
    edited = await alice.threads.get_state(thread["thread_id"])
    assert edited["values"]["messages"][-1]["tool_calls"][0]["args"] == {"query": "the sun"}, edited
    assert edited["next"] == ["action"] and len(edited["values"]["messages"]) == 2
    resumed = await events(alice.runs.stream(thread["thread_id"], agent["assistant_id"], input=None,
                                             stream_mode="updates"))
    nodes = [list(data)[0] for event, data in resumed if event == "updates"]
    assert nodes == ["action", "agent"], nodes
    final = await alice.threads.get_state(thread["thread_id"])
    assert types(final["values"]["messages"]) == ["human", "ai", "tool", "ai"], final
    assert final["next"] == [] and (await alice.threads.get(thread["thread_id"]))["status"] == "idle"
    # The thread is an OpenGPTs thread too, with the same messages.
    async with httpx.AsyncClient(cookies={"opengpts_user_id": user("alice")}) as http:
        opengpts = (await http.get(f"{BASE}/threads/{thread['thread_id']}/state")).json()
        assert [m["id"] for m in opengpts["values"]] == [m["id"] for m in final["values"]["messages"]]


@check
async def an_agent_puts_its_calls_to_review_as_agent_chat_ui_resumes_them():
    alice = client("alice")
    agent = await alice.assistants.create(graph_id="agent", config={"configurable": {
        "tools": [{"id": "wikipedia", "type": "wikipedia", "name": "Wikipedia", "config": {}}], "tool_review": True}})
    thread = await alice.threads.create()
    ask = human("Look up the moon in wikipedia")
    parts = await events(alice.runs.stream(thread["thread_id"], agent["assistant_id"], input=ask,
                                           stream_mode=["values", "updates"]))
    interrupt = [data for event, data in parts if event == "updates"][-1]["__interrupt__"][0]
    request = interrupt["value"]["action_requests"][0]
    assert request["name"] == "wikipedia" and request["args"] == {"query": "Look up the moon in wikipedia"}, interrupt
    assert interrupt["value"]["review_configs"][0]["allowed_decisions"] == ["approve", "edit", "reject"]
    assert parts[-1][0] == "values" and parts[-1][1]["__interrupt__"] == [interrupt], parts[-1]
    waiting = await alice.threads.get(thread["thread_id"])
    assert waiting["status"] == "interrupted" and list(waiting["interrupts"].values())[0][0]["id"] == interrupt["id"]
    state = await alice.threads.get_state(thread["thread_id"])
    assert state["interrupts"][0]["value"] == interrupt["value"] and state["tasks"][0]["interrupts"] == state["interrupts"]
    # Edited, as agent-chat-ui sends it: input {}, the decisions as the command's resume.
    edit = {"decisions": [{"type": "edit", "edited_action": {"name": "wikipedia", "args": {"query": "the sun"}}}]}
    resumed = await events(alice.runs.stream(thread["thread_id"], agent["assistant_id"], input={},
                                             command={"resume": edit}, stream_mode="updates",
                                             checkpoint={"checkpoint_id": state["checkpoint_id"], "checkpoint_ns": ""}))
    assert [list(data)[0] for event, data in resumed if event == "updates"] == ["action", "agent"], resumed
    done = await alice.threads.get_state(thread["thread_id"])
    assert done["values"]["messages"][1]["tool_calls"][0]["args"] == {"query": "the sun"}, done
    assert types(done["values"]["messages"]) == ["human", "ai", "tool", "ai"] and done["interrupts"] == []
    # Rejected, with a reason: the tool does not run; the model reads why.
    await events(alice.runs.stream(thread["thread_id"], agent["assistant_id"], input=ask, stream_mode="updates"))
    rejected = await alice.runs.wait(thread["thread_id"], agent["assistant_id"],
                                     command={"resume": [{"type": "ignore", "args": None}]}, input=None)
    tool = rejected["messages"][-2]
    assert tool["type"] == "tool" and tool["status"] == "error" and "not to run" in tool["content"], tool
    nothing = await raises(httpx.HTTPStatusError, alice.runs.wait(
        thread["thread_id"], agent["assistant_id"], command={"resume": {"decisions": [{"type": "approve"}]}}))
    assert nothing.response.status_code == 409 and "nothing to resume" in nothing.response.text


@check
async def the_store_keeps_each_users_memories():
    alice, bob = client("alice"), client("bob")
    await alice.store.put_item(["users", "me", "prefs"], key="theme", value={"color": "dark", "size": 3})
    await alice.store.put_item(["users", "me", "notes"], key="n1", value={"text": "I like green tea"})
    await alice.store.put_item(["users", "me", "notes"], key="n2", value={"text": "The car is parked on level 3"},
                               index=["text"])
    await alice.store.put_item(["users", "me", "notes"], key="plain", value={"text": "tea"}, index=False)
    item = await alice.store.get_item(["users", "me", "prefs"], key="theme")
    assert list(item) == ["namespace", "key", "value", "created_at", "updated_at"], item
    assert item["value"] == {"color": "dark", "size": 3} and item["namespace"] == ["users", "me", "prefs"]
    await alice.store.put_item(["users", "me", "prefs"], key="theme", value={"color": "light", "size": 3})
    again = await alice.store.get_item(["users", "me", "prefs"], key="theme")
    assert again["created_at"] == item["created_at"] and again["value"]["color"] == "light", again
    assert await bob.store.get_item(["users", "me", "prefs"], key="theme") is None
    assert (await bob.store.search_items(["users"]))["items"] == []
    found = (await alice.store.search_items(["users", "me"], filter={"size": {"$gte": 3}}))["items"]
    assert [i["key"] for i in found] == ["theme"] and found[0]["score"] is None, found
    ranked = (await alice.store.search_items(["users", "me", "notes"], query="where is the car parked"))["items"]
    assert ranked[0]["key"] == "n2" and ranked[0]["score"] > ranked[1]["score"], ranked
    assert ranked[-1]["key"] == "plain" and ranked[-1]["score"] is None, ranked
    spaces = await alice.store.list_namespaces(prefix=["users"])
    assert spaces["namespaces"] == [["users", "me", "notes"], ["users", "me", "prefs"]], spaces
    assert (await alice.store.list_namespaces(prefix=["users"], max_depth=2))["namespaces"] == [["users", "me"]]
    await alice.store.put_item(["users", "me", "tmp"], key="soon", value={"x": 1}, ttl=0.001)
    await asyncio.sleep(0.2)
    assert await alice.store.get_item(["users", "me", "tmp"], key="soon") is None
    await alice.store.delete_item(["users", "me", "prefs"], key="theme")
    assert await alice.store.get_item(["users", "me", "prefs"], key="theme") is None
    async with httpx.AsyncClient(cookies={"opengpts_user_id": user("alice")}) as http:
        bad = await http.put(URL + "/store/items", json={"namespace": ["a.b"], "key": "k", "value": {}})
        assert bad.status_code == 422 and "periods" in bad.json()["detail"], bad.text


@check
async def an_opengpts_thread_runs_through_the_langgraph_api():
    async with httpx.AsyncClient(cookies={"opengpts_user_id": user("carol")}) as http:
        bot = (await http.post(f"{BASE}/assistants", json={
            "name": "Bot", "public": False,
            "config": {"configurable": {"type": "chatbot", "type==chatbot/system_message": "Be kind."}}}))
        bot = bot.json()
        thread = (await http.post(f"{BASE}/threads", json={"name": "t", "assistant_id": bot["assistant_id"]})).json()
        await http.post(f"{BASE}/threads/{thread['thread_id']}/state",
                        json={"values": [{"type": "human", "content": "Hello from OpenGPTs"}]})
    carol = client("carol")
    seen = await carol.threads.get(thread["thread_id"])
    assert types(seen["values"]["messages"]) == ["human"], seen
    found = await carol.assistants.get(bot["assistant_id"])
    assert found["graph_id"] == "chatbot", found
    waited = await carol.runs.wait(thread["thread_id"], bot["assistant_id"], input=human("And hello again"))
    assert types(waited["messages"]) == ["human", "human", "ai"], waited


@check
async def a_failed_run_says_so():
    alice = client("alice")
    agent = await alice.assistants.create(graph_id="agent", config={"configurable": {
        "tools": [{"id": "wikipedia", "type": "wikipedia", "name": "Wikipedia", "config": {}}]}})
    thread = await alice.threads.create()
    # One step allowed, and the agent needs two: the run fails.
    parts = await events(alice.runs.stream(thread["thread_id"], agent["assistant_id"],
                                           input=human("Look up the moon in wikipedia"),
                                           config={"recursion_limit": 1}))
    assert parts[-1][0] == "error" and set(parts[-1][1]) == {"error", "message"}, parts[-1]
    assert "recursion" in parts[-1][1]["message"].lower(), parts[-1]
    failed = await alice.threads.get(thread["thread_id"])
    assert failed["status"] == "error" and failed["error"] is not None, failed
    run = (await alice.runs.list(thread["thread_id"]))[0]
    assert run["status"] == "error", run
    # wait answers 200 with the error, which the SDK raises.
    waited = await raises(Exception, alice.runs.wait(thread["thread_id"], agent["assistant_id"],
                                                     input=human("wikipedia again"), config={"recursion_limit": 1}))
    assert str(waited).startswith("RunError: ") and "recursion limit" in str(waited), waited
    async with httpx.AsyncClient(cookies={"opengpts_user_id": user("alice")}) as http:
        bad = await http.post(f"{URL}/threads/{thread['thread_id']}/runs/wait", json={
            "assistant_id": "chatbot", "input": human("hi"),
            "config": {"configurable": {"llm_type": "No such model"}}})
        assert bad.status_code == 422, bad.text


@check
async def crons_are_made_found_changed_and_deleted():
    dave = client("dave")
    thread = await dave.threads.create()
    cron = await dave.crons.create_for_thread(thread["thread_id"], "chatbot", schedule="0 9 * * *",
                                              input=human("Morning"), metadata={"kind": "daily"})
    assert cron["thread_id"] == thread["thread_id"] and cron["schedule"] == "0 9 * * *", cron
    assert cron["next_run_date"].endswith("09:00:00.000000+00:00") and cron["enabled"] is True, cron
    weekly = await dave.crons.create("chatbot", schedule="30 7 * * MON", input=human("Weekly"),
                                     on_run_completed="keep")
    assert weekly["thread_id"] is None and weekly["on_run_completed"] == "keep", weekly
    found = await dave.crons.search(thread_id=thread["thread_id"])
    assert [c["cron_id"] for c in found] == [cron["cron_id"]], found
    assert await dave.crons.count() == 2
    assert await dave.crons.count(thread_id=thread["thread_id"]) == 1
    paused = await dave.crons.update(cron["cron_id"], enabled=False)
    assert paused["enabled"] is False and paused["next_run_date"] is None, paused
    assert [c["cron_id"] for c in await dave.crons.search(enabled=True)] == [weekly["cron_id"]]
    await raises(UnprocessableEntityError, dave.crons.create("chatbot", schedule="* * * * *"))
    await raises(UnprocessableEntityError, dave.crons.create("chatbot", schedule="0 9 1 * MON"))
    await raises(NotFoundError, client("erin").crons.delete(cron["cron_id"]))
    assert await client("erin").crons.search() == []
    await dave.crons.delete(cron["cron_id"])
    await dave.crons.delete(weekly["cron_id"])
    assert await dave.crons.count() == 0


@check
async def regenerate_and_edit_fork_the_thread_and_keep_every_branch():
    # agent-chat-ui's "regenerate" runs with no input from the state before an answer; its "edit"
    # sends a new message from the state before the old one. Both leave the old branch in the
    # history, parted from the new one at their common parent, as the UI's branch switcher needs.
    erin = client("erin")
    thread_id = (await erin.threads.create())["thread_id"]
    await erin.runs.wait(thread_id, "chatbot", input=human("first question"))
    await erin.runs.wait(thread_id, "chatbot", input=human("second question"))
    history = await erin.threads.get_history(thread_id, limit=10)
    assert [len(state["values"]["messages"]) for state in history] == [4, 3, 2, 1], history
    old_answer = history[0]["values"]["messages"][3]

    await erin.runs.wait(thread_id, "chatbot", checkpoint=history[0]["parent_checkpoint"])
    now = (await erin.threads.get_state(thread_id))["values"]["messages"]
    assert types(now) == ["human", "ai", "human", "ai"] and now[3]["id"] != old_answer["id"], now
    history = await erin.threads.get_history(thread_id, limit=10)
    assert [len(state["values"]["messages"]) for state in history] == [4, 4, 3, 2, 1], history
    assert history[1]["values"]["messages"][3] == old_answer, history[1]
    fork_point = history[2]["checkpoint"]["checkpoint_id"]
    assert history[0]["parent_checkpoint"]["checkpoint_id"] == history[1]["parent_checkpoint"]["checkpoint_id"] == fork_point
    old_state = await erin.threads.get_state(thread_id, checkpoint_id=history[1]["checkpoint"]["checkpoint_id"])
    assert old_state["values"]["messages"][3] == old_answer and old_state["next"] == [], old_state
    # A page of the history goes on after the state it names.
    rest = await erin.threads.get_history(thread_id, limit=2, before=history[1]["checkpoint"])
    assert [state["checkpoint"] for state in rest] == [history[2]["checkpoint"], history[3]["checkpoint"]], rest

    # Editing the second question: a new message from the state before it.
    before_question = history[3]["checkpoint"]
    await erin.runs.wait(thread_id, "chatbot", input=human("second question, edited"), checkpoint=before_question)
    now = (await erin.threads.get_state(thread_id))["values"]["messages"]
    assert [m["content"] for m in now[:3]] == ["first question", now[1]["content"], "second question, edited"], now
    history = await erin.threads.get_history(thread_id, limit=20)
    children = [s for s in history if (s["parent_checkpoint"] or {}).get("checkpoint_id") == before_question["checkpoint_id"]]
    assert [c["values"]["messages"][2]["content"] for c in children] == ["second question, edited", "second question"]
    assert len(history) == 7, [len(state["values"]["messages"]) for state in history]

    # Going on from the first answer, on the branch left twice: it becomes the thread again.
    first_branch = next(s for s in history if s["values"]["messages"][-1]["id"] == old_answer["id"])
    await erin.runs.wait(thread_id, "chatbot", input=human("third question"), checkpoint=first_branch["checkpoint"])
    now = (await erin.threads.get_state(thread_id))["values"]["messages"]
    assert now[:4] == first_branch["values"]["messages"] and types(now) == ["human", "ai"] * 3, now
    assert len(await erin.threads.get_history(thread_id, limit=20)) == 9

    # A checkpoint the thread never had is not found, and nothing changes.
    unknown = {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": str(uuid.uuid4())}
    missing = await raises(httpx.HTTPStatusError, erin.runs.wait(thread_id, "chatbot", input=human("lost"), checkpoint=unknown))
    assert missing.response.status_code == 404 and unknown["checkpoint_id"] in missing.response.text, missing.response.text
    assert (await erin.threads.get_state(thread_id))["values"]["messages"] == now
    # With no input on a thread that ends in an answer, a run has nothing left to do.
    await erin.runs.wait(thread_id, "chatbot", input=None)
    assert (await erin.threads.get_state(thread_id))["values"]["messages"] == now

    # A copy keeps every branch: its history shows the same states.
    copied = await erin.threads.copy(thread_id)
    original = await erin.threads.get_history(thread_id, limit=20)
    copy_history = await erin.threads.get_history(copied["thread_id"], limit=20)
    assert [s["values"]["messages"] for s in copy_history] == [s["values"]["messages"] for s in original]


if __name__ == "__main__":
    run_checks()
