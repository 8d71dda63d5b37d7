#!/usr/bin/env python3
"""Checks Slack payloads (as autoheal posts them) against Slack's own Block Kit models.

    .venv/bin/python tools/slack_check.py [--runbook-url URL] [FILE ...]     # else stdin

Input: one JSON object per line (blank lines skipped). Each payload must have a string
`text` and may have `blocks`. Every block is parsed with slack_sdk's `Block.parse` and
validated with `validate_json()` and `to_dict()` (the nested text objects too), which raise
`SlackObjectFormationError` past Block Kit's limits. On top of what slack_sdk enforces:

- an unknown block type, or a key slack_sdk's model drops, is an error;
- the limits slack_sdk documents but does not enforce: a section field's text and a context
  element's text at most 2,000 characters; at most 50 blocks; `text` at most 3,000 (ours);
- escaping: in every mrkdwn text (the top-level `text` too, which Slack parses as mrkdwn)
  each `<` must open one of our links, `<https://[REGION.]console.aws.amazon.com/...|label>`
  or, with `--runbook-url URL` (the deployer's `AUTOHEAL_RUNBOOK_URL`), a runbook section's
  `<URL#anchor|Runbook: title>` (an `&` of the URL written `&amp;`), and each `&` must start
  `&amp;`, `&lt;` or `&gt;`; a plain_text has no `<` at all. So `<!channel>`, `<@U1>` or
  `<http://x|y>` that came from data fail the check.

Prints `ok N payloads`, or one line per problem and exits 1 (2 for unreadable input).
"""

import json
import re
import sys

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block, ContextBlock, SectionBlock

# Documented in SectionBlock's docstring ("Maximum length for the text in each item is 2000
# characters") and Slack's context block reference; slack_sdk does not validate them.
FIELD_TEXT_MAX = 2000
CONTEXT_TEXT_MAX = 2000
MESSAGE_BLOCKS_MAX = 50
# autoheal's own bound for the fallback / notification text.
FALLBACK_TEXT_MAX = 3000

# One of our links: https to the AWS console (autoheal links nothing else), no space, `<`,
# `>` or `|` in the URL; a label without markup.
LINK = re.compile(r"<https://([a-z0-9-]+\.)?console\.aws\.amazon\.com/[^\s<>|]*\|[^<>|]+>")
ENTITY = re.compile(r"&(amp|lt|gt);")


def runbook_link(url):
    """A runbook section's link at `url`, as autoheal writes it: `<url#anchor|Runbook: title>`."""
    return re.compile("<" + re.escape(url.replace("&", "&amp;")) + r"#[a-z0-9_-]+\|Runbook: [^<>|]+>")


def markup_problems(text, kind, ours=(LINK,)):
    """Escaping problems in one text object's text (kind: mrkdwn or plain_text); `ours`:
    the patterns of our links."""
    problems = []
    if kind == "plain_text":
        if "<" in text:
            problems.append(f"unescaped '<' in plain_text at {text.index('<')}: {snippet(text, text.index('<'))}")
    else:
        links = {m.start() for pattern in ours for m in pattern.finditer(text)}
        for i, c in enumerate(text):
            if c == "<" and i not in links:
                problems.append(f"'<' that is not one of our links at {i}: {snippet(text, i)}")
    for i, c in enumerate(text):
        if c == "&" and not ENTITY.match(text, i):
            problems.append(f"'&' not written as an entity at {i}: {snippet(text, i)}")
    return problems


def snippet(text, i):
    return json.dumps(text[i : i + 30])


def text_objects(raw):
    """(where, text object dict) for every text object in a raw block."""
    out = []
    if isinstance(raw.get("text"), dict):
        out.append(("text", raw["text"]))
    for key in ("fields", "elements"):
        for n, obj in enumerate(raw.get(key) or []):
            if isinstance(obj, dict) and obj.get("type") in ("mrkdwn", "plain_text"):
                out.append((f"{key}[{n}]", obj))
    return out


def check_block(raw, ours=(LINK,)):
    """Problems with one raw block (a dict)."""
    if not isinstance(raw, dict):
        return [f"not an object: {type(raw).__name__}"]
    block = Block.parse(raw)
    if block is None or type(block) is Block:
        return [f"unknown block type {raw.get('type')!r}"]
    try:
        block.validate_json()
        as_sdk = block.to_dict()
    except SlackObjectFormationError as e:
        return [f"{raw.get('type')}: {e}"]
    problems = []
    dropped = sorted(set(raw) - set(as_sdk))
    if dropped:
        problems.append(f"{raw['type']}: keys slack_sdk does not know: {', '.join(dropped)}")
    for where, obj in text_objects(raw):
        text = obj.get("text")
        if not isinstance(text, str):
            problems.append(f"{where}: text is not a string")
            continue
        limit = None
        if isinstance(block, SectionBlock) and where.startswith("fields["):
            limit = FIELD_TEXT_MAX
        elif isinstance(block, ContextBlock):
            limit = CONTEXT_TEXT_MAX
        if limit is not None and len(text) > limit:
            problems.append(f"{where}: text is {len(text)} characters, more than {limit}")
        problems += [f"{where}: {p}" for p in markup_problems(text, obj.get("type"), ours)]
    return problems


def check_payload(payload, ours=(LINK,)):
    """Problems with one payload (a parsed JSON value)."""
    if not isinstance(payload, dict):
        return [f"not a JSON object: {type(payload).__name__}"]
    problems = []
    text = payload.get("text")
    if not isinstance(text, str) or not text:
        problems.append("text: missing or not a non-empty string")
    else:
        if len(text) > FALLBACK_TEXT_MAX:
            problems.append(f"text: {len(text)} characters, more than {FALLBACK_TEXT_MAX}")
        problems += [f"text: {p}" for p in markup_problems(text, "mrkdwn", ours)]
    blocks = payload.get("blocks", [])
    if not isinstance(blocks, list):
        return problems + ["blocks: not a list"]
    if len(blocks) > MESSAGE_BLOCKS_MAX:
        problems.append(f"blocks: {len(blocks)}, more than {MESSAGE_BLOCKS_MAX}")
    for n, raw in enumerate(blocks):
        problems += [f"blocks[{n}] {p}" for p in check_block(raw, ours)]
    return problems


def check_lines(lines, ours=(LINK,)):
    """(number of payloads, problems) for an iterable of JSON lines."""
    count, problems = 0, []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        count += 1
        try:
            payload = json.loads(line)
        except json.JSONDecodeError as e:
            problems.append(f"line {lineno}: not JSON: {e}")
            continue
        problems += [f"line {lineno}: {p}" for p in check_payload(payload, ours)]
    return count, problems


def main(argv):
    count, problems, ours = 0, [], [LINK]
    argv = list(argv)
    while argv[:1] == ["--runbook-url"]:
        if len(argv) < 2 or not argv[1].startswith("https://"):
            print("slack_check: --runbook-url needs the https:// URL reports link", file=sys.stderr)
            return 2
        ours.append(runbook_link(argv[1]))
        argv = argv[2:]
    try:
        sources = [open(p, encoding="utf-8") for p in argv] if argv else [sys.stdin]
    except OSError as e:
        print(f"slack_check: {e}", file=sys.stderr)
        return 2
    for source in sources:
        with source:
            n, p = check_lines(source, ours)
        count += n
        problems += p
    if count == 0:
        print("slack_check: no payloads read", file=sys.stderr)
        return 2
    if problems:
        for p in problems:
            print(p)
        print(f"{len(problems)} problem(s) in {count} payloads")
        return 1
    print(f"ok {count} payloads")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
