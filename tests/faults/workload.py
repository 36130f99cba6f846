"""A workload under injected faults, and the checks of what it left behind (Jepsen-style: what
was acknowledged against what was stored).

Runs streamed (`/runs/stream`) and background (`/runs`) runs of a chatbot and of an agent with a
tool on many threads at once, through the OpenGPTs API, while the fault injectors
(`tests/faults/proxy.py`) break a share of the server's requests to its dependencies. Then the
faults stop, and it checks:
- every input acknowledged (a 2xx, or a stream that sent `metadata`) is stored exactly once, and
  no other input more than once; no message twice; every answer belongs to the input before it,
  and no run's messages are interleaved with another's;
- every failed request got a clear error: a status, a `detail` naming the dependency, and
  `retry-after` on 429 and 503; every failed stream ended with an `error` event;
- once the faults stop, every thread takes a new run within the lease's expiry, and no run is
  left `pending` or `running`;
- the server's memory after the load, next to its memory before; and after a second load as
  large, without faults, next to its memory after the first: what the first load left (caches,
  pooled connections, the allocator's free lists) is there to be used again, while a leak grows
  with every run.

The chatbots answer with the offline model, or (`--model openai`) through OpenAI's API, which the
server reaches at its OPENAI_BASE_URL (a stand-in behind the injector); the agents offline. With
`--starve-every`, the server itself is stopped (SIGSTOP) for `--starve-for` seconds each time it
has run that long, while the load runs: longer than the lease, its runs' threads become free to
take.

Usage: workload.py --server URL --faults URL [--faults URL ...] --pid PID [--runs 100]
       [--threads 20] [--concurrency 16] [--rate 0.2] [--lease-seconds 5] [--label TEXT]
       [--max-memory-growth-mib 64] [--max-leak-mib 4] [--server-log FILE] [--max-heap-leak-kib 512]
       [--starve-every SECONDS --starve-for SECONDS]
Prints its figures, one line of JSON last; exits 1 if a check fails.
"""

import argparse
import asyncio
import json
import os
import random
import re
import signal
import sys
import time
import uuid

import httpx

# A user per thread: the per-user limits on streams and runs are not what is tried here.
USERS = "chaos-" + uuid.uuid4().hex[:8]


def cookie(thread_number):
    return {"Cookie": f"opengpts_user_id={USERS}-{thread_number}"}
# What each failed request's detail or error event must name: the dependency that failed.
DEPENDENCIES = re.compile(r"DynamoDB|dynamodb|SQLite|sqlite|data store|model|provider|openai|worker|tool",
                          re.IGNORECASE)


# What a run says when it lost its thread to another run (its lease ran out) and its answer was refused.
THREAD_TAKEN = "lost its thread"
BOTS = {
    "chatbot": {"type": "chatbot", "type==chatbot/llm_type": "Offline",
                "type==chatbot/system_message": "You are a helpful assistant."},
    "agent": {"type": "agent", "type==agent/agent_type": "Offline",
              "type==agent/tools": [{"id": "wikipedia", "type": "wikipedia", "name": "Wikipedia",
                                     "description": "Searches Wikipedia.", "config": {}}],
              "type==agent/system_message": "You are a helpful assistant."},
}


async def heap_kib(log):
    """The server's own heap in use as it last logged it (`RUNTIME_STATS_SECONDS`), after the
    next line: all of it but SQLite's, whose page cache grows with the database to its size."""
    await asyncio.sleep(1.5)
    with open(log) as lines:
        found = re.findall(r"heap_kib=(\d+) sqlite_kib=(\d+)", lines.read())
    return int(found[-1][0]) - int(found[-1][1]) if found else None


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Tally:
    def __init__(self):
        self.started = 0
        self.acknowledged = set()   # input texts the server took
        self.sent = set()           # every input text sent
        self.failures = []          # (what, status, detail, headers ok)
        self.unclear = []           # failures without a clear error
        self.latencies = []
        self.background = []        # (thread, input text, run id) of background runs taken
        self.taken = []             # streamed inputs whose answer was refused: another run took the thread

    def merged(self, other):
        """One tally of two loads."""
        both = Tally()
        both.started = self.started + other.started
        both.acknowledged = self.acknowledged | other.acknowledged
        both.sent = self.sent | other.sent
        for name in ("failures", "unclear", "latencies", "background", "taken"):
            setattr(both, name, getattr(self, name) + getattr(other, name))
        return both


