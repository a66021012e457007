"""A miniature training phase for the kill-and-resume test (test-only; product code never runs it).

It has the shape of a real self-play phase: rounds of "workers play games
with the current model and write replay shards, then the trainer takes the
newest window and applies optimiser steps", with a prioritised replay buffer
whose priorities are updated from the value error. Games are synthetic (a
tiny MLP on random features) so a run takes seconds, but every position
depends on the model's weights at the time it was generated, so any lost,
repeated or reordered shard or step changes the final weights.

    python kill_resume_phase.py --store DIR --out WEIGHTS.pt [--seed 0]

Run it again after a SIGKILL and it resumes: generation from each worker's
last shard cursor, training from the latest checkpoint. It prints one line
per game and per step (so a test can kill it at a chosen moment) and writes
the final weights to ``--out`` when the phase is complete.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch

from ouroboros.trainer.artifacts.store import ArtifactStore
from ouroboros.trainer.learning import checkpoint as ck
from ouroboros.trainer.learning import replay, shards

RUN, PHASE = "kill-resume", "self_play"
ROUNDS, WORKERS, GAMES_PER_WORKER, STEPS_PER_ROUND = 3, 2, 8, 24
EVERY, BATCH, FEATURES = 5, 16, 16
REPLAY = replay.ReplayConfig(
    shard_rows=24, window_positions=160, quality_threshold=0.2, priority_alpha=0.6, recency_half_life=80
)


class Net(torch.nn.Module):
    """features [B, 16] -> policy logits [B, 4], value [B]."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = torch.nn.Sequential(
            torch.nn.Linear(FEATURES, 32), torch.nn.ReLU(), torch.nn.Dropout(0.1)
        )
        self.policy = torch.nn.Linear(32, 4)
        self.value = torch.nn.Linear(32, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(x)
        return self.policy(h), torch.tanh(self.value(h)).squeeze(-1)


def play(model: Net, seed: int, game_id: int) -> dict[str, np.ndarray]:
    """One synthetic game: 3..9 positions whose moves are sampled from the model's policy."""
    rng = np.random.default_rng([seed, game_id])
    n = int(rng.integers(3, 10))
    x = rng.standard_normal((n, FEATURES)).astype(np.float32)
    model.eval()
    with torch.no_grad():
        logits, value = model(torch.from_numpy(x))
    gumbel = -np.log(-np.log(rng.random((n, 4))))
    move = np.argmax(logits.numpy() + gumbel, axis=1).astype(np.int8)
    outcome = 1.0 if float(value.mean()) + rng.normal() > 0 else -1.0
    return {
        "planes": x.reshape(n, 1, 4, 4),
        "move": move,
        "value": np.full(n, outcome, np.float32),
        "game_id": np.full(n, game_id),
        "turn": np.arange(n),
        "seat": np.zeros(n),
        "quality": replay.position_quality(
            np.full(n, n * 6), rng.random() < 0.8, 0.5, rng.random(n) < 0.1
        ),
    }


def generate(store: ArtifactStore, model: Net, seed: int, round_: int) -> None:
    """Each worker plays its games of rounds 0..round_ that are not in a shard yet."""
    for worker in range(WORKERS):
        writer = shards.ReplayWriter(store, RUN, PHASE, worker, shard_rows=REPLAY.shard_rows)
        done, target = int(writer.cursor or 0), (round_ + 1) * GAMES_PER_WORKER
        for g in range(done, target):
            game_id = g * WORKERS + worker
            writer.add("mlp", play(model, seed, game_id), cursor=g + 1)
            print(f"game {game_id}", flush=True)
        writer.flush(cursor=target)


def step_fn(seed: int):
    def step(state: ck.TrainState, buffer: replay.ReplayBuffer, index: int) -> dict[str, float]:
        batch = buffer.sample(BATCH, ck.step_rng(seed, index))
        x = torch.from_numpy(batch.columns["planes"].reshape(BATCH, FEATURES))
        state.model.train()
        logits, value = state.model(x)
        target = torch.from_numpy(batch.columns["value"])
        weights = torch.from_numpy(batch.weights)
        policy_loss = torch.nn.functional.cross_entropy(
            logits, torch.from_numpy(batch.columns["move"].astype(np.int64)), reduction="none"
        )
        loss = (weights * (policy_loss + (value - target) ** 2)).mean()
        state.optimizer.zero_grad()
        loss.backward()
        state.optimizer.step()
        buffer.update_priorities(batch.indices, (value - target).detach().numpy())
        print(f"step {index}", flush=True)
        return {"loss": loss.item()}

    return step


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # bit-for-bit reproducible on the CPU
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    store = ArtifactStore(args.store)
    model = Net()
    state = ck.TrainState(model, torch.optim.Adam(model.parameters(), lr=3e-3))
    loop = ck.ResumableLoop(
        ck.Checkpointer(store, f"runs/{RUN}/checkpoints/{PHASE}"), step_fn(args.seed), every=EVERY, config=REPLAY
    )
    state = loop.restore(state)
    print(f"resumed at step {state.step}", flush=True)
    for round_ in range(state.step // STEPS_PER_ROUND, ROUNDS):
        generate(store, state.model, args.seed, round_)
        buffer = replay.ReplayBuffer.load(store, RUN, [PHASE], REPLAY, state=state.data_state)
        state.iteration = round_
        state = loop.run(state, buffer, (round_ + 1) * STEPS_PER_ROUND)
    tmp = f"{args.out}.tmp"
    torch.save(state.model.state_dict(), tmp)
    os.replace(tmp, args.out)
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
