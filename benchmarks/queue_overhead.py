#!/usr/bin/env python
"""Queue overhead with trivial tasks: what the queue and the worker cost per task.

    python benchmarks/queue_overhead.py [--tasks 20000] [--sqs-tasks 300]

* fq:// insert: tasks/s of ``igneous.queues.submit_tasks`` into a new file queue.
* fq:// lease+execute+delete: tasks/s of one worker loop (``igneous.queues.worker.work``, one
  process) draining trivial tasks that append one line to a file.
* SQS on a moto server on loopback: the same per-task costs, in ms (moto's, not AWS's).

Targets (issue 4): fq insert >= 5k tasks/s; lease+execute+delete >= 500 tasks/s per process.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ["IGNEOUS_TASK_MODULES"] = "tests.worker_tasks"

from igneous.queues import submit_tasks  # noqa: E402
from igneous.queues.worker import WorkerOptions, work  # noqa: E402
from tests.worker_tasks import count_tasks  # noqa: E402


def file_queue(n: int, work_dir: str) -> dict:
    logs = os.path.join(work_dir, "logs")
    os.makedirs(logs)
    q = f"fq://{work_dir}/q"
    subprocess.run(["sync"], check=False)
    t0 = time.perf_counter()
    submit_tasks(count_tasks(logs, n), queue=q, progress=False)
    insert_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = work(WorkerOptions(queue=q, exit_on_empty=True, quiet=True))
    run_s = time.perf_counter() - t0
    assert report.executed == n, report
    return {"tasks": n, "insert_tasks_s": n / insert_s, "lease_execute_delete_tasks_s": n / run_s}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sqs_queue(n: int, work_dir: str) -> dict:
    port = free_port()
    server = subprocess.Popen(
        ["moto_server", "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        os.environ.update(
            AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
            AWS_ACCESS_KEY_ID="x",
            AWS_SECRET_ACCESS_KEY="x",
            AWS_SESSION_TOKEN="x",
            AWS_DEFAULT_REGION="us-east-1",
        )
        import boto3

        deadline = time.time() + 30
        while True:
            try:
                boto3.client("sqs").create_queue(QueueName="bench")
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        logs = os.path.join(work_dir, "sqs-logs")
        os.makedirs(logs)
        t0 = time.perf_counter()
        submit_tasks(count_tasks(logs, n), queue="sqs://bench", progress=False)
        insert_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        report = work(WorkerOptions(queue="sqs://bench", exit_on_empty=True, quiet=True, lease_seconds=60))
        run_s = time.perf_counter() - t0
        return {
            "tasks": n,
            "executed": report.executed,
            "insert_ms_per_task": 1000 * insert_s / n,
            "lease_execute_delete_ms_per_task": 1000 * run_s / n,
            "includes_drain_check_s": "~2-3",
        }
    finally:
        server.terminate()
        server.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--sqs-tasks", type=int, default=300)
    args = parser.parse_args()
    work_dir = tempfile.mkdtemp(prefix="igneous-queue-bench-")
    try:
        results = {"fq": file_queue(args.tasks, work_dir)}
        if shutil.which("moto_server") and args.sqs_tasks > 0:
            results["sqs_moto"] = sqs_queue(args.sqs_tasks, work_dir)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    print(json.dumps(results, indent=2))
    fq = results["fq"]
    print(
        f"fq insert {fq['insert_tasks_s']:.0f} tasks/s (target >= 5000); "
        f"lease+execute+delete {fq['lease_execute_delete_tasks_s']:.0f} tasks/s (target >= 500)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
