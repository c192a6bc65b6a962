"""Scenarios through the whole pipeline: API → outbox → relay → RabbitMQ → worker → bank."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time

import loadgen
import payloads
import pipeline
import profiling
import stack
from scenarios import Config, fresh

SLOW_BANK_LIMIT_S = 300.0
DRAIN_STALL_S = 60.0  # no payment became final for this long: the rest is stuck or lost
SLOW_BANK_TARGET_S = 6.0  # the probe runs at most this long, so it adds few payments
SLOW_BANK_IDLE_S = 3.0  # the probe's idle window before each burst


async def _sample(progress: pipeline.Progress, samples: list[tuple[float, int, int]]) -> None:
    """Every second: (time, jobs, final jobs)."""
    while True:
        jobs, final, _ = await progress.counts()
        samples.append((time.perf_counter(), jobs, final))
        await asyncio.sleep(1.0)


def _completed_per_s(samples: list[tuple[float, int, int]], since: float) -> float:
    window = [s for s in samples if s[0] >= since]
    if len(window) < 2:
        return 0.0
    (t0, _, f0), (t1, _, f1) = window[0], window[-1]
    return round((f1 - f0) / (t1 - t0), 1)


async def end_to_end(cfg: Config) -> dict[str, object]:
    """Payments accepted at full load for `e2e_s`, bank at 0 ms: completions per second,
    how far the pipeline lags behind, and none lost."""
    async with fresh(cfg, "e2e") as env:
        flow = pipeline.start_pipeline(
            env.group, bank_latency_ms=0, worker_concurrency=cfg.worker_concurrency
        )
        progress = await pipeline.Progress.open(env.database)
        sampling = await pipeline.Progress.open(env.database)  # a connection of its own
        samples: list[tuple[float, int, int]] = []
        sampler = asyncio.create_task(_sample(sampling, samples))
        meter = _meter(flow, env.database)
        await meter.start()
        started = time.perf_counter()
        result = await loadgen.run_load(
            flow.url, payloads.payments(env.api_key), connections=cfg.connections,
            seconds=cfg.e2e_s, client=cfg.client,
        )  # fmt: skip
        ended = time.perf_counter()
        accepted = result.statuses[202]
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        await sampling.close()
        final, drain_s = await progress.wait_final(accepted, DRAIN_STALL_S)
        spent = await meter.stop()
        _, _, failed = await progress.counts()
        figures = {
            "seconds": round(ended - started, 1),
            "accept": result.summary(),
            "completed_per_s": _completed_per_s(samples, started),
            "completed_per_s_second_half": _completed_per_s(samples, (started + ended) / 2),
            "max_backlog": max((jobs - done for _, jobs, done in samples), default=0),
            "drain_after_load_s": round(drain_s, 2),
            "accept_to_final_ms": await progress.completion_latency_ms(),
            "accepted": accepted,
            "final": final,
            "failed": failed,
            "lost": accepted - final,
            "cpu_ms_per_payment": {k: round(1000 * v / max(1, final), 3) for k, v in spent.items()},
            "payments_per_worker_statement": pipeline.batch_sizes(flow.worker_metrics),
        }
        await progress.close()
        return figures


E2E_STEPS = (200, 300, 400, 500)  # offered payments per second; the last is the target


async def end_to_end_steps(cfg: Config) -> dict[str, object]:
    """Payments offered at a fixed rate, step by step (`E2E_STEPS`: `e2e_s / 6` each, the
    last for the whole `e2e_s`), bank at 0 ms: at each rate, are they completed as fast
    as they come? Unlike `e2e`, whose closed loop accepts as fast as the API can and so
    takes CPU from the pipeline behind it, this finds the rate the whole chain sustains
    on this machine."""
    async with fresh(cfg, "e2e_steps") as env:
        flow = pipeline.start_pipeline(
            env.group, bank_latency_ms=0, worker_concurrency=cfg.worker_concurrency
        )
        progress = await pipeline.Progress.open(env.database)
        make = payloads.payments(env.api_key)
        steps, accepted, offset = [], 0, 0
        for rate in E2E_STEPS:
            step_s = cfg.e2e_s if rate == E2E_STEPS[-1] else max(5.0, cfg.e2e_s / 6)
            _, before, _ = await progress.counts()
            began = time.perf_counter()
            result = await loadgen.run_load(
                flow.url, lambda n, offset=offset: make(offset + n), connections=cfg.connections,
                seconds=step_s, client=cfg.client, rate=rate,
            )  # fmt: skip
            jobs, final, _ = await progress.counts()
            elapsed = time.perf_counter() - began
            offset += 10_000_000
            accepted += result.statuses[202]
            steps.append({
                "offered_per_s": rate,
                "seconds": round(elapsed, 1),
                "accepted_per_s": round(result.statuses[202] / elapsed, 1),
                "completed_per_s": round((final - before) / elapsed, 1),
                "backlog_at_end": jobs - final,
                "accept_p99_ms": result.summary()["p99_ms"],
            })  # fmt: skip
        final, drain_s = await progress.wait_final(accepted, DRAIN_STALL_S)
        figures = {
            "steps": steps,
            "sustained_per_s": max(
                (step["offered_per_s"] for step in steps
                 if step["completed_per_s"] >= 0.95 * step["offered_per_s"]
                 and step["backlog_at_end"] <= step["offered_per_s"]),
                default=0,
            ),
            "accepted": accepted,
            "lost": accepted - final,
            "drain_after_load_s": round(drain_s, 2),
        }  # fmt: skip
        await progress.close()
        return figures


async def profile_pipeline(cfg: Config) -> dict[str, object]:
    """py-spy on the worker and the relay while payments flow end to end (bank at 0 ms)."""
    async with fresh(cfg, "profile_pipeline") as env:
        flow = pipeline.start_pipeline(
            env.group, bank_latency_ms=0, worker_concurrency=cfg.worker_concurrency
        )
        make = payloads.payments(env.api_key)
        await loadgen.run_load(flow.url, make, connections=cfg.connections, seconds=cfg.warmup_s)
        outputs = {
            name: cfg.results / f"{name}-profile.collapsed.txt" for name in ("worker", "relay")
        }
        recorders = [
            profiling.record(flow.worker.pid, cfg.measure_s, outputs["worker"]),
            profiling.record(flow.relay.pid, cfg.measure_s, outputs["relay"]),
        ]
        result = await loadgen.run_load(
            flow.url, lambda n: make(10_000_000 + n), connections=cfg.connections,
            seconds=cfg.measure_s, client=cfg.client,
        )  # fmt: skip
        for recorder in recorders:
            await asyncio.to_thread(recorder.wait, 60)
        figures: dict[str, object] = {"load": result.summary()}
        for name, output in outputs.items():
            figures[name] = profiling.summarize(output)
        return figures


def _meter(flow: pipeline.Pipeline, database: str, *, bench: bool = False) -> stack.CpuMeter:
    """CPU of every process a payment passes through (RabbitMQ's node is shared), and with
    `bench` of this process."""
    processes = {"api": flow.api, "relay": flow.relay, "worker": flow.worker, "bank": flow.bank}
    pids = {name: [process.pid] for name, process in processes.items()}
    pids["rabbitmq"] = stack.pids_named("beam.smp")
    if bench:
        pids["bench"] = [os.getpid()]
    return stack.CpuMeter(pids, database)


def _cores(spent: dict[str, float], seconds: float) -> dict[str, float]:
    """CPU seconds per process over `seconds`: the cores each used, and in all."""
    cores = {name: round(cpu / seconds, 2) for name, cpu in spent.items()}
    return cores | {"all": round(sum(spent.values()) / seconds, 2)}


async def slow_bank(cfg: Config) -> dict[str, object]:
    """2,000 payments with the bank at 1 s and one worker: time from the last accept until
    all are final. A light accept probe runs before each burst (idle) and while the worker
    drains it (for at most `SLOW_BANK_TARGET_S`: ~100 payments more in a 2.5 s drain).

    `slow_rounds` bursts (3; 1 with `--quick`), each after an idle window, so the two sides
    alternate and the p99s are of a few hundred answers each: one burst's drain gives the
    probe ~100, whose p99 is their second-worst. The probe's first answers after start-up
    (connections opened, caches filled) are left out of both. The cores each process used
    while the worker drained are reported with them (`bench`: this process, the probe's
    client and the poll)."""
    async with fresh(cfg, "slowbank") as env:
        flow = pipeline.start_pipeline(
            env.group, bank_latency_ms=1000, worker_concurrency=cfg.worker_concurrency
        )
        progress = await pipeline.Progress.open(env.database)
        make = payloads.payments(env.api_key)
        warm = await _probe(flow.url, make, 900_000, seconds=2.0)
        accepted = warm.statuses[202]
        idle: list[loadgen.LoadResult] = []
        busy: list[loadgen.LoadResult] = []
        rounds: list[dict[str, object]] = []
        final_s: list[float] = []
        drain_cpu: dict[str, float] = {}
        unfinished = 0
        for round_ in range(cfg.slow_rounds):
            await progress.wait_final(accepted, DRAIN_STALL_S)
            offset = 1_000_000 * (round_ + 1)
            idle.append(await _probe(flow.url, make, offset, seconds=SLOW_BANK_IDLE_S))
            ids: list[str] = []
            burst = await loadgen.run_load(
                flow.url, lambda n, o=offset: make(o + 100_000 + n),
                connections=cfg.connections, total=cfg.slow_payments, client=cfg.client,
                on_answer=payloads.job_ids(ids),
            )  # fmt: skip
            done = asyncio.Event()
            probe = asyncio.create_task(
                _probe(flow.url, make, offset + 500_000, seconds=SLOW_BANK_TARGET_S, stop=done)
            )
            meter = _meter(flow, env.database, bench=True)
            await meter.start()
            after_last_accept_s = await _until_final(progress, ids, burst.last_answer_at)
            spent = await meter.stop()
            done.set()
            busy.append(await probe)
            final_s.append(round(after_last_accept_s, 2))
            unfinished += (left := await progress.unfinished(ids))
            rounds.append(
                {
                    "payments": len(ids),
                    "burst": burst.summary(),
                    "final_after_last_accept_s": final_s[-1],
                    "unfinished": left,
                    "probe_idle": idle[-1].summary(),
                    "probe_while_draining": busy[-1].summary(),
                    "drain_cores": _cores(spent, after_last_accept_s),
                }
            )
            drain_cpu = {name: drain_cpu.get(name, 0.0) + spent[name] for name in spent}
            accepted += idle[-1].statuses[202] + burst.statuses[202] + busy[-1].statuses[202]
        await progress.close()
        return {
            "payments": cfg.slow_payments,
            "final_after_last_accept_s": max(final_s),  # the slowest round
            "final_after_last_accept_s_by_round": final_s,
            "unfinished": unfinished,
            "probe_idle": loadgen.LoadResult.pooled(idle).summary(),
            "probe_while_draining": loadgen.LoadResult.pooled(busy).summary(),
            "drain_cores": _cores(drain_cpu, sum(final_s)),
            "rounds": rounds,
        }


async def _until_final(progress: pipeline.Progress, ids: list[str], since: float) -> float:
    """Seconds from `since` (a `perf_counter` time) until every job in `ids` is final.

    The measurement shares the two cores with what it measures, and a poll of all 2,000
    ids costs PostgreSQL ~2 ms. So each poll asks only for the jobs the one before found
    unfinished, and polls come every 250 ms while more than 100 are left, every 50 ms
    after that. When the last hundreds settle together, the end is seen up to 250 ms
    late: the figure errs long, never short."""
    left = ids
    while time.perf_counter() - since < SLOW_BANK_LIMIT_S:
        left = await progress.unfinished_ids(left)
        if not left:
            break
        await asyncio.sleep(0.25 if len(left) > 100 else 0.05)
    return time.perf_counter() - since


async def _probe(
    url: str,
    make: loadgen.MakeRequest,
    offset: int,
    *,
    seconds: float | None = None,
    stop: asyncio.Event | None = None,
) -> loadgen.LoadResult:
    """Two connections, each one payment per 50 ms: latency, not throughput."""
    return await loadgen.run_load(
        url, lambda n: make(offset + n), connections=2, seconds=seconds, stop=stop, pause_s=0.05
    )


async def memory(cfg: Config) -> dict[str, object]:
    """RSS of the API and the worker after a warm-up and after `memory_payments` more."""
    async with fresh(cfg, "memory") as env:
        flow = pipeline.start_pipeline(
            env.group, bank_latency_ms=0, worker_concurrency=cfg.worker_concurrency
        )
        progress = await pipeline.Progress.open(env.database)
        make = payloads.payments(env.api_key)
        pids = {"api": flow.api.pid, "worker": flow.worker.pid}
        warm = max(2_000, cfg.memory_payments // 10)
        warmed = await _run_and_drain(cfg, flow.url, make, 0, warm, progress, 0)
        before = _rss(pids)
        peak = dict(before)
        watcher = asyncio.create_task(_watch_peak(pids, peak))
        result = await _run_and_drain(
            cfg, flow.url, make, warm, cfg.memory_payments, progress, warmed.statuses[202]
        )
        watcher.cancel()
        after = _rss(pids)
        await progress.close()
        return {
            "warm_up_payments": warm,
            "payments": cfg.memory_payments,
            "accept": result.summary(),
            "rss_mib_after_warm_up": before,
            "rss_mib_after": after,
            "rss_mib_peak": peak,
            "growth_pct": {k: round(100 * (after[k] - before[k]) / before[k], 1) for k in before},
        }


async def _run_and_drain(
    cfg: Config,
    url: str,
    make: loadgen.MakeRequest,
    offset: int,
    total: int,
    progress: pipeline.Progress,
    already_final: int,
) -> loadgen.LoadResult:
    result = await loadgen.run_load(
        url, lambda n: make(offset + n), connections=cfg.connections, total=total,
        client=cfg.client,
    )  # fmt: skip
    await progress.wait_final(already_final + result.statuses[202], DRAIN_STALL_S)
    return result


async def _watch_peak(pids: dict[str, int], peak: dict[str, float]) -> None:
    while True:
        for name, value in _rss(pids).items():
            peak[name] = max(peak[name], value)
        await asyncio.sleep(1.0)


def _rss(pids: dict[str, int]) -> dict[str, float]:
    return {name: round(stack.rss_mib(pid), 1) for name, pid in pids.items()}
