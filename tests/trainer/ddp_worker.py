"""One rank of the two-process test: trains as ``ghostface train`` does, then records what it holds.

Started by ``torchrun`` (see test_distributed.py); writes ``rank<R>.pt`` with the rank's final weights,
per-epoch history and the number of crops it trained on, beside the run folder.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from trainer.config import load_config
from trainer.loop import Trainer


def main() -> None:
    config_path, out = Path(sys.argv[1]), Path(sys.argv[2])
    torch.set_num_threads(1)
    trainer = Trainer(load_config(config_path))
    seen: list[int] = []
    trainer.add_callback("on_batch_end", lambda t: seen.append(t.state.step))
    result = trainer.fit()
    assert trainer.model is not None
    state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    rank = int(os.environ["RANK"])
    torch.save(
        {
            "state": state,
            "history": list(result.history),
            "steps": len(seen),
            "world": trainer.dist.world_size,
        },
        out / f"rank{rank}.pt",
    )


if __name__ == "__main__":
    main()