async def set_rate(client, faults, rate):
    for url in faults:
        (await client.post(url + "/__faults", json={"rate": rate})).raise_for_status()


async def fault_report(client, faults):
    injected = {}
    requests = 0
    for url in faults:
        report = (await client.get(url + "/__faults")).json()
        requests += report["requests"]
        for kind, count in report["injected"].items():
            injected[kind] = injected.get(kind, 0) + count
    return requests, injected


def clear_http_error(response):
    """Whether a failed response says what failed, as the API promises."""
    try:
        detail = response.json().get("detail")
    except ValueError:
        return False
    if not detail:
        return False
    if response.status_code in (429, 503) and "retry-after" not in response.headers:
        return False
    if response.status_code >= 500 and not DEPENDENCIES.search(json.dumps(detail)):
        return False
    return True


def clear_stream_error(data):
    """Whether a stream's `error` event says what failed: a status and a message, which names
    the dependency when the status says one failed (5xx)."""
    try:
        error = json.loads(data)
    except ValueError:
        return False
    message = error.get("message") or ""
    if not isinstance(error.get("status_code"), int) or not message:
        return False
    return error["status_code"] < 500 or bool(DEPENDENCIES.search(message))


async def streamed(client, tally, thread, text):
    body = {"assistant_id": thread["assistant"], "thread_id": thread["id"],
            "input": [{"type": "human", "content": text}]}
    began = time.monotonic()
    events = []
    async with client.stream("POST", "/runs/stream", json=body, headers=thread["headers"]) as response:
        if response.status_code != 200:
            await response.aread()
            tally.failures.append(("stream", response.status_code, response.text))
            if not clear_http_error(response):
                tally.unclear.append(("stream", response.status_code, response.text[:200]))
            return
        event = None
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line[len("event: "):]
                if event == "metadata":
                    tally.acknowledged.add(text)
                elif event == "end":
                    events.append((event, ""))
            elif line.startswith("data: ") and event is not None:
                events.append((event, line[len("data: "):]))
    tally.latencies.append(time.monotonic() - began)
    errors = [data for event, data in events if event == "error"]
    if errors and THREAD_TAKEN in errors[0]:
        # Its run lost the thread to another (its lease ran out): the answer was refused, so the
        # question counts as failed clearly, not as acknowledged. Its input stays stored.
        tally.acknowledged.discard(text)
        tally.taken.append(text)
    if errors:
        tally.failures.append(("stream error event", 200, errors[0]))
        if not clear_stream_error(errors[0]):
            tally.unclear.append(("stream error event", 200, errors[0][:200]))
    elif not events or events[-1][0] != "end":
        tally.failures.append(("stream", 200, "ended without end or error"))
        tally.unclear.append(("stream without end or error event", 200, str(events[-1:])[:200]))


async def background(client, tally, thread, text):
    body = {"assistant_id": thread["assistant"], "thread_id": thread["id"],
            "input": [{"type": "human", "content": text}]}
    began = time.monotonic()
    response = await client.post("/runs", json=body, headers=thread["headers"])
    tally.latencies.append(time.monotonic() - began)
    if response.is_success:
        tally.acknowledged.add(text)
        tally.background.append((thread, text, response.json()["run_id"]))
    else:
        tally.failures.append(("background", response.status_code, response.text))
        if not clear_http_error(response):
            tally.unclear.append(("background", response.status_code, response.text[:200]))


