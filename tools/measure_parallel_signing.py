"""Does parallel signing of a basket's legs help on this machine? (issue 15 item 4, measurement)

Run: PYTHONPATH=<a root holding polysnipe> python tools/measure_parallel_signing.py [gil handoff basket
digest overlap]
The answer on the 2 shared cores of the development machines was no (see the commit that added this);
the engine signs a basket's legs serially. Rerun it on a new machine before revisiting that.

1. GIL release: sign N digests split over 1, 2, 4 threads (each thread its own EcdsaKey), wall time.
2. Hand-off cost: an empty task round trip through ThreadPoolExecutor.submit/result, and through a
   dedicated worker thread fed by a SimpleQueue with a lock/Event reply.
3. The real question: a basket of k legs (k = 2..8) signed serially vs split over a pool of 1 worker
   + the calling thread (2 cores), medians over many baskets, interleaved basket by basket.
4. The same with only the ECDSA calls in parallel (ready digests), and where the time goes (overlap).
"""

from __future__ import annotations

import hashlib
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from queue import SimpleQueue

from polysnipe.adapters.clob.signing import EcdsaKey, OrderSigner
from polysnipe.core.messages import OrderType
from polysnipe.runners.bench_orders import bench_requests

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
perf = time.perf_counter_ns


def gil_release(n: int = 8000, rounds: int = 7) -> None:
    digests = [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(n)]
    for threads in (1, 2, 4):
        keys = [EcdsaKey(KEY) for _ in range(threads)]
        chunks = [digests[t::threads] for t in range(threads)]
        times = []
        for _ in range(rounds):
            barrier = threading.Barrier(threads + 1)

            def work(key: EcdsaKey, chunk: list[bytes], barrier: threading.Barrier = barrier) -> None:
                sign = key.sign_order_digest
                barrier.wait()
                for d in chunk:
                    sign(d)

            ts = [threading.Thread(target=work, args=(keys[t], chunks[t])) for t in range(threads)]
            for t in ts:
                t.start()
            barrier.wait()
            t0 = perf()
            for t in ts:
                t.join()
            times.append(perf() - t0)
        med = statistics.median(times)
        print(
            f"gil: {threads} thread(s): {n} signatures in {med / 1e6:7.1f} ms median "
            f"({med / n / 1000:5.1f} us/sig wall, {n / (med / 1e9):8,.0f} sig/s)"
        )


def handoff(n: int = 20000) -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        nop = int
        for _ in range(500):
            pool.submit(nop).result()
        ts = []
        for _ in range(n):
            t0 = perf()
            pool.submit(nop).result()
            ts.append(perf() - t0)
    q = sorted(ts)
    print(
        f"handoff ThreadPoolExecutor submit+result: p50 {q[len(q) // 2] / 1000:.1f} us, "
        f"p90 {q[int(len(q) * 0.9)] / 1000:.1f} us, p99 {q[int(len(q) * 0.99)] / 1000:.1f} us"
    )

    inbox: SimpleQueue[object] = SimpleQueue()
    done = threading.Lock()
    done.acquire()

    def worker() -> None:
        get = inbox.get
        release = done.release
        while True:
            item = get()
            if item is None:
                return
            release()

    th = threading.Thread(target=worker, daemon=True)
    th.start()
    ts = []
    for i in range(n + 500):
        t0 = perf()
        inbox.put(1)
        done.acquire()
        if i >= 500:
            ts.append(perf() - t0)
    inbox.put(None)
    th.join()
    q = sorted(ts)
    print(
        f"handoff SimpleQueue + Lock worker:        p50 {q[len(q) // 2] / 1000:.1f} us, "
        f"p90 {q[int(len(q) * 0.9)] / 1000:.1f} us, p99 {q[int(len(q) * 0.99)] / 1000:.1f} us"
    )


def basket(baskets: int = 3000) -> None:
    """Serial vs calling thread + 1 worker (two OrderSigners, one each), legs split in halves."""
    main_signer = OrderSigner.from_key(KEY, 137)
    worker_signer = OrderSigner.from_key(KEY, 137)
    inbox: SimpleQueue[object] = SimpleQueue()
    outbox: SimpleQueue[object] = SimpleQueue()

    def worker() -> None:
        while True:
            item = inbox.get()
            if item is None:
                return
            outbox.put([worker_signer.sign_request(r, 1).post_body("o", OrderType.GTC) for r in item])  # type: ignore[attr-defined]

    th = threading.Thread(target=worker, daemon=True)
    th.start()
    pool = ThreadPoolExecutor(max_workers=1)
    pool.submit(int).result()
    pool_signer = OrderSigner.from_key(KEY, 137)
    for k in (2, 3, 4, 6, 8):
        reqs = bench_requests(k * baskets, neg_risk=True)
        serial, queue_par, pool_par = [], [], []
        for b in range(baskets):
            legs = reqs[b * k : (b + 1) * k]
            half = k // 2
            # serial
            t0 = perf()
            s = [main_signer.sign_request(r, 1).post_body("o", OrderType.GTC) for r in legs]
            serial.append(perf() - t0)
            # worker via queues: worker takes the first half, caller the rest
            t0 = perf()
            inbox.put(legs[:half])
            mine = [main_signer.sign_request(r, 1).post_body("o", OrderType.GTC) for r in legs[half:]]
            theirs = outbox.get()
            p = theirs + mine  # type: ignore[operator]
            queue_par.append(perf() - t0)
            # ThreadPoolExecutor
            t0 = perf()
            fut = pool.submit(
                lambda ls: [pool_signer.sign_request(r, 1).post_body("o", OrderType.GTC) for r in ls],
                legs[:half],
            )
            mine = [main_signer.sign_request(r, 1).post_body("o", OrderType.GTC) for r in legs[half:]]
            p2 = fut.result() + mine
            pool_par.append(perf() - t0)
            assert s == p == p2

        def st(xs: list[int]) -> str:
            q = sorted(xs)
            return (
                f"p50 {q[len(q) // 2] / 1000:6.1f} p90 {q[int(len(q) * 0.9)] / 1000:6.1f} "
                f"p99 {q[int(len(q) * 0.99)] / 1000:6.1f}"
            )

        print(f"basket k={k}: serial {st(serial)} | queue {st(queue_par)} | pool {st(pool_par)}")
    inbox.put(None)
    pool.shutdown()


