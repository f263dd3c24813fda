"""Queues: where tasks go (in-process, fq://, sqs://) and the worker that drains them."""

from igneous.queues.paths import normalize_queue_path
from igneous.queues.submit import run_in_process, submit_tasks

__all__ = ["normalize_queue_path", "submit_tasks", "run_in_process"]
