"""What the langgraph-sdk suites share: users of their own run, checks run in order, and an
expected error caught."""

import asyncio
import uuid

from langgraph_sdk import get_client

# Users of this run alone, so a suite may run again on the same server.
SUFFIX = uuid.uuid4().hex[:8]
CHECKS = []


def user(name):
    return f"{name}-{SUFFIX}"


def cookie(name):
    return {"Cookie": f"opengpts_user_id={user(name)}"}


def client(url, name):
    return get_client(url=url, headers=cookie(name))


def check(function):
    CHECKS.append(function)
    return function


async def raises(error, call):
    try:
        await call
    except error as raised:
        return raised
    raise AssertionError(f"expected {error.__name__}")


def run_checks():
    """Runs every check in the order they were declared; the first failure ends the suite."""

    async def main():
        for function in CHECKS:
            print(f"-- {function.__name__}", flush=True)
            await function()
        print(f"all {len(CHECKS)} checks passed")

    asyncio.run(main())