def digest_split(baskets: int = 3000) -> None:
    """Only the signatures in parallel: the caller hashes every leg, a dedicated worker signs the first
    half of the ready digests (pure C, GIL released), the caller the rest."""
    main_key, worker_key = EcdsaKey(KEY), EcdsaKey(KEY)
    inbox: SimpleQueue[object] = SimpleQueue()
    outbox: SimpleQueue[object] = SimpleQueue()

    def worker() -> None:
        sign = worker_key.sign_order_digest
        while True:
            item = inbox.get()
            if item is None:
                return
            outbox.put([sign(d) for d in item])  # type: ignore[attr-defined]

    th = threading.Thread(target=worker, daemon=True)
    th.start()
    for k in (2, 3, 4, 6, 8):
        digests = [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(k * baskets)]
        serial, par = [], []
        for b in range(baskets):
            legs = digests[b * k : (b + 1) * k]
            half = k // 2
            t0 = perf()
            s = [main_key.sign_order_digest(d) for d in legs]
            serial.append(perf() - t0)
            t0 = perf()
            inbox.put(legs[:half])
            mine = [main_key.sign_order_digest(d) for d in legs[half:]]
            p = outbox.get() + mine  # type: ignore[operator]
            par.append(perf() - t0)
            assert s == p

        def st(xs: list[int]) -> str:
            q = sorted(xs)
            return (
                f"p50 {q[len(q) // 2] / 1000:6.1f} p90 {q[int(len(q) * 0.9)] / 1000:6.1f} "
                f"p99 {q[int(len(q) * 0.99)] / 1000:6.1f}"
            )

        print(f"signatures only k={k}: serial {st(serial)} | worker+caller {st(par)}", flush=True)
    inbox.put(None)


def overlap(baskets: int = 2000) -> None:
    """Where a 2-thread basket loses: k=8 ready digests, the worker signs 4, the caller 4; timestamps
    of the worker's wake-up and both halves' durations."""
    import os

    mk, wk = EcdsaKey(KEY), EcdsaKey(KEY)
    inbox: SimpleQueue[object] = SimpleQueue()
    outbox: SimpleQueue[tuple[list[bytes], int, int]] = SimpleQueue()

    def worker() -> None:
        sign = wk.sign_order_digest
        while True:
            item = inbox.get()
            if item is None:
                return
            t1 = perf()
            r = [sign(d) for d in item]  # type: ignore[attr-defined]
            outbox.put((r, t1, perf()))

    threading.Thread(target=worker, daemon=True).start()
    k = 8
    ds = [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(k * baskets)]
    wake, wdur, mdur, total, serial = [], [], [], [], []
    for b in range(baskets):
        legs = ds[b * k : (b + 1) * k]
        t0 = perf()
        [mk.sign_order_digest(d) for d in legs]
        serial.append(perf() - t0)
        t0 = perf()
        inbox.put(legs[:4])
        m1 = perf()
        [mk.sign_order_digest(d) for d in legs[4:]]
        m2 = perf()
        _, w1, w2 = outbox.get()
        total.append(perf() - t0)
        wake.append(w1 - t0)
        wdur.append(w2 - w1)
        mdur.append(m2 - m1)
    inbox.put(None)

    def med(xs: list[int]) -> float:
        return statistics.median(xs) / 1000

    print(
        f"overlap (load {os.getloadavg()[0]:.2f}): serial 8 sigs {med(serial):.1f} us | parallel total "
        f"{med(total):.1f} us: worker starts after {med(wake):.1f} us, worker 4 sigs {med(wdur):.1f} us, "
        f"caller 4 sigs {med(mdur):.1f} us"
    )


if __name__ == "__main__":
    what = sys.argv[1:] or ["gil", "handoff", "basket", "digest", "overlap"]
    if "gil" in what:
        gil_release()
    if "handoff" in what:
        handoff()
    if "basket" in what:
        basket()
    if "digest" in what:
        digest_split()
    if "overlap" in what:
        overlap()
