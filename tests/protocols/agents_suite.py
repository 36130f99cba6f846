"""Our assistants as MCP tools and as A2A agents, driven by the official SDKs as a user's code
drives them: the MCP Python SDK's client at `/mcp`, and `a2a-sdk`'s client at `/a2a/{id}`
(A2A 1.0), with raw HTTP for the 0.3 method names and the refusals the clients hide.

Usage: python agents_suite.py <base url of the API>
The server runs the offline model. Each check prints its name; the first failure ends the suite.
"""

import asyncio
import os
import sys
import uuid

import httpx
from a2a.client import ClientConfig, ClientFactory
from a2a.types import a2a_pb2
from google.protobuf import json_format
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "langgraph"))
from harness import CHECKS, check, cookie, user  # noqa: E402 (the shared harness is found first)

BASE = sys.argv[1].rstrip("/")


async def assistant(name, who, config=None):
    config = config or {"configurable": {"type": "chatbot", "type==chatbot/llm_type": "Offline"}}
    async with httpx.AsyncClient(base_url=BASE, headers=cookie(who)) as http:
        answer = await http.post("/assistants", json={"name": name, "config": config, "public": False})
        answer.raise_for_status()
        return answer.json()["assistant_id"]


def mcp_client(who, path="/mcp"):
    transport = streamable_http_client(BASE + path, http_client=create_mcp_http_client(headers=cookie(who)))
    return Client(transport)


@check
async def mcp_lists_the_callers_assistants_and_calls_one():
    await assistant("Greeter bot", "mcp")
    await assistant("Other user's bot", "mcp-other")
    async with mcp_client("mcp") as client:
        tools = (await client.list_tools()).tools
        names = [tool.name for tool in tools]
        assert names == ["Greeter_bot"], names
        assert tools[0].title == "Greeter bot"
        assert tools[0].input_schema["required"] == ["message"], tools[0].input_schema
        result = await client.call_tool("Greeter_bot", {"message": "Hello, my name is Ada"})
        assert not result.is_error, result
        text = result.content[0].text
        assert "Ada" in text, text
        try:
            await client.call_tool("Other_users_bot", {"message": "hi"})
            raise AssertionError("another user's assistant was called")
        except MCPError as refused:
            assert refused.code == -32602 and "Unknown tool" in str(refused), refused


@check
async def mcp_answers_at_the_langgraph_root_too_and_refuses_what_is_not_a_call():
    await assistant("Root bot", "mcp-root")
    async with mcp_client("mcp-root", "/langgraph/mcp") as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
        assert names == ["Root_bot"], names
    async with httpx.AsyncClient(base_url=BASE, headers=cookie("mcp-root")) as http:
        accept = {"Accept": "application/json, text/event-stream"}
        bad = await http.post("/mcp", content=b"{not json", headers=accept)
        assert bad.status_code == 400 and "Invalid JSON" in bad.json()["detail"], bad.text
        no_accept = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers={"Accept": "text/html"})
        assert no_accept.status_code == 400 and "Accept" in no_accept.json()["detail"], no_accept.text
        notification = await http.post("/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=accept)
        assert notification.status_code == 202, notification.text
        missing = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                                                "params": {"name": "Root_bot", "arguments": {}}}, headers=accept)
        assert missing.json()["error"]["code"] == -32602 and "message" in missing.json()["error"]["message"], missing.text
        unknown = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 8, "method": "resources/list"}, headers=accept)
        assert unknown.json() == {"jsonrpc": "2.0", "id": 8, "error": {"code": -32601, "message": "Method not found: resources/list"}}


async def a2a_client(who, assistant_id, streaming):
    http = httpx.AsyncClient(headers=cookie(who), timeout=30)
    factory = ClientFactory(ClientConfig(httpx_client=http, streaming=streaming))
    return await factory.create_from_url(f"{BASE}/a2a/{assistant_id}"), http


def message(text, context_id=None):
    proto = a2a_pb2.Message(message_id=str(uuid.uuid4()), role=a2a_pb2.ROLE_USER, parts=[a2a_pb2.Part(text=text)])
    if context_id:
        proto.context_id = context_id
    return a2a_pb2.SendMessageRequest(message=proto)


async def collect(client, request):
    return [event async for event in client.send_message(request)]


@check
async def a2a_sends_reads_and_continues_a_conversation_on_its_thread():
    assistant_id = await assistant("A2A bot", "a2a")
    client, http = await a2a_client("a2a", assistant_id, streaming=False)
    try:
        card = await http.get(f"{BASE}/a2a/{assistant_id}/.well-known/agent-card.json")
        assert card.json()["supportedInterfaces"][0]["url"] == f"{BASE}/a2a/{assistant_id}", card.text
        first = await collect(client, message("Hello, my name is Grace"))
        task = first[-1].task
        assert task.status.state == a2a_pb2.TASK_STATE_COMPLETED, task
        answer = task.artifacts[0].parts[0].text
        assert "Grace" in answer, answer
        context_id = task.context_id
        second = (await collect(client, message("What is my name?", context_id)))[-1].task
        assert second.context_id == context_id
        assert "Grace" in second.artifacts[0].parts[0].text, second
        assert [m.role for m in second.history] == [a2a_pb2.ROLE_USER, a2a_pb2.ROLE_AGENT] * 2, second.history
        read = await client.get_task(a2a_pb2.GetTaskRequest(id=task.id))
        assert read.id == task.id and read.status.state == a2a_pb2.TASK_STATE_COMPLETED
        assert len(read.history) == 2, "the first task's history ends with its own turn"
        # The conversation is a thread like any other: the OpenGPTs API shows it.
        state = await http.get(f"{BASE}/threads/{context_id}/state")
        assert [m["type"] for m in state.json()["values"]] == ["human", "ai", "human", "ai"], state.text
    finally:
        await client.close()
        await http.aclose()


