"""Data that ends, driven by langgraph-sdk as a user's code would: a thread's `ttl` (delete and
keep_latest) carried out by the server's sweep, prune, lean searches (`select`, `extract`,
`sort_by`), store items whose reads refresh their `ttl`, and `DELETE /me/data`.

Usage: python lifecycle_suite.py <base url of the OpenGPTs API>
The server sweeps expired threads every second (TTL_SWEEP_SECONDS=1) and runs the offline model.
Each check prints its name; the first failure ends the suite with a non-zero exit.
"""

import asyncio
import sys
import time
import uuid

import httpx
from langgraph_sdk.errors import NotFoundError, UnprocessableEntityError

from harness import check, cookie, raises, run_checks
from harness import client as client_at

BASE = sys.argv[1].rstrip("/")
URL = BASE + "/langgraph"
# Far longer than a sweep takes on a busy machine, far shorter than a test run.
SWEEP_WAIT_SECONDS = 30


def client(name):
    return client_at(URL, name)


def human(text):
    return {"messages": [{"role": "user", "content": text}]}


async def gone(sdk, thread_id):
    """Waits for the sweep to delete a thread; False if it is still there after the wait."""
    deadline = time.monotonic() + SWEEP_WAIT_SECONDS
    while time.monotonic() < deadline:
        try:
            await sdk.threads.get(thread_id)
        except NotFoundError:
            return True
        await asyncio.sleep(0.2)
    return False


@check
async def a_thread_with_a_ttl_shows_it_and_is_swept_once_expired():
    ann = client("ann")
    thread = await ann.threads.create(ttl={"ttl": 0.02, "strategy": "delete"})
    assert "ttl" not in thread, "a thread shows its ttl only when asked"
    await ann.runs.wait(thread["thread_id"], "chatbot", input=human("hello"))
    shown = await ann.threads.get(thread["thread_id"], include=["ttl"])
    assert shown["ttl"]["strategy"] == "delete" and shown["ttl"]["ttl_minutes"] == 0.02, shown
    assert shown["ttl"]["expires_at"] > shown["created_at"], shown
    forever = await ann.threads.create()
    assert (await ann.threads.get(forever["thread_id"], include=["ttl"]))["ttl"] is None
    # Minutes alone mean `delete`, as the SDK sends them.
    also = await ann.threads.create(ttl=0.02)
    assert (await ann.threads.get(also["thread_id"], include=["ttl"]))["ttl"]["strategy"] == "delete"

    assert await gone(ann, thread["thread_id"]), "the sweep deletes the expired thread"
    assert await gone(ann, also["thread_id"])
    # Gone with its runs; a clean 404 wherever a client still holds its id.
    for call in (ann.threads.get_state(thread["thread_id"]), ann.runs.list(thread["thread_id"])):
        missing = await raises(httpx.HTTPStatusError, call)
        assert missing.response.status_code == 404, missing.response.text
    assert (await ann.threads.get(forever["thread_id"]))["thread_id"] == forever["thread_id"]


@check
async def a_bad_ttl_is_refused():
    ann = client("ann")
    for ttl in ({"ttl": -1}, {"ttl": "soon"}, {"ttl": 5, "strategy": "archive"}):
        refused = await raises(UnprocessableEntityError, ann.threads.create(ttl=ttl))
        assert "ttl" in refused.response.text or "strategy" in refused.response.text, refused.response.text
    refused = await raises(UnprocessableEntityError, ann.threads.get(str(uuid.uuid4()), include=["everything"]))
    assert "include" in refused.response.text


@check
async def keep_latest_keeps_the_state_and_drops_the_other_branches():
    bob = client("bob")
    thread_id = (await bob.threads.create())["thread_id"]
    await bob.runs.wait(thread_id, "chatbot", input=human("first question"))
    first = (await bob.threads.get_history(thread_id, limit=20))
    # Editing the question leaves a branch behind: the history shows both.
    await bob.runs.wait(thread_id, "chatbot", input=human("edited question"), checkpoint=first[-1]["checkpoint"])
    state = (await bob.threads.get_state(thread_id))["values"]
    states = len(state["messages"])
    branched = len(await bob.threads.get_history(thread_id, limit=20))
    assert branched > states, (branched, states)
    await bob.threads.update(thread_id, metadata={}, ttl={"ttl": 0.02, "strategy": "keep_latest"})
    before = (await bob.threads.get(thread_id, include=["ttl"]))["ttl"]["expires_at"]
    deadline = time.monotonic() + SWEEP_WAIT_SECONDS
    while (await bob.threads.get(thread_id, include=["ttl"]))["ttl"]["expires_at"] == before:
        assert time.monotonic() < deadline, "the sweep prunes the thread and starts its lifetime again"
        await asyncio.sleep(0.2)
    assert (await bob.threads.get_state(thread_id))["values"] == state, "the latest state stays"
    assert len(await bob.threads.get_history(thread_id, limit=20)) == states, "the branch left behind is gone"
    ttl = (await bob.threads.get(thread_id, include=["ttl"]))["ttl"]
    assert ttl["strategy"] == "keep_latest" and ttl["ttl_minutes"] == 0.02, ttl


