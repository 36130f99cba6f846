"""Every shell block of the README and docs/ is run here as a user would run it, or says on its
first line that it needs AWS (`# needs AWS: ...`). A block this script does not know fails it.

- The README's two commands: `make run` is started (on a free port, its data in a scratch
  folder) and answers; `make test` is the command running this.
- The README's walkthrough: each curl against that server, with the ids the comments name taken
  from the answer before, and every `"key":"value"` and `event:` a comment shows found in the
  answer.
- docs/deploying.md's `cargo lambda watch`: started as written (on a free port) and answering.

Usage: python tests/docs/commands.py <scratch folder>
"""

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRATCH = Path(sys.argv[1])


def shell_blocks():
    """(file, first line number, lines) of every ```sh block."""
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        lines = page.read_text().splitlines()
        start = None
        for number, line in enumerate(lines, 1):
            if start is None and line.strip() in ("```sh", "```bash", "```shell", "```console"):
                start = number
            elif start is not None and line.strip() == "```":
                yield page.relative_to(ROOT), start, lines[start:number - 1]
                start = None


def commands(lines):
    """The block's commands (continuations joined), each with the comment lines after it."""
    found = []
    for line in lines:
        if line.startswith("#"):
            if found:
                found[-1][1].append(line[1:].strip())
        elif found and found[-1][0].endswith("\\"):
            found[-1][0] = found[-1][0][:-1] + " " + line.strip()
        elif line.strip():
            found.append([line.strip(), []])
    return found


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_ok(url, process, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url}: the process stopped (exit {process.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} did not answer within {seconds} s")


def start(command, env, log):
    return subprocess.Popen(["bash", "-c", command], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(process):
    try:
        os.killpg(process.pid, 15)
    except ProcessLookupError:
        pass
    process.wait(timeout=30)


def shown_expectations(comments):
    """What a comment shows of an answer: its "key":"value" pairs without an ellipsis, and the
    SSE events it names."""
    text = " ".join(comments)
    pairs = [f'"{key}":"{value}"' for key, value in re.findall(r'"(\w+)":"([^"]*)"', text) if "…" not in value]
    events = [f"event: {name}" for name in re.findall(r"event: (\w+)", text)]
    return pairs + events


def walkthrough(block, base):
    """Runs the walkthrough's commands in order against `base`; returns how many ran."""
    variables, last, ran = {}, "", 0
    for command, comments in commands(block):
        assignment = re.match(r"^(\w+)=(\S*)\s*$", command.split("#")[0])
        if assignment and "…" in assignment.group(2):
            # `A=9c7d…   # the assistant_id above`: the id the answer before gave.
            field = re.search(r"(\w+_id)", command).group(1)
            variables[assignment.group(1)] = json.loads(last)[field]
            continue
        if assignment:
            variables[assignment.group(1)] = shlex.split(assignment.group(2))[0] if assignment.group(2) else ""
            continue
        command = command.replace("localhost:8100", base)
        expected = shown_expectations(comments + [command.split("#", 1)[1]] if "#" in command else comments)
        env = {**os.environ, **variables}
        # A background run's answer lands a moment later: the user would look again (a read, that
        # is; a write is sent once).
        reads = not re.search(r"-X (POST|PUT|PATCH|DELETE)", command)
        for _ in range(50 if reads else 1):
            last = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True, timeout=60).stdout
            missing = [text for text in expected if text not in last]
            if not missing:
                break
            time.sleep(0.2)
        if missing:
            raise SystemExit(f"walkthrough: {command}\n  lacks {missing}\n  answered {last[:500]}")
        ran += 1
    return ran


def main():
    SCRATCH.mkdir(parents=True, exist_ok=True)
    unknown, needs_aws, ran = [], [], []
    blocks = list(shell_blocks())
    for page, line, block in blocks:
        first = block[0] if block else ""
        where = f"{page}:{line}"
        if first.lower().startswith("# needs aws"):
            needs_aws.append(where)
        elif first.startswith("make run"):
            assert any(command.split("#")[0].strip() == "make test" for command, _ in commands(block)), where
            port = free_port()
            env = {**os.environ, "PORT": str(port), "SQLITE_PATH": str(SCRATCH / "docs-run.sqlite3")}
            with open(SCRATCH / "docs-make-run.log", "w") as log:
                server = start("make run", env, log)
                try:
                    # `make run` builds `api` alone: on a cold build folder that is the AWS SDK again,
                    # without the test builds' extra TLS provider.
                    wait_until_ok(f"http://127.0.0.1:{port}/ok", server, 1800)
                    walk = next(b for p, _, b in blocks if p.name == "README.md" and any("curl" in l for l in b))
                    count = walkthrough(walk, f"127.0.0.1:{port}")
                finally:
                    stop(server)
            ran.append(f"{where} (make run answered; make test is this command)")
            ran.append(f"README walkthrough ({count} commands against make run)")
        elif any("localhost:8100" in l for l in block):
            continue  # the walkthrough, run with `make run` above
        elif any("cargo lambda watch" in l for l in block):
            # `pip install cargo-lambda`: the test command installs it so too (scripts/python-tools.sh).
            others = [c for c, _ in commands(block) if "cargo lambda watch" not in c]
            assert others == ["pip install cargo-lambda"], f"{where}: {others}"
            port = free_port()
            command = " ".join(c for c, _ in commands(block) if "cargo lambda watch" in c)
            command = command.replace("9000", str(port)) + f" --invoke-port {port} --invoke-address 127.0.0.1"
            env = {**os.environ, "SQLITE_PATH": str(SCRATCH / "docs-watch.sqlite3")}
            with open(SCRATCH / "docs-watch.log", "w") as log:
                watch = start(command, env, log)
                try:
                    wait_until_ok(f"http://127.0.0.1:{port}/ok", watch, 600)
                finally:
                    stop(watch)
            ran.append(f"{where} (cargo lambda watch answered)")
        else:
            unknown.append(where)
    for line in ran:
        print(f"ran: {line}")
    for where in needs_aws:
        print(f"needs AWS: {where}")
    if unknown:
        raise SystemExit(f"shell blocks no test runs, and not marked `# needs AWS`: {unknown}")


if __name__ == "__main__":
    main()