@check
async def a2a_streams_the_answer_as_it_is_written():
    assistant_id = await assistant("A2A streamer", "a2a-stream")
    client, http = await a2a_client("a2a-stream", assistant_id, streaming=True)
    try:
        events = await collect(client, message("Hello, my name is Linus"))
        kinds = [event.WhichOneof("payload") for event in events]
        assert kinds[0] == "task" and kinds[-2:] == ["artifact_update", "status_update"], kinds
        written = "".join(e.status_update.status.message.parts[0].text for e in events
                          if e.WhichOneof("payload") == "status_update" and e.status_update.status.message.parts)
        answer = events[-2].artifact_update.artifact.parts[0].text
        assert written == answer and "Linus" in answer, (written, answer)
        assert kinds.count("status_update") > 3, "the answer arrives in pieces"
        assert events[-1].status_update.status.state == a2a_pb2.TASK_STATE_COMPLETED
    finally:
        await client.close()
        await http.aclose()


@check
async def a2a_speaks_the_0_3_method_names_and_refuses_others_tasks():
    assistant_id = await assistant("Legacy bot", "a2a-legacy")
    url = f"/a2a/{assistant_id}"
    async with httpx.AsyncClient(base_url=BASE, headers=cookie("a2a-legacy"), timeout=30) as http:
        send = {"jsonrpc": "2.0", "id": "1", "method": "message/send", "params": {"message": {
            "kind": "message", "role": "user", "messageId": "m1", "parts": [{"kind": "text", "text": "Hello"}]}}}
        task = (await http.post(url, json=send, headers={"Accept": "application/json"})).json()["result"]
        assert task["kind"] == "task" and task["status"]["state"] == "completed", task
        assert task["artifacts"][0]["parts"][0]["kind"] == "text"
        assert task["history"][0]["role"] == "user" and task["history"][1]["role"] == "agent"
        got = (await http.post(url, json={"jsonrpc": "2.0", "id": 2, "method": "tasks/get", "params": {"id": task["id"]}},
                               headers={"Accept": "application/json"})).json()
        assert got["result"]["id"] == task["id"], got
        stream = dict(send, method="message/stream")
        async with http.stream("POST", url, json=stream, headers={"Accept": "text/event-stream"}) as response:
            body = "".join([chunk async for chunk in response.aiter_text()])
        assert '"kind":"status-update"' in body and '"final":true' in body and '"state":"completed"' in body, body
        cancel = (await http.post(url, json={"jsonrpc": "2.0", "id": 3, "method": "tasks/cancel", "params": {"id": task["id"]}},
                                  headers={"Accept": "application/json"})).json()
        assert cancel["error"]["code"] == -32002, cancel
        unknown = (await http.post(url, json={"jsonrpc": "2.0", "id": 4, "method": "tasks/resubscribe"},
                                   headers={"Accept": "application/json"})).json()
        assert unknown["error"]["code"] == -32601, unknown
    async with httpx.AsyncClient(base_url=BASE, headers=cookie("a2a-intruder"), timeout=30) as http:
        theirs = (await http.post(url, json={"jsonrpc": "2.0", "id": 5, "method": "tasks/get", "params": {"id": task["id"]}},
                                  headers={"Accept": "application/json"})).json()
        assert theirs["error"]["code"] == -32602, theirs
        own = await assistant("Intruder bot", "a2a-intruder")
        other = (await http.post(f"/a2a/{own}", json={"jsonrpc": "2.0", "id": 6, "method": "tasks/get",
                                                      "params": {"id": task["id"]}}, headers={"Accept": "application/json"})).json()
        assert other["error"]["code"] == -32001, other
        hijack = dict(send, params={"message": dict(send["params"]["message"], contextId=task["contextId"])})
        taken = (await http.post(f"/a2a/{own}", json=hijack, headers={"Accept": "application/json"})).json()
        assert "error" in taken, f"another user's context was continued: {taken}"
    async with httpx.AsyncClient(base_url=BASE, headers=cookie("a2a-legacy")) as http:
        state = await http.get(f"/threads/{task['contextId']}/state")
        assert len(state.json()["values"]) == 2, state.text


async def main():
    for function in CHECKS:
        await asyncio.wait_for(function(), 60)
        print("ok", function.__name__)
    print(f"{len(CHECKS)} checks passed")


asyncio.run(main())
