"""In-context learning: choosing the k demonstrations (shots) for each example.

- `random`: k examples of the pool drawn with a generator seeded by (seed, example id), so an example gets
  the same shots whatever else is evaluated with it.
- `knn`: the k pool examples whose input embeds nearest to the example's (MiniLM, cosine). The pool is a
  seeded random subset of at most `pool_size` examples, so large training sets stay cheap.

When shots come from the split being evaluated (`exclude_same_id`), an example is never its own shot.
Shots are returned farthest-first: the nearest sits right before the input, and is the last to be dropped
when a prompt must be shortened.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

SELECTIONS = ("random", "knn")


def _rng(seed: int, key: str) -> random.Random:
    return random.Random(int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:16], 16))


class ShotSelector:
    def __init__(
        self,
        pool: Sequence[dict],
        k: int,
        render_input,
        selection: str = "random",
        seed: int = 0,
        pool_size: int = 2000,
        embedder=None,
        exclude_same_id: bool = False,
    ):
        if selection not in SELECTIONS:
            raise ValueError(f"unknown shot selection {selection!r}; valid: {', '.join(SELECTIONS)}")
        self.k, self.selection, self.seed = k, selection, seed
        self.render_input = render_input
        self.exclude_same_id = exclude_same_id  # pool and evaluated examples come from the same split
        pool = list(pool)
        if selection == "knn" and len(pool) > pool_size:
            keep = sorted(_rng(seed, "pool").sample(range(len(pool)), pool_size))
            pool = [pool[i] for i in keep]
        self.pool = pool
        self.embedder = embedder
        self._pool_vectors = None
        if selection == "knn" and k > 0:
            if embedder is None:
                from .models.embedder import shared_embedder

                self.embedder = shared_embedder()
            self._pool_vectors = self.embedder.encode([render_input(e) for e in pool])

    def select_all(self, examples: Sequence[dict]) -> list[list[dict]]:
        if self.k == 0:
            return [[] for _ in examples]
        if self.selection == "random":
            return [self._random(e) for e in examples]
        queries = self.embedder.encode([self.render_input(e) for e in examples])
        sims = queries @ self._pool_vectors.T
        out = []
        for e, row in zip(examples, sims):
            ranked = [j for j in row.argsort(descending=True).tolist() if not self._is_self(j, e)]
            out.append([self.pool[j] for j in reversed(ranked[: self.k])])
        return out

    def _random(self, example: dict) -> list[dict]:
        # k + 1 draws, so that dropping the example itself (if it is in the pool) still leaves k
        draws = _rng(self.seed, example["id"]).sample(range(len(self.pool)), min(self.k + 1, len(self.pool)))
        return [self.pool[j] for j in draws if not self._is_self(j, example)][: self.k]

    def _is_self(self, j: int, example: dict) -> bool:
        return self.exclude_same_id and self.pool[j]["id"] == example["id"]
