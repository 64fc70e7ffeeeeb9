"""SASRec (Kang & McAuley 2018): a causal self-attention model of each user's item sequence.

PyTorch on the CPU, from the optional extra (`pip install 'reelcast[sasrec]'`); this
module imports torch only when a model is fitted, and `available()` says whether it can.
The settings are RecBole's defaults for SASRec (2 blocks, 2 heads, 64 dimensions, inner
256, dropout 0.5, Adam at 1e-3, the last 50 items, full-softmax cross-entropy); the
number of epochs is what validation chooses (`fit_stages`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any, Self

import numpy as np

from recs.dataset import InteractionLog
from recs.evaluation.baselines import _Scorer
from recs.sources.transition import item_sequences as sequences

#: Past this many items the full softmax over the catalog costs too much per epoch on a
#: small CPU machine: the evaluation leaves SASRec out and says so.
SASREC_MAX_ITEMS = 20_000


def available() -> bool:
    """Whether PyTorch is installed (the `sasrec` extra)."""
    return importlib.util.find_spec("torch") is not None


def windows(log: InteractionLog, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Training windows: (inputs, targets), each rows × max_len item ids + 1 (0 = padding).

    Each user's sequence is cut from its end into windows of `max_len` next-item steps
    that overlap by one item, so every step of every sequence is trained on once. Users
    with a single item teach nothing and are left out.
    """
    user, item, _ = sequences(log)
    item = item + 1
    counts = np.bincount(user, minlength=log.n_users)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    inputs, targets = [], []
    for u in np.flatnonzero(counts >= 2):
        seq = item[starts[u] : starts[u] + counts[u]]
        for stop in range(len(seq), 1, -max_len):
            chunk = seq[max(0, stop - max_len - 1) : stop]
            row_in = np.zeros(max_len, dtype=np.int64)
            row_out = np.zeros(max_len, dtype=np.int64)
            row_in[max_len - len(chunk) + 1 :] = chunk[:-1]
            row_out[max_len - len(chunk) + 1 :] = chunk[1:]
            inputs.append(row_in)
            targets.append(row_out)
    if not inputs:
        empty = np.zeros((0, max_len), dtype=np.int64)
        return empty, empty
    return np.vstack(inputs), np.vstack(targets)


def latest(log: InteractionLog, max_len: int) -> np.ndarray:
    """Users × max_len: each user's latest items (id + 1), right-aligned, 0-padded."""
    user, item, back = sequences(log)
    keep = back < max_len
    out = np.zeros((log.n_users, max_len), dtype=np.int64)
    out[user[keep], max_len - 1 - back[keep]] = item[keep] + 1
    return out


