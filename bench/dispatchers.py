"""Sending at scale: messages per second with 1 and with 3 dispatcher processes on one
PostgreSQL outbox, to the same SMTP server.

M messages (default 2000) are queued in a fresh database of a throw-away PostgreSQL
cluster (tests/postgres.py, Debian's binaries, fsync on as in production); then K
dispatcher processes run the real `delivery.dispatch.dispatch` loop against `Outbox(url)`
(claims with FOR UPDATE SKIP LOCKED, leases) and send over SMTP to an aiosmtpd server
(`MaildirSink`) in this process, where every Message-ID is counted. The clock runs from
the dispatchers' start to the last one's end. Baselines measured in the same run: the
same M messages with one dispatcher on PostgreSQL, and with one dispatcher on a SQLite
outbox (the one-machine default).

    python bench/dispatchers.py [--messages 2000] [--dispatchers 3] [--json]

Read with care on a small machine: the sink is one asyncio process writing a Maildir, so
with 2 cores the dispatchers, PostgreSQL and the sink share the same CPUs; the ratio says
how much several dispatchers add *here*, not on separate machines. Process start-up
(imports, connecting) is outside the clock: each dispatcher waits for a go.

`--json` ends with one line: {"messages", "dispatchers", "msgs_per_s", "msgs_per_s_one",
"speedup", "msgs_per_s_sqlite_one", "duplicates", "lost"}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
REPO = _HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from delivery.outbox import Outbox, QueuedEmail  # noqa: E402
from delivery.sink import MaildirSink  # noqa: E402
from storage import Target  # noqa: E402
from tests.postgres import PostgresServer  # noqa: E402

_DISPATCHER = textwrap.dedent(
    """
    import sys, time
    from delivery.dispatch import dispatch
    from delivery.outbox import Outbox, OutboxState
    from delivery.transport import SmtpTransport

    target, port = sys.argv[1], int(sys.argv[2])
    sent = 0
    with Outbox(target) as outbox, SmtpTransport("127.0.0.1", port) as smtp:
        outbox.counts()  # connected, schema checked: the clock starts after this
        print("ready", flush=True)
        sys.stdin.readline()
        while True:
            report = dispatch(outbox, smtp, is_suppressed=lambda c: False, batch_size=25)
            sent += report.sent
            counts = outbox.counts()
            if counts[OutboxState.queued] == counts[OutboxState.sending] == 0:
                break
            if report.sent == 0:
                time.sleep(0.05)
    print(sent, flush=True)
    """
)


def _message(n: int) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Demo Shop <news@shop.example>"
    msg["To"] = f"shopper{n}@mail.example"
    msg["Subject"] = "Picked for you"
    msg["Message-ID"] = f"<{n}.bench@shop.example>"
    msg.set_content(f"Hello shopper {n}\n" + "x" * 2000)
    return msg


def run(target: Target, messages: int, dispatchers: int, root: Path) -> dict[str, float]:
    """Queue `messages` in `target`, send them with `dispatchers` processes; measured."""
    now = datetime.now(UTC)
    with Outbox(target) as outbox:
        entries = [
            QueuedEmail("bench", f"c{n:06d}", f"shopper{n}@mail.example", _message(n), now)
            for n in range(messages)
        ]
        outbox.enqueue_many(entries, now=now)
    with MaildirSink(root / f"mail-{dispatchers}-{time.monotonic_ns()}") as sink:
        workers = [
            subprocess.Popen(
                [sys.executable, "-c", _DISPATCHER, str(target), str(sink.port)],
                cwd=REPO,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(dispatchers)
        ]
        for worker in workers:  # started, imported, connected: not part of the figure
            assert worker.stdout is not None and worker.stdout.readline() == "ready\n"
        start = time.perf_counter()
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        sent = [int(w.communicate(timeout=900)[0].strip() or 0) for w in workers]
        wall = time.perf_counter() - start
        parser = BytesHeaderParser()
        ids = Counter(str(parser.parsebytes(raw)["Message-ID"]) for raw in sink.messages())
    return {
        "wall_s": wall,
        "msgs_per_s": messages / wall,
        "sent_by_each": sent,  # type: ignore[dict-item]
        "duplicates": sum(ids.values()) - len(ids),
        "lost": messages - len(ids),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--dispatchers", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="reelcast-bench-dispatch-"))
    with PostgresServer(durable=True) as pg:  # fsync on, like the SQLite outbox
        sqlite_one = run(root / "state.sqlite", args.messages, 1, root)
        one = run(pg.create_database(), args.messages, 1, root)
        many = run(pg.create_database(), args.messages, args.dispatchers, root)
    speedup = many["msgs_per_s"] / one["msgs_per_s"]
    print(f"{args.messages} messages to one SMTP server:")
    print(f"  SQLite outbox, 1 dispatcher:       {sqlite_one['msgs_per_s']:7.1f} msg/s")
    print(f"  PostgreSQL outbox, 1 dispatcher:   {one['msgs_per_s']:7.1f} msg/s")
    print(
        f"  PostgreSQL outbox, {args.dispatchers} dispatchers:  {many['msgs_per_s']:7.1f} msg/s"
        f" ({speedup:.2f}× one; each sent {many['sent_by_each']})"
    )
    print(f"  duplicates {many['duplicates']:.0f}, lost {many['lost']:.0f}")
    if args.json:
        print(
            json.dumps(
                {
                    "messages": args.messages,
                    "dispatchers": args.dispatchers,
                    "msgs_per_s": round(many["msgs_per_s"], 1),
                    "msgs_per_s_one": round(one["msgs_per_s"], 1),
                    "speedup": round(speedup, 2),
                    "msgs_per_s_sqlite_one": round(sqlite_one["msgs_per_s"], 1),
                    "duplicates": many["duplicates"] + one["duplicates"],
                    "lost": many["lost"] + one["lost"],
                }
            )
        )


if __name__ == "__main__":
    main()