@check
async def prune_takes_the_callers_threads_and_no_one_elses():
    carol, dave = client("carol"), client("dave")
    mine = [(await carol.threads.create())["thread_id"] for _ in range(2)]
    theirs = (await dave.threads.create())["thread_id"]
    await carol.runs.wait(mine[0], "chatbot", input=human("hi"))
    assert await carol.threads.prune(mine + [theirs]) == {"pruned_count": 2}
    for thread_id in mine:
        await raises(NotFoundError, carol.threads.get(thread_id))
    assert (await dave.threads.get(theirs))["thread_id"] == theirs, "another user's thread is not touched"
    assert await carol.threads.prune([]) == {"pruned_count": 0}
    kept = (await carol.threads.create())["thread_id"]
    assert await carol.threads.prune([kept], strategy="keep_latest") == {"pruned_count": 1}
    assert (await carol.threads.get(kept))["thread_id"] == kept
    for body in ({"thread_ids": [kept], "strategy": "archive"}, {"thread_ids": ["not-a-uuid"]}, {},
                 {"thread_ids": [str(uuid.uuid4()) for _ in range(101)]}):
        refused = await raises(httpx.HTTPStatusError, carol.http.post("/threads/prune", json=body))
        assert refused.response.status_code == 422 and refused.response.json()["detail"], refused.response.text


@check
async def searches_list_lean_sorted_pages():
    erin = client("erin")
    made = []
    for title in ("b", "a", "c"):
        thread = await erin.threads.create(metadata={"title": title})
        await erin.runs.wait(thread["thread_id"], "chatbot", input=human(f"question {title}"))
        made.append(thread["thread_id"])
    found = await erin.threads.search(select=["thread_id", "status"], extract={"last": "values.messages[-1].type",
                                      "first": "values.messages[0].content", "title": "metadata.title"},
                                      sort_by="created_at", sort_order="asc", limit=10)
    assert [t["thread_id"] for t in found] == made, found
    assert all(set(t) == {"thread_id", "status", "extracted"} for t in found), found
    assert [t["extracted"] for t in found] == [
        {"last": "ai", "first": f"question {title}", "title": title} for title in ("b", "a", "c")], found
    newest = await erin.threads.search(sort_by="created_at", sort_order="desc", limit=2, select=["thread_id"])
    assert newest == [{"thread_id": made[2]}, {"thread_id": made[1]}], newest
    for bad in ({"select": ["secrets"]}, {"sort_by": "title"}, {"extract": {"status": "values"}},
                {"extract": {"x": "nothing.here"}}, {"extract": {f"k{i}": "values" for i in range(11)}}):
        refused = await raises(httpx.HTTPStatusError, erin.http.post("/threads/search", json=bad))
        assert refused.response.status_code == 422, (bad, refused.response.text)

    for name in ("zeta", "alpha"):
        await erin.assistants.create("chatbot", name=name, config={"configurable": {"type": "chatbot"}})
    listed = await erin.assistants.search(select=["name"], sort_by="name", sort_order="asc", limit=50)
    names = [a["name"] for a in listed]
    assert names == sorted(names) and {"alpha", "zeta"} <= set(names), listed
    assert all(set(a) == {"name"} for a in listed), listed


@check
async def a_store_items_reads_start_its_ttl_again():
    frank = client("frank")
    namespace = ["notes"]
    # Six seconds to live; each step waits four, so only a refreshed item outlives the next.
    await frank.store.put_item(namespace, "kept", {"v": 1}, ttl=0.1)
    await frank.store.put_item(namespace, "left", {"v": 2}, ttl=0.1)
    await asyncio.sleep(4)
    assert (await frank.store.get_item(namespace, "kept", refresh_ttl=True))["value"] == {"v": 1}
    found = await frank.store.search_items(namespace, refresh_ttl=False)
    assert {item["key"] for item in found["items"]} == {"kept", "left"}, found
    await asyncio.sleep(4)
    assert (await frank.store.get_item(namespace, "kept", refresh_ttl=False))["value"] == {"v": 1}
    assert await frank.store.get_item(namespace, "left") is None, "an item not refreshed expired"
    # A search refreshes what it returns.
    assert [item["key"] for item in (await frank.store.search_items(namespace))["items"]] == ["kept"]
    await asyncio.sleep(4)
    assert (await frank.store.get_item(namespace, "kept", refresh_ttl=False))["value"] == {"v": 1}
    await asyncio.sleep(4)
    assert await frank.store.get_item(namespace, "kept") is None


@check
async def delete_my_data_removes_everything_of_the_caller_alone():
    grace, henry = client("grace"), client("henry")
    made = []
    for sdk in (grace, henry):
        assistant = await sdk.assistants.create("chatbot", config={"configurable": {"type": "chatbot"}})
        made.append(assistant["assistant_id"])
        thread = await sdk.threads.create()
        await sdk.runs.wait(thread["thread_id"], assistant["assistant_id"], input=human("hi"))
        await sdk.store.put_item(["prefs"], "color", {"v": "blue"})
        await sdk.crons.create_for_thread(thread["thread_id"], assistant["assistant_id"], schedule="0 9 * * *")
    async with httpx.AsyncClient(base_url=BASE, headers=cookie("grace")) as http:
        answer = await http.delete("/me/data")
        assert answer.status_code == 200, answer.text
        removed = answer.json()["removed"]
        assert removed == {"assistants": 1, "threads": 1, "files": 0, "memories": 1, "crons": 1, "feedback": 0}, removed
        again = await http.delete("/me/data")
        assert again.json()["removed"] == dict.fromkeys(removed, 0), again.text
    assert await grace.threads.search() == []
    await raises(NotFoundError, grace.assistants.get(made[0]))
    assert (await henry.assistants.get(made[1]))["assistant_id"] == made[1]
    assert await grace.store.get_item(["prefs"], "color") is None
    assert await grace.crons.search() == []
    assert len(await henry.threads.search()) == 1, "another user's data stays"
    assert (await henry.store.get_item(["prefs"], "color"))["value"] == {"v": "blue"}
    assert len(await henry.crons.search()) == 1


if __name__ == "__main__":
    run_checks()