class SASRec(_Scorer):
    """Self-attentive sequential recommendation, trained to predict every next item.

    `epochs` is how long `fit` trains; `fit_stages` trains in steps of `stage_epochs`
    and yields after each, so that a tuner can score validation along one run.
    """

    name = "sasrec"

    def __init__(
        self,
        epochs: int = 100,
        hidden: int = 64,
        blocks: int = 2,
        heads: int = 2,
        inner: int = 256,
        dropout: float = 0.5,
        max_len: int = 50,
        learning_rate: float = 1e-3,
        batch: int = 256,
        stage_epochs: int = 5,
        seed: int = 0,
        threads: int | None = None,
    ) -> None:
        self.epochs, self.hidden, self.blocks, self.heads = epochs, hidden, blocks, heads
        self.inner, self.dropout, self.max_len = inner, dropout, max_len
        self.learning_rate, self.batch, self.stage_epochs = learning_rate, batch, stage_epochs
        self.seed, self.threads = seed, threads
        self.trained_epochs = 0
        self.network: Any = None
        self.history = np.zeros((0, max_len), dtype=np.int64)

    @property
    def params(self) -> dict[str, Any]:
        """Epochs trained, and the fixed architecture."""
        return {"epochs": self.epochs, "dropout": self.dropout, "max_len": self.max_len}

    def fit(self, log: InteractionLog, *, now: float) -> Self:
        """Train for `epochs` epochs."""
        for _ in self._train(log, self.epochs):
            pass
        return self

    def fit_stages(self, log: InteractionLog, *, now: float) -> Iterator[dict[str, Any]]:
        """Train up to `epochs` epochs, yielding the settings that reproduce each stage."""
        for epochs in self._train(log, self.epochs):
            yield {"epochs": epochs}

    def _train(self, log: InteractionLog, epochs: int) -> Iterator[int]:
        torch = _torch()
        if self.threads:
            torch.set_num_threads(self.threads)
        torch.manual_seed(self.seed)
        self._fit_matrix(log)
        self.history = latest(log, self.max_len)
        inputs, targets = windows(log, self.max_len)
        self.network = _network(log.n_items + 1, self)
        optimizer = torch.optim.Adam(self.network.parameters(), lr=self.learning_rate)
        rng = np.random.default_rng(self.seed)
        x_all, y_all = torch.from_numpy(inputs), torch.from_numpy(targets)
        for epoch in range(1, epochs + 1):
            self.network.train()
            for rows in np.array_split(
                rng.permutation(len(inputs)), max(1, -(-len(inputs) // self.batch))
            ):
                if not len(rows):
                    continue
                index = torch.from_numpy(rows)
                x, y = x_all[index], y_all[index]
                hidden = _forward(self.network, x, self)[y > 0]  # positions with a next item
                logits = hidden @ self.network["item"].weight.T
                logits[:, 0] = -torch.inf  # never predict padding
                loss = torch.nn.functional.cross_entropy(logits, y[y > 0])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            self.trained_epochs = epoch
            if epoch % self.stage_epochs == 0 or epoch == epochs:
                yield epoch

    def scores(self, users: np.ndarray) -> np.ndarray:
        """The last position's state · every item's embedding."""
        torch = _torch()
        self.network.eval()
        with torch.no_grad():
            x = torch.from_numpy(self.history[users])
            state = _forward(self.network, x, self)[:, -1, :]
            scores: np.ndarray = (state @ self.network["item"].weight[1:].T).numpy()
        # A user with no history gets the same (meaningless) state as everyone: fine.
        return scores.astype(np.float32)


def _torch() -> Any:
    """PyTorch, imported on first use (typed as Any: the extra may be absent)."""
    return importlib.import_module("torch")


def _network(vocabulary: int, model: SASRec) -> Any:
    """The SASRec layers: item + position embeddings, causal pre-norm transformer blocks."""
    torch = _torch()
    nn = torch.nn
    layer = nn.TransformerEncoderLayer(
        model.hidden,
        model.heads,
        model.inner,
        model.dropout,
        activation="gelu",
        batch_first=True,
        norm_first=True,
    )
    network = nn.ModuleDict(
        {
            "item": nn.Embedding(vocabulary, model.hidden, padding_idx=0),
            "positions": nn.Embedding(model.max_len, model.hidden),
            "dropout": nn.Dropout(model.dropout),
            "blocks": nn.TransformerEncoder(layer, model.blocks, enable_nested_tensor=False),
            "norm": nn.LayerNorm(model.hidden),
        }
    )
    nn.init.normal_(network["item"].weight, std=0.02)
    nn.init.normal_(network["positions"].weight, std=0.02)
    return network


def _forward(network: Any, x: Any, model: SASRec) -> Any:
    """Hidden state at every position of `x` (batch × length item ids + 1, 0 = padding)."""
    torch = _torch()
    length = x.shape[1]
    h = network["item"](x) * (model.hidden**0.5) + network["positions"](torch.arange(length))[None]
    h = network["dropout"](h) * (x > 0).unsqueeze(-1)
    # Additive masks, as RecBole's: -10,000 rather than -inf, so that a padding position,
    # which may attend to nothing, gets a uniform average rather than NaN. Future
    # positions and padding are never attended to.
    causal = torch.triu(torch.ones(length, length), 1) * -1e4
    mask = causal[None] + (x == 0)[:, None, :] * -1e4
    h = network["blocks"](h, mask=mask.repeat_interleave(model.heads, dim=0))
    return network["norm"](h)
