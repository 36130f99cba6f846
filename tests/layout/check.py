"""The shape of core/ that docs/development.md promises: no file over 500 lines, and no import
cycle between its modules (a module's `use` of another, followed through re-exports, so that
`runs::RunEngine` counts as `runs::engine`). Prints each breach; exits 1 on any."""

import os
import re
import sys

MAX_LINES = 500
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "core", "src")
PATH = re.compile(r"\b((?:crate|super|self)(?:::\w+)+)")
REEXPORT = re.compile(r"pub(?:\([\w:]+\))? use ([\w:]+)::(\{[^}]*\}|\w+)")


def modules():
    found = {}
    for folder, _, files in os.walk(ROOT):
        for name in files:
            if name.endswith(".rs"):
                path = os.path.join(folder, name)
                parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
                if parts[-1] in ("mod", "lib"):
                    parts = parts[:-1]
                found["::".join(parts)] = path
    return found


def code(path):
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r"#\[cfg\(test\)\]\s*mod tests \{.*", "", text, flags=re.S)


def resolve(sources, current, path):
    """The module a path names, following a re-export of its item; None outside core."""
    segments = path.split("::")
    base = current.split("::") if current else []
    if segments[0] == "crate":
        base, segments = [], segments[1:]
    elif segments[0] == "super":
        while segments and segments[0] == "super":
            base, segments = base[:-1], segments[1:]
    else:
        segments = segments[1:]
    full = base + segments
    for length in range(len(full), 0, -1):
        module = "::".join(full[:length])
        if module not in sources:
            continue
        rest = full[length:]
        if rest:
            for export in REEXPORT.finditer(sources[module]):
                if rest[0] in re.findall(r"\w+", export.group(2)):
                    child = "::".join(filter(None, [module, export.group(1)]))
                    origin = export.group(1)
                    target = resolve(sources, module, origin) if origin.startswith(("crate", "super", "self")) else None
                    return target or (child if child in sources else module)
        return module
    return None


def cycles(sources):
    edges = {module: set() for module in sources}
    for module, text in sources.items():
        for path in PATH.findall(text):
            target = resolve(sources, module, path)
            related = target and (module.startswith(target + "::") or target.startswith(module + "::"))
            if target and target != module and not related:
                edges[module].add(target)
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in edges[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10000)
    for node in sources:
        if node not in index:
            visit(node)
    return found


def main():
    paths = modules()
    breaches = []
    for module, path in sorted(paths.items()):
        lines = sum(1 for _ in open(path, encoding="utf-8"))
        if lines > MAX_LINES:
            breaches.append(f"{os.path.relpath(path, ROOT)}: {lines} lines (at most {MAX_LINES})")
    sources = {module: code(path) for module, path in paths.items()}
    for component in cycles(sources):
        breaches.append("an import cycle: " + " -> ".join(component))
    for breach in breaches:
        print(breach)
    print(f"core/ layout: {len(paths)} modules, {len(breaches)} breaches")
    return 1 if breaches else 0


if __name__ == "__main__":
    sys.exit(main())
