"""Data-parallel training under ``torchrun``: which process this is, and the few collective steps the loop needs.

``torchrun --nproc_per_node N ... ghostface train --config C`` starts N copies of the same command with
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and a rendezvous in the environment; each copy trains on its own
share of every epoch, and :class:`torch.nn.parallel.DistributedDataParallel` averages the gradients
(nccl between GPUs, gloo between CPU processes). Without those variables everything here is a no-op, so
one process trains exactly as before.
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["DistContext", "context_from_env"]

log = logging.getLogger(__name__)

# Rank 0 may compute teacher targets for a whole data set while the others wait at a barrier.
_TIMEOUT = datetime.timedelta(hours=3)


@dataclass(frozen=True, slots=True)
class DistContext:
    """This process's place in a data-parallel run (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """Whether the run has more than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes checkpoints, logs and validation files."""
        return self.rank == 0

    def setup(self, device_type: str) -> bool:
        """Join the process group (nccl for CUDA, gloo for the CPU); True when this call created it."""
        if not self.enabled or dist.is_initialized():
            return False
        backend = "nccl" if device_type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=_TIMEOUT)
        log.info("rank %d of %d joined the %s process group", self.rank, self.world_size, backend)
        return True

    def teardown(self, created: bool) -> None:
        """Leave the process group, if :meth:`setup` created it."""
        if created and dist.is_initialized():
            dist.destroy_process_group()

    def barrier(self) -> None:
        """Wait for every process; does nothing when not distributed."""
        if self.enabled:
            dist.barrier()

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is True on any.

        Stop decisions must be taken together, or the ranks that go on wait forever for the gradients of
        the ones that stopped.
        """
        if not self.enabled:
            return flag
        tensor = torch.tensor([1 if flag else 0], dtype=torch.int32)
        if dist.get_backend() == "nccl":
            tensor = tensor.cuda()
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return bool(tensor.item())

    def sync_buffers(self, module: torch.nn.Module) -> None:
        """Copy rank 0's buffers (BatchNorm running statistics) to every rank.

        DDP averages gradients, so parameters stay equal, but each rank updates its running statistics
        from its own batches: before validating or saving, all ranks take rank 0's, so they hold one model.
        """
        if self.enabled:
            for buffer in module.buffers():
                dist.broadcast(buffer, src=0)

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order (a list of one without distribution)."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out


def context_from_env() -> DistContext:
    """The run's place from torchrun's variables; rank 0 of 1 when they are absent.

    Raises:
        ValueError: the variables are present but not integers, or the rank is out of range.
    """
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise ValueError(f"torchrun's RANK / WORLD_SIZE / LOCAL_RANK must be integers: {exc}") from exc
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"RANK {rank} is not within WORLD_SIZE {world}")
    return DistContext(rank=rank, world_size=world, local_rank=local)
