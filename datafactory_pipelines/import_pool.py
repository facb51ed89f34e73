"""Reading and standardizing many files in worker processes side by side, in order, while the caller saves
the ones before them; a file that kills its reader process is rejected, and the others go on."""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datafactory_pipelines.pipeline import FileOutcome, ReadyImport

log = logging.getLogger(__name__)
#: what a worker's fork server imports once, before any file: the import path the readers run
PRELOADED = "datafactory_pipelines.pipeline"


def import_workers(files: int) -> int:
    """Worker processes for reading and standardizing `files` files: one per core, none for one file."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 0 if files < 2 or cores < 2 else min(cores, files)


def _worker_context() -> multiprocessing.context.BaseContext:
    """Workers come from a fork server that has imported the library once (a spawned worker imports it
    itself, a second or more each). Not forked from this process: a fork of a process that has used
    DuckDB can crash in the child."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([PRELOADED])
        return context
    return multiprocessing.get_context("spawn")


def _read_in_order(paths: Sequence[str | Path], imported_by: str, workers: int,
                   reader: Callable[..., ReadyImport | FileOutcome]) -> Iterator[ReadyImport | FileOutcome]:
    """Each file read, in the order given. A reader process that dies (killed for memory, a crash in a
    parser) breaks its pool: the first file not yet read is read again in a process of its own, and
    rejected if it kills that one too; a new pool goes on with the files after it."""
    if workers < 1:
        for path in paths:
            yield reader(path, imported_by, arrow=False)
        return
    paths = list(paths)
    done = 0
    while done < len(paths):
        try:
            for ready in _read_in_pool(paths[done:], imported_by, workers, reader):
                done += 1
                yield ready
        except BrokenProcessPool:
            log.warning("a reader process died while %s or a file after it was read; reading it alone",
                        Path(paths[done]).name)
            done += 1
            yield _read_alone(paths[done - 1], imported_by, reader)


def _read_in_pool(paths: Sequence[str | Path], imported_by: str, workers: int,
                  reader: Callable[..., ReadyImport | FileOutcome]) -> Iterator[ReadyImport | FileOutcome]:
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=_worker_context())
    try:
        waiting = iter(paths)
        # a few files ahead of the saving, not all of them: memory stays at a few files' worth
        pending = deque(pool.submit(reader, path, imported_by) for path in islice(waiting, 2 * workers))
        while pending:
            ready = pending.popleft().result()
            following = next(waiting, None)
            if following is not None:
                pending.append(pool.submit(reader, following, imported_by))
            yield ready
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _read_alone(path: str | Path, imported_by: str,
                reader: Callable[..., ReadyImport | FileOutcome]) -> ReadyImport | FileOutcome:
    """One file read in a process of its own: a file that kills its reader is rejected, not retried forever."""
    pool = ProcessPoolExecutor(max_workers=1, mp_context=_worker_context())
    try:
        return pool.submit(reader, path, imported_by).result()
    except BrokenProcessPool:
        name = Path(path).name
        log.error("%s killed its reader process; rejected", name)
        from datafactory_pipelines.pipeline import FileOutcome  # (the pipeline imports this module)

        return FileOutcome(Path(path), None, "rejected",
                           error=f"{name}: the process reading this file died (out of memory, or a crash while "
                                 "parsing it); nothing of it was saved. Check the file, then drop it again.")
    finally:
        pool.shutdown(wait=True)