async def one_run(client, tally, threads, number, rng):
    thread = threads[number % len(threads)]
    # An agent calls its tool when the input names it (the offline model's rule).
    text = f"wikipedia chaos {number}" if thread["kind"] == "agent" else f"chaos {number}"
    tally.sent.add(text)
    tally.started += 1
    try:
        if rng.random() < 0.5:
            await streamed(client, tally, thread, text)
        else:
            await background(client, tally, thread, text)
    except httpx.HTTPError as error:
        # The server itself must not drop a client: that is a failure without a clear error.
        tally.failures.append(("transport", 0, repr(error)))
        tally.unclear.append(("transport", 0, repr(error)))


async def load(client, threads, runs, concurrency, first, rng):
    tally = Tally()
    gate = asyncio.Semaphore(concurrency)

    async def gated(number):
        async with gate:
            await one_run(client, tally, threads, number, rng)

    await asyncio.gather(*(gated(number) for number in range(first, first + runs)))
    return tally


async def recover(client, threads, concurrency, rng, deadline):
    """A new run on every thread, each tried again after a refusal (a 503 says when) until it
    passes or `deadline`: what a user does. The failures left are those of the last tries."""
    tally = Tally()
    gate = asyncio.Semaphore(concurrency)

    async def until_taken(index, thread):
        # Numbers that name this thread (see `thread_of`), another for each try, past every
        # number a load uses.
        number = len(threads) * 100_000_000 + index
        while True:
            attempt = Tally()
            async with gate:
                await one_run(client, attempt, [thread], number, rng)
            tally.started += 1
            tally.sent |= attempt.sent
            tally.acknowledged |= attempt.acknowledged
            tally.unclear += attempt.unclear
            if not attempt.failures or time.monotonic() > deadline:
                tally.failures += attempt.failures
                return
            number += len(threads)
            await asyncio.sleep(1)

    await asyncio.gather(*(until_taken(index, thread) for index, thread in enumerate(threads)))
    return tally


async def runs_going(client, thread):
    response = await client.get(f"/langgraph/threads/{thread['id']}/runs", params={"limit": 1000},
                                headers=thread["headers"])
    response.raise_for_status()
    return [run for run in response.json() if run["status"] in ("pending", "running")]


async def settle(client, threads, deadline):
    """Waits until no run is pending or running on any thread; returns the threads still busy."""
    busy = list(threads)
    while busy and time.monotonic() < deadline:
        still = []
        for thread in busy:
            if await runs_going(client, thread):
                still.append(thread)
        busy = still
        if busy:
            await asyncio.sleep(0.5)
    return busy


def answers_its_input(answer, human, kind):
    content = answer["content"] if isinstance(answer["content"], str) else json.dumps(answer["content"])
    if kind == "agent":
        return content.startswith("Here is what the tools found") or human in content
    return f'You said: "{human}"' in content


def answered(messages, text, kind):
    """Whether the input `text` is followed by its answer in the thread."""
    for index, message in enumerate(messages):
        if message["type"] == "human" and message["content"] == text:
            for after in messages[index + 1:]:
                if after["type"] == "human":
                    return False
                if after["type"] == "ai" and not after.get("tool_calls"):
                    return answers_its_input(after, text, kind)
    return False


async def records_unlike_their_thread(client, runs, messages_of):
    """Background runs whose record says otherwise than their thread: `success` without their
    answer stored, or failed with it stored (a repeated delivery that ran it again, say); and the
    runs whose answer was refused because another run took their thread."""
    unlike, taken = [], []
    for thread, text, run_id in runs:
        response = await client.get(f"/runs/{run_id}", headers=thread["headers"])
        response.raise_for_status()
        record = response.json()
        if (record["status"] == "success") != answered(messages_of[thread["id"]], text, thread["kind"]):
            unlike.append(f"run {run_id} of {text!r} is {record['status']}")
        if THREAD_TAKEN in (record.get("error") or ""):
            taken.append(text)
    return unlike, taken


