"""Reads callgrind profiles of the server and writes the linker's symbol ordering file.

Every function of the server's binary that ran, by name as the linker knows it (mangled), the
ones that ran most first: so the code the server runs sits together, in as few pages as it can.

    python order.py BINARY_NAME OUTPUT PROFILE...
"""

import collections
import sys


def costs(profile, binary_name):
    """Instructions run per function of the binary, from a profile written with
    --compress-strings=no and --demangle=no (names as they are, one per line)."""
    spent = collections.Counter()
    in_binary = False
    function = None
    after_call = False
    with open(profile) as lines:
        for line in lines:
            if line.startswith("ob="):
                in_binary = line[3:].strip().endswith("/" + binary_name)
            elif line.startswith("fn="):
                # Callgrind marks a function's recursion levels and repeated contexts `name'2`.
                function = line[3:].strip().split("'")[0] if in_binary else None
            elif line.startswith("calls="):
                # The cost line after a call is the callee's, inclusive: not the caller's own.
                after_call = True
            elif after_call:
                after_call = False
            elif function and line[:1].isdigit():
                fields = line.split()
                if len(fields) >= 2:
                    spent[function] += int(fields[1])
    return spent


def main():
    binary_name, output, *profiles = sys.argv[1:]
    spent = collections.Counter()
    for profile in profiles:
        spent.update(costs(profile, binary_name))
    # Names the linker cannot match: callgrind's own, for code outside any symbol ("0x…") and
    # for what runs before `main` ("(below main)").
    names = [name for name, _ in spent.most_common() if not name.startswith(("0x", "("))]
    with open(output, "w") as out:
        out.write("".join(name + "\n" for name in names))
    print(f"{len(names)} functions ran; their order is in {output}")


main()
