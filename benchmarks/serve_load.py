"""Load on `winnow serve`: what dynamic batching buys across concurrent clients, the capacity, and
what happens at 4x capacity. A bounded asyncio + httpx loop on loopback; the server is a real
`winnow serve` process (its memory is read from /proc).

Workload: TEI's /rerank with 20 passages of about 128 tokens (cut from SciFact abstracts) per request
(``--passages``: another count, or a range such as 2..5 drawn per request), each request with its own
SciFact query. Every passage carries its request's id, and every answer is checked against its own
request (all its indices back once, each text from this request): zero lost or crossed responses is
asserted, not assumed. The server's score cache is off (``--cache-entries 0``): requests repeat, and
this measures the model, not the cache.

1. Concurrency: the same requests sent one after another, then by 4 / 8 / 16 clients at once;
   rounds interleave the settings (the CPU is shared), and each ratio is the median over rounds.
2. Capacity: open-loop arrivals at rising rates (10 s each); capacity is the highest rate whose p99
   stays <= 2 s with nothing rejected.
3. Overload: 4x capacity offered for --overload-seconds (default 60): admitted requests' p99, rejects
   (429 / 503) and how fast they come back, 5xx, server memory over time.

    python benchmarks/serve_load.py                       # writes docs/serving.md's figures and PNG
    python benchmarks/serve_load.py --overload-seconds 20 --rounds 1   # a quick look
    python benchmarks/serve_load.py --passages 2..5 --batching-only    # step 1 alone, small requests
                                                                       # (its own section of serving.md)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from _common import DATA, REPO
from markdown_report import write_section

from winnow.models import resolve_model
from winnow.models.hardware import cpu_bf16_units, cpu_name

DOC = REPO / "docs" / "serving.md"
PNG = REPO / "docs" / "serving_load.png"
PASSAGE_TOKENS = 128
P99_TARGET_S = 2.0
CLIENT_TIMEOUT_S = 330.0  # above the server's --request-timeout: the server decides, not the client


@dataclass
class Outcome:
    status: int  # HTTP status, or 0 when the connection failed
    seconds: float
    correct: bool


def passages_range(spec: str) -> tuple[int, int]:
    """``--passages``: "20" (every request) or "2..5" (drawn per request, both ends included)."""
    low, _, high = spec.partition("..")
    try:
        bounds = int(low), int(high or low)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--passages takes N or LOW..HIGH, not {spec!r}") from None
    if not 1 <= bounds[0] <= bounds[1]:
        raise argparse.ArgumentTypeError(f"--passages needs 1 <= LOW <= HIGH, not {spec!r}")
    return bounds


def describe_passages(passages: tuple[int, int]) -> str:
    low, high = passages
    return f"{low} passages" if low == high else f"{low}-{high} passages (drawn per request)"


def build_requests(model: str, count: int, passages: tuple[int, int]) -> list[dict]:
    """``count`` TEI rerank bodies: a SciFact query each, ``passages`` ~128-token passages tagged with
    its id (a seeded draw per request when ``passages`` is a range)."""
    from transformers import AutoTokenizer

    draw = random.Random(0)
    sizes = [draw.randint(*passages) for _ in range(count)]
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(model))
    scifact = DATA / "beir" / "scifact"
    queries = [json.loads(line)["text"] for line in (scifact / "queries.jsonl").open()][:count]
    pool: list[str] = []
    with (scifact / "corpus.jsonl").open() as corpus:
        for line in corpus:
            ids = tokenizer(json.loads(line)["text"], add_special_tokens=False)["input_ids"]
            pool += [
                tokenizer.decode(ids[i : i + PASSAGE_TOKENS]) for i in range(0, len(ids) - 64, PASSAGE_TOKENS)
            ]
            if len(pool) >= sum(sizes):
                break
    bodies, start = [], 0
    for i, (query, size) in enumerate(zip(queries, sizes, strict=False)):
        texts = [f"[r{i}] {p}" for p in pool[start : start + size]]
        start += size
        bodies.append({"query": query, "texts": texts, "return_text": True, "id": i})
    return bodies


def check(body: dict, reply: httpx.Response) -> bool:
    """All of this request's passages came back once, and only this request's."""
    results = reply.json()
    indices = sorted(r["index"] for r in results)
    own = all(
        r["text"] == body["texts"][r["index"]] and r["text"].startswith(f"[r{body['id']}] ") for r in results
    )
    return indices == list(range(len(body["texts"]))) and own


async def send(client: httpx.AsyncClient, body: dict) -> Outcome:
    payload = {k: v for k, v in body.items() if k != "id"}
    started = time.perf_counter()
    try:
        reply = await client.post("/rerank", json=payload)
    except httpx.HTTPError:
        return Outcome(0, time.perf_counter() - started, False)
    seconds = time.perf_counter() - started
    return Outcome(reply.status_code, seconds, reply.status_code == 200 and check(body, reply))


async def closed_loop(url: str, bodies: list[dict], clients: int) -> float:
    """Requests per second with ``clients`` clients, each sending its next request when the last returns."""
    pending = list(bodies)
    outcomes: list[Outcome] = []

    async def client_loop(client: httpx.AsyncClient) -> None:
        while pending:
            outcomes.append(await send(client, pending.pop()))

    async with httpx.AsyncClient(base_url=url, timeout=CLIENT_TIMEOUT_S) as client:
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(clients)))
        wall = time.perf_counter() - started
    bad = [(o.status, o.correct) for o in outcomes if o.status != 200 or not o.correct]
    if bad:
        raise SystemExit(f"requests failed or got another's answer (status, correct): {bad[:5]}")
    return len(outcomes) / wall


async def open_loop(url: str, bodies: list[dict], rate: float, seconds: float, server_pid: int) -> dict:
    """Offer ``rate`` requests/s for ``seconds`` (arrivals on a fixed schedule, whatever the answers)."""
    total = max(1, int(rate * seconds))
    memory: list[float] = []
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=url, timeout=CLIENT_TIMEOUT_S, limits=limits) as client:
        started = time.perf_counter()
        tasks = []
        for i in range(total):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(client, bodies[i % len(bodies)])))
            if i % max(1, int(rate)) == 0:
                memory.append(rss_mib(server_pid))
        outcomes = await asyncio.gather(*tasks)
    memory.append(rss_mib(server_pid))
    admitted = [o for o in outcomes if o.status == 200]
    rejected = [o for o in outcomes if o.status in (429, 503)]
    return {
        "offered_rps": rate,
        "sent": total,
        "admitted": len(admitted),
        "rejected": len(rejected),
        "rejected_429": sum(o.status == 429 for o in outcomes),
        "rejected_503": sum(o.status == 503 for o in outcomes),
        "server_errors": sum(o.status >= 500 and o.status != 503 for o in outcomes),
        "failed_connections": sum(o.status == 0 for o in outcomes),
        "other": sum(o.status not in (0, 200, 429, 503) and o.status < 500 for o in outcomes),
        "wrong_answers": sum(o.status == 200 and not o.correct for o in outcomes),
        "admitted_rps": len(admitted) / seconds,
        "p50_s": percentile([o.seconds for o in admitted], 50),
        "p99_s": percentile([o.seconds for o in admitted], 99),
        "reject_p99_s": percentile([o.seconds for o in rejected], 99),
        "rss_mib": memory,
    }


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]) / 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [
        sys.executable, "-m", "winnow", "serve", "--model", args.model, "--port", str(port),
        "--max-concurrent-requests", str(args.max_concurrent), "--request-timeout", str(args.request_timeout),
        "--max-batch-tokens", str(args.max_batch_tokens), "--max-wait-ms", str(args.max_wait_ms),
        "--cache-entries", "0",  # requests repeat: measure the model, not the score cache
    ]  # fmt: skip
    log = open(Path(tempfile.gettempdir()) / "winnow-serve-load.log", "w")  # closed with the process
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited: see {log.name}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.kill()
    raise SystemExit("the server did not become ready in 180 s")


def plot(steps: list[dict], overload: dict, passages: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = sorted([*steps, overload], key=lambda r: r["offered_rps"])
    offered = [r["offered_rps"] for r in runs]
    fig, left = plt.subplots(figsize=(7, 4))
    left.plot(offered, [r["p50_s"] for r in runs], "o-", label="p50 latency (admitted)")
    left.plot(offered, [r["p99_s"] for r in runs], "s-", label="p99 latency (admitted)")
    left.axhline(P99_TARGET_S, color="grey", linestyle=":", label="p99 target 2 s")
    left.set_xlabel(f"offered load (requests/s, {passages} of ~{PASSAGE_TOKENS} tokens each)")
    left.set_ylabel("seconds")
    right = left.twinx()
    shares = [r["rejected"] / r["sent"] for r in runs]
    right.bar(offered, shares, width=max(offered) / 30, alpha=0.3, color="red", label="rejected (429/503)")
    right.set_ylabel("share rejected")
    right.set_ylim(0, 1)
    lines, labels = left.get_legend_handles_labels()
    more, more_labels = right.get_legend_handles_labels()
    left.legend(lines + more, labels + more_labels, loc="upper left", fontsize=8)
    left.set_title(f"winnow serve under load ({cpu_name()})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


LEVELS = (1, 4, 8, 16)


def measure_batching(url: str, bodies: list[dict], args: argparse.Namespace) -> dict[int, list[float]]:
    """Requests/s per number of clients, per round; rounds alternate the order of the settings."""
    asyncio.run(closed_loop(url, bodies[:2], 1))  # warm-up
    rates: dict[int, list[float]] = {n: [] for n in LEVELS}
    for round_ in range(args.rounds):
        for n in LEVELS if round_ % 2 == 0 else reversed(LEVELS):
            rates[n].append(asyncio.run(closed_loop(url, bodies[: args.requests], n)))
            print(f"round {round_ + 1}: {n:2d} clients {rates[n][-1]:.2f} req/s", flush=True)
    return rates


def batching_report(rates: dict[int, list[float]], args: argparse.Namespace) -> list[str]:
    """Where and how it was measured, and the table of requests/s and ratios against one client."""
    ratios = {n: statistics.median(r / s for r, s in zip(rates[n], rates[1], strict=True)) for n in LEVELS}
    cpu = f"{cpu_name()}, bf16 units: {cpu_bf16_units() or 'none'}"
    return [
        f"Measured {time.strftime('%Y-%m-%d')} on {cpu}, 2 cores shared with other work (the load test's "
        f"client runs on the same cores). Model `{args.model}` (backend auto), "
        f"{describe_passages(args.passages)} of ~{PASSAGE_TOKENS} tokens per request, "
        f"{args.requests} requests per setting, {args.rounds} round(s), score cache off, "
        f"`--max-concurrent-requests {args.max_concurrent}` "
        f"`--request-timeout {args.request_timeout:g}` `--max-batch-tokens {args.max_batch_tokens}` "
        f"`--max-wait-ms {args.max_wait_ms:g}`.",
        "",
        "| clients | requests/s (median of rounds) | vs one after another (median ratio) |",
        "|---:|---:|---:|",
        *(f"| {n} | {statistics.median(rates[n]):.2f} | {ratios[n]:.2f}x |" for n in LEVELS),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="winnow-minilm-l6")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=32, help="requests per concurrency measurement")
    parser.add_argument(
        "--passages", type=passages_range, default=(20, 20), help="per request: N, or LOW..HIGH (default 20)"
    )
    parser.add_argument(
        "--batching-only",
        action="store_true",
        help="only the clients table, written to its own section (serve_batching) of docs/serving.md",
    )
    parser.add_argument("--overload-seconds", type=float, default=60)
    parser.add_argument("--step-seconds", type=float, default=10)
    parser.add_argument("--max-concurrent", type=int, default=8)
    parser.add_argument("--request-timeout", type=float, default=300)
    parser.add_argument("--max-batch-tokens", type=int, default=4096)
    parser.add_argument("--max-wait-ms", type=float, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/serving.md alone")
    args = parser.parse_args()

    bodies = build_requests(args.model, 200, args.passages)
    process, url = start_server(args)
    try:
        rates = measure_batching(url, bodies, args)
        if args.batching_only:
            report = "\n".join(batching_report(rates, args))
            print(report)
            if not args.no_write:
                write_section("serve_batching", report, path=DOC)
            return

        # Capacity: rising open-loop rates from half the sequential rate, until p99 > 2 s or rejects.
        steps, capacity = [], 0.0
        rate = statistics.median(rates[1]) * 0.5
        for _ in range(8):
            step = asyncio.run(open_loop(url, bodies, rate, args.step_seconds, process.pid))
            steps.append(step)
            print(
                f"offered {rate:.2f} req/s: p99 {step['p99_s']:.2f} s, rejected {step['rejected']}",
                flush=True,
            )
            if step["p99_s"] > P99_TARGET_S or step["rejected"] or step["wrong_answers"]:
                break
            capacity = rate
            rate *= 1.3
        capacity = capacity or steps[0]["offered_rps"]
        overload = asyncio.run(open_loop(url, bodies, 4 * capacity, args.overload_seconds, process.pid))
        print(json.dumps({k: v for k, v in overload.items() if k != "rss_mib"}, indent=1), flush=True)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)

    assert overload["wrong_answers"] == 0 and overload["server_errors"] == 0
    memory = overload["rss_mib"]
    o = overload
    lines = [
        *batching_report(rates, args),
        "",
        "| offered req/s | admitted req/s | p50 s | p99 s | rejected | 5xx other than 503 | wrong answers |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {r['offered_rps']:.2f} | {r['admitted_rps']:.2f} | {r['p50_s']:.2f} | {r['p99_s']:.2f} | "
            f"{r['rejected']} of {r['sent']} | {r['server_errors']} | {r['wrong_answers']} |"
            for r in [*steps, o]
        ),
        "",
        f"Capacity (p99 <= {P99_TARGET_S:g} s, nothing rejected): **{capacity:.2f} req/s**. At 4x "
        f"({4 * capacity:.2f} req/s for {args.overload_seconds:g} s): admitted p99 **{o['p99_s']:.2f} s**, "
        f"{o['rejected_429']} answered 429 and {o['rejected_503']} answered 503 (p99 of a reject: "
        f"{o['reject_p99_s'] * 1000:.0f} ms), {o['server_errors']} other 5xx, "
        f"{o['failed_connections']} failed connections, {o['wrong_answers']} wrong or crossed answers. "
        f"Server memory (RSS) over the run: {memory[0]:.0f} MiB at the start, {max(memory):.0f} MiB at "
        f"most, {memory[-1]:.0f} MiB at the end.",
    ]
    report = "\n".join(lines)
    print(report)
    if not args.no_write:
        write_section("serve_load", report, path=DOC)
        plot(steps, overload, describe_passages(args.passages), PNG)


if __name__ == "__main__":
    main()