def check_thread(messages, kind):
    """Duplicates, interleavings and answers that do not belong, in one thread's messages."""
    problems = {"duplicated": [], "interleaved": [], "foreign": []}
    ids = [message.get("id") for message in messages if message.get("id")]
    if len(ids) != len(set(ids)):
        problems["duplicated"].append("a message id twice")
    current = None  # the human text whose run's messages follow
    for index, message in enumerate(messages):
        kind_of = message["type"]
        if kind_of == "human":
            current = message["content"]
            continue
        previous = messages[index - 1]["type"] if index else None
        if kind_of == "ai" and not message.get("tool_calls"):
            if previous == "ai" and not messages[index - 1].get("tool_calls"):
                problems["duplicated"].append(f"two answers in a row after {current!r}")
            elif current is not None and not answers_its_input(message, current, kind):
                problems["foreign"].append(f"an answer after {current!r}: {message['content'][:80]!r}")
        elif kind_of == "ai":
            queries = [call.get("args", {}).get("query") for call in message["tool_calls"]]
            if current is not None and any(query != current for query in queries):
                problems["interleaved"].append(f"tool calls {queries} after {current!r}")
        elif kind_of == "tool" and previous not in ("ai", "tool"):
            problems["interleaved"].append(f"a tool message after a {previous} message")
    return problems


async def starve(pid, every, stopped_for, stops):
    """Lets the server run for `every` seconds, then stops it (SIGSTOP) for `stopped_for`
    seconds, again and again, counting the stops in `stops`: a process starved of its CPU past
    its runs' lease, as an overloaded host or a frozen Lambda instance leaves one. It goes on
    (SIGCONT) whatever ends this."""
    try:
        while True:
            await asyncio.sleep(every)
            os.kill(pid, signal.SIGSTOP)
            stops.append(stopped_for)
            await asyncio.sleep(stopped_for)
            os.kill(pid, signal.SIGCONT)
    finally:
        os.kill(pid, signal.SIGCONT)


