"""The candidate bank: K prior samples per distinct state, sampled once (Q-learning's targets read
it; LatentDiffuser's energy stage keeps its support in one)."""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from typing import TYPE_CHECKING

import numpy as np
import torch

from latent_skills._progress import progress
from latent_skills.config import BCQHConfig, LatentDiffuserConfig, LDCQConfig

from .. import distributed

if TYPE_CHECKING:
    from latent_skills.data.windows import SkillWindows

    from ..priors import LatentPrior


class CandidateBank:
    """K prior samples per distinct row, float16, memory-mapped past a RAM budget."""

    def __init__(self, rows: np.ndarray, n_candidates: int, latent_dim: int, ram_gb: float) -> None:
        self.unique_rows, self.index = np.unique(rows, return_inverse=True)
        shape = (len(self.unique_rows), n_candidates, latent_dim)
        nbytes = math.prod(shape) * 2
        self.file: str | None = None
        self.values: np.ndarray
        if nbytes > ram_gb * 1e9:
            handle, self.file = tempfile.mkstemp(prefix="latent-skills-bank-", suffix=".f16")
            os.close(handle)
            self.values = np.memmap(self.file, np.float16, "w+", shape=shape)
            # the mapping keeps the data; unlinked now, the file cannot outlive a SIGKILL (GBs at
            # paper scale). Windows cannot unlink a mapped file: there __del__ removes it.
            with contextlib.suppress(OSError):
                os.unlink(self.file)
                self.file = None
        else:
            self.values = np.empty(shape, np.float16)

    def __getitem__(self, window_idx: np.ndarray) -> np.ndarray:
        return self.values[self.index[window_idx]]

    def __del__(self) -> None:
        if self.file is not None:
            del self.values
            with contextlib.suppress(OSError):
                os.unlink(self.file)


def sampling_chunk(device: torch.device) -> int:
    """States per prior-sampling batch when building a bank: 256 keeps a CPU's caches warm; an
    accelerator wants large batches (4096 states × 500 candidates fits a 24 GB GPU with the paper's
    denoiser)."""
    return 256 if device.type == "cpu" else 4096


@torch.no_grad()
def build_candidate_bank(
    windows: SkillWindows,
    prior: LatentPrior,
    config: LDCQConfig | BCQHConfig | LatentDiffuserConfig,
    device: torch.device,
    progress_bar: bool = True,
    chunk_states: int | None = None,
) -> CandidateBank:
    """``q_candidates`` latents from ``prior`` (Q-learning's targets: ``agent.policy.prior.for_targets``)
    for every distinct next state of ``windows``.

    In one process the chunks of ``chunk_states`` states draw from one generator in turn. Trained by N
    processes, chunk i is sampled by rank i mod N with a generator of its own (chunk 0's is the
    one-process generator), then sent from that rank to all (a broadcast per chunk), so every rank
    holds the whole bank, and the bank is the same for any N ≥ 2. It equals the one-process bank when
    it fits one chunk; beyond, chunks after the first draw other (equally distributed) latents, as
    the one-process stream is kept for runs made before data parallelism."""
    c, w = config, windows
    chunk_states = chunk_states or sampling_chunk(device)
    bank = CandidateBank(w.next_states.rows(np.arange(len(w))), c.q_candidates, c.latent_dim, c.bank_ram_gb)
    observations = w.episodes.observations
    world, me = distributed.world_size(), distributed.rank()
    gen = torch.Generator(device).manual_seed(c.seed + 7)
    starts = range(0, len(bank.unique_rows), chunk_states)
    for chunk, lo in enumerate(progress(starts, desc="candidate bank", disable=not progress_bar)):
        if world > 1:
            if chunk % world != me:
                continue
            if chunk > 0:
                seed = int(np.random.SeedSequence([c.seed, 7, chunk]).generate_state(1)[0])
                gen = torch.Generator(device).manual_seed(seed)
        rows = bank.unique_rows[lo : lo + chunk_states]
        states = torch.as_tensor(np.asarray(observations[rows], np.float32), device=device)
        bank.values[lo : lo + len(rows)] = prior.sample(states, c.q_candidates, generator=gen).cpu().numpy()
    if world > 1:
        for chunk, lo in enumerate(starts):
            hi = min(lo + chunk_states, len(bank.unique_rows))
            # float16 values travel as float32 (exact both ways; not every backend sends float16)
            values = torch.as_tensor(np.asarray(bank.values[lo:hi], np.float32))
            distributed.broadcast(values, src=chunk % world)
            bank.values[lo:hi] = values.numpy()
    return bank
