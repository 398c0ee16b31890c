#!/usr/bin/env python3
"""Exit 0 if some line of a JSON-lines file (an audit trail, metrics.jsonl)
matches every condition, else 1 (2: the file is missing or not JSON lines).

    jsonl_has.py FILE KEY=VALUE KEY~REGEX ...

KEY=VALUE: the field, as text (1 and "1" both match 1), equals VALUE.
KEY~REGEX: the field, as text, contains a match of REGEX."""
import json
import re
import sys


def text(value):
    return value if isinstance(value, str) else json.dumps(value)


def matches(line, conditions):
    for key, op, expected in conditions:
        if key not in line:
            return False
        got = text(line[key])
        if op == "=" and got != expected:
            return False
        if op == "~" and not re.search(expected, got):
            return False
    return True


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: jsonl_has.py FILE KEY=VALUE|KEY~REGEX ...")
    conditions = []
    for arg in sys.argv[2:]:
        found = re.match(r"([A-Za-z_][A-Za-z0-9_]*)([=~])(.*)$", arg, re.S)
        if not found:
            sys.exit(f"jsonl_has.py: not KEY=VALUE or KEY~REGEX: {arg}")
        conditions.append(found.groups())
    try:
        with open(sys.argv[1], encoding="utf-8") as f:
            lines = [json.loads(l) for l in f if l.strip()]
    except (OSError, ValueError) as e:
        print(f"jsonl_has.py: {sys.argv[1]}: {e}", file=sys.stderr)
        sys.exit(2)
    sys.exit(0 if any(matches(l, conditions) for l in lines) else 1)


if __name__ == "__main__":
    main()