def percentile(values, share):
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def failure_kinds(failures):
    """How many failures of each kind: how the request went (stream, its error event, background,
    transport) and the status it was given, the error event's own for a stream."""
    kinds = {}
    for what, status, detail in (failure[:3] for failure in failures):
        if what == "stream error event":
            try:
                status = json.loads(detail)["status_code"]
            except (ValueError, KeyError, TypeError):
                pass
        kind = f"{what} {status}"
        kinds[kind] = kinds.get(kind, 0) + 1
    return dict(sorted(kinds.items()))


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--faults", action="append", default=[])
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--threads", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=float, default=0.2)
    parser.add_argument("--lease-seconds", type=float, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--label", default="")
    parser.add_argument("--model", choices=["offline", "openai"], default="offline",
                        help="the chatbots' model: the offline one, or OpenAI's API (OPENAI_BASE_URL)")
    parser.add_argument("--max-memory-growth-mib", type=float, default=64)
    parser.add_argument("--max-leak-mib", type=float, default=4,
                        help="how much more memory the second load may leave than the first")
    parser.add_argument("--server-log", help="the server's log, with its heap in use each second")
    parser.add_argument("--max-heap-leak-kib", type=float, default=512,
                        help="how much more heap the second load may leave in use than the first")
    parser.add_argument("--show", type=int, default=3, help="threads with a problem whose messages are printed")
    parser.add_argument("--starve-every", type=float, default=0,
                        help="during the load with faults, stop the server after it ran this long (seconds; 0: never)")
    parser.add_argument("--starve-for", type=float, default=0, help="how long each stop lasts (seconds)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    limits = httpx.Limits(max_connections=args.concurrency + 8)

    def connect():
        return httpx.AsyncClient(base_url=args.server, timeout=120, limits=limits)

    async def idle_memory(client):
        """The server's memory with none of our connections open (it keeps each one's buffers
        while it is), and a new client for what follows."""
        await client.aclose()
        heap = await heap_kib(args.server_log) if args.server_log else None
        return connect(), rss_mib(args.pid), heap

    client = connect()
    try:
        await set_rate(client, args.faults, 0.0)
        threads = []
        for number in range(args.threads):
            kind = "agent" if number % 5 == 4 else "chatbot"
            thread = {"kind": kind, "headers": cookie(number)}
            configurable = dict(BOTS[kind])
            if kind == "chatbot" and args.model == "openai":
                configurable["type==chatbot/llm_type"] = "GPT 4o"
            response = await client.post("/assistants", headers=thread["headers"], json={
                "name": f"chaos {kind}", "public": False, "config": {"configurable": configurable}})
            response.raise_for_status()
            thread["assistant"] = response.json()["assistant_id"]
            response = await client.post("/threads", headers=thread["headers"],
                                         json={"name": f"chaos {number}", "assistant_id": thread["assistant"]})
            response.raise_for_status()
            thread["id"] = response.json()["thread_id"]
            threads.append(thread)

        # Without faults first, for the latency to compare with; then the same under faults.
        baseline = await load(client, threads, max(args.runs // 5, args.threads), args.concurrency, 0, rng)
        await settle(client, threads, time.monotonic() + 60)
        client, memory_before, heap_before = await idle_memory(client)
        await set_rate(client, args.faults, args.rate)
        stops = []
        starving = args.starve_every and asyncio.create_task(starve(args.pid, args.starve_every, args.starve_for, stops))
        began = time.monotonic()
        tally = await load(client, threads, args.runs, args.concurrency, 100_000, rng)
        loaded_seconds = time.monotonic() - began
        if starving:
            starving.cancel()
            await asyncio.gather(starving, return_exceptions=True)
        await set_rate(client, args.faults, 0.0)
        requests, injected = await fault_report(client, args.faults)

        # Recovery: no run left going past its lease, and every thread takes a new run.
        stuck = await settle(client, threads, time.monotonic() + args.lease_seconds + 30)
        recovery = await recover(client, threads, args.concurrency, rng, time.monotonic() + args.lease_seconds + 30)
        refused_after = recovery.failures
        still_going = await settle(client, threads, time.monotonic() + 30)
        client, memory_after, heap_after = await idle_memory(client)
        again = await load(client, threads, args.runs, args.concurrency, 10_000_000, rng)
        still_going += await settle(client, threads, time.monotonic() + 30)
        client, memory_again, heap_again = await idle_memory(client)
        heaps = [heap_before, heap_after, heap_again]
        if args.server_log and heap_again is not None and heap_again - heap_after > args.max_heap_leak_kib:
            # The heap in use moves by a few hundred KiB between loads as pooled connections and
            # their buffers come and go. A leak grows with every run: a third load as large tells
            # which, as it grows again only for a leak.
            third = await load(client, threads, args.runs, args.concurrency, 20_000_000, rng)
            still_going += await settle(client, threads, time.monotonic() + 30)
            client, _, heap_third = await idle_memory(client)
            heaps.append(heap_third)
            again = again.merged(third)

        lost, twice, problems = [], [], {"duplicated": [], "interleaved": [], "foreign": [], "records": []}
        messages_of = {}
        acknowledged = tally.acknowledged | recovery.acknowledged | baseline.acknowledged | again.acknowledged
        sent = tally.sent | recovery.sent | baseline.sent | again.sent
        for thread in threads:
            response = await client.get(f"/threads/{thread['id']}/state", headers=thread["headers"])
            response.raise_for_status()
            messages = response.json()["values"]
            messages_of[thread["id"]] = messages
            humans = [message["content"] for message in messages if message["type"] == "human"]
            for text in set(humans):
                if humans.count(text) > 1:
                    twice.append(text)
                if text not in sent:
                    problems["foreign"].append(f"an input nobody sent: {text!r}")
            found = check_thread(messages, thread["kind"])
            for name, listed in found.items():
                problems[name].extend(listed)
            lost.extend(text for text in acknowledged if thread_of(text, threads) is thread and text not in humans)
            if (any(found.values()) or any(thread_of(text, threads) is thread for text in lost)) and args.show:
                for message in messages:
                    print("   ", message["type"], message.get("id"), message.get("tool_calls"),
                          repr(message["content"])[:100])
                args.show -= 1

        runs = tally.background + recovery.background + baseline.background + again.background
        problems["records"], taken_background = await records_unlike_their_thread(client, runs, messages_of)
    finally:
        await client.aclose()

    figures = {
        "label": args.label,
        "rate": args.rate,
        "runs started": tally.started,
        "acknowledged": len(tally.acknowledged),
        "failed with an error": len(tally.failures),
        "failed, by kind and status": failure_kinds(tally.failures),
        "answers refused, thread taken (streamed, background)": [
            len(tally.taken + recovery.taken + baseline.taken + again.taken), len(taken_background)],
        "requests to dependencies": requests,
        "faults injected": injected,
        "server stopped (times, seconds each)": [len(stops), args.starve_for],
        "lost": len(lost),
        "duplicated": len(twice) + len(problems["duplicated"]),
        "interleaved": len(problems["interleaved"]),
        "answers not of their input": len(problems["foreign"]),
        "run records unlike their thread": len(problems["records"]),
        "stuck threads after recovery": len(stuck) + len(still_going) + len(refused_after),
        "errors without a clear detail": len(tally.unclear) + len(recovery.unclear) + len(again.unclear),
        "failed without faults after": len(again.failures),
        "p50/p99 s without faults": [round(percentile(baseline.latencies, 0.5), 3),
                                     round(percentile(baseline.latencies, 0.99), 3)],
        "p50/p99 s with faults": [round(percentile(tally.latencies, 0.5), 3),
                                  round(percentile(tally.latencies, 0.99), 3)],
        "seconds under faults": round(loaded_seconds, 1),
        "memory MiB before/after/after a second load": [round(memory_before, 1), round(memory_after, 1),
                                                        round(memory_again, 1)],
        "heap in use KiB before/after/after a second load (and a third)": heaps,
    }
    for name, value in figures.items():
        print(f"{name:>32}: {value}")
    failed = []
    for name in ("lost", "duplicated", "interleaved", "answers not of their input", "run records unlike their thread",
                 "stuck threads after recovery", "errors without a clear detail"):
        if figures[name]:
            failed.append(name)
    if memory_after - memory_before > args.max_memory_growth_mib:
        failed.append("memory")
    if memory_again - memory_after > args.max_leak_mib:
        failed.append("memory after a second load (a leak)")
    # A leak: every load after the first grew the heap past the bound (or it was not logged).
    grew = [None in pair or pair[1] - pair[0] > args.max_heap_leak_kib for pair in zip(heaps[1:], heaps[2:])]
    if args.server_log and all(grew):
        failed.append("heap in use after a second load, and a third (a leak)")
    for text in lost[:5]:
        print("lost:", text)
    for text in twice[:5]:
        print("stored twice:", text)
    for name, found in problems.items():
        for problem in found[:5]:
            print(f"{name}: {problem}")
    for what in again.failures[:5]:
        print("failed without faults:", what)
    for what in (tally.unclear + recovery.unclear + again.unclear)[:5]:
        print("unclear:", what)
    for what in refused_after[:5]:
        print("refused after the faults stopped:", what)
    for thread in (stuck + still_going)[:5]:
        print("stuck:", thread["id"])
    print(json.dumps(figures))
    if failed:
        print("FAILED:", ", ".join(failed))
        sys.exit(1)


def thread_of(text, threads):
    number = int(text.rsplit(" ", 1)[1])
    return threads[number % len(threads)]


if __name__ == "__main__":
    asyncio.run(main())
