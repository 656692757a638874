"""The arena's leaderboard: a Bradley-Terry fit of all the votes at once, with bootstrap intervals.

Not online Elo: Elo updates after each vote, so its ratings depend on the order the votes came in
and keep drifting with its step size; Bradley-Terry finds the strengths under which the votes
seen are most likely, whatever their order, and the bootstrap says how sure that is.

The model: model i beats model j with probability p_i / (p_i + p_j). Ties (and "both bad", which
says nothing about which of the two is better) count as half a win for each side, the choice
Chatbot Arena made too; the Rao-Kupper/Davidson variants model ties explicitly but rank the same
way when ties are spread evenly, and need an extra parameter the few votes one user casts
cannot pin down. The fit is Hunter's (2004) MM iteration. Each model also gets one virtual tie,
spread over the others, so a model that won (or lost) every vote gets a finite score instead of
an infinite one; it pulls scores towards the middle by about one vote's worth.

Scores are shown on the familiar 400-points-per-tenfold-odds scale, centred on 1000 (a 100-point
gap: the stronger wins 64% of the time). Intervals are the 2.5th and 97.5th percentiles of the
scores refitted on votes resampled with replacement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ragls.config import Config
from ragls.recipes.arena import Vote, read_votes, votes_path

SCALE = 400 / math.log(10)  # natural-log strength -> points
CENTRE = 1000.0
PRIOR_GAMES = 1.0  # virtual tied games per model, spread evenly over the other models
BOOTSTRAP = 200
HIT: dict[Vote, float] = {"a": 1.0, "b": 0.0, "tie": 0.5, "both_bad": 0.5}


@dataclass(frozen=True)
class Row:
    model: str
    score: float
    low: float  # 95% bootstrap interval
    high: float
    votes: int
    wins: int
    losses: int
    ties: int  # ties and "both bad"

    @property
    def win_rate(self) -> float:
        """Wins plus half the ties, over the votes it took part in."""
        return (self.wins + self.ties / 2) / self.votes if self.votes else 0.0

    def as_json(self) -> dict:
        return {"model": self.model, "score": round(self.score, 1), "low": round(self.low, 1),
                "high": round(self.high, 1), "win_rate": round(self.win_rate, 4), "votes": self.votes,
                "wins": self.wins, "losses": self.losses, "ties": self.ties}


def outcomes(votes: list[dict]) -> tuple[list[str], np.ndarray]:
    """The models (sorted) and, per vote, (index of A, index of B, A's share of the win)."""
    names = sorted({v[side]["model"] for v in votes for side in ("a", "b")})
    at = {name: i for i, name in enumerate(names)}
    games = np.array([(at[v["a"]["model"]], at[v["b"]["model"]], HIT[v["vote"]]) for v in votes],
                     dtype=float).reshape(-1, 3)
    return names, games


def fit(games: np.ndarray, count: int, iterations: int = 10_000, tolerance: float = 1e-9) -> np.ndarray:
    """Log-strengths of ``count`` models from (i, j, i's share) rows, centred on their mean."""
    i, j, share = games[:, 0].astype(int), games[:, 1].astype(int), games[:, 2]
    wins = np.bincount(i, share, count) + np.bincount(j, 1 - share, count) + PRIOR_GAMES / 2
    played = np.zeros((count, count))
    np.add.at(played, (i, j), 1.0)
    played += played.T + (1 - np.eye(count)) * PRIOR_GAMES / max(1, count - 1)
    logs = np.zeros(count)
    for _ in range(iterations):
        strength = np.exp(logs)
        updated = np.log(wins / (played / (strength[:, None] + strength[None, :])).sum(axis=1))
        updated -= updated.mean()
        done = np.abs(updated - logs).max() < tolerance
        logs = updated
        if done:
            break
    return logs


def leaderboard(votes: list[dict], rounds: int = BOOTSTRAP, seed: int = 0) -> list[Row]:
    """Every model in ``votes``, best first: score, 95% interval, votes, wins, losses, ties."""
    if not votes:
        return []
    names, games = outcomes(votes)
    scores = CENTRE + SCALE * fit(games, len(names))
    rng = np.random.default_rng(seed)
    samples = np.array([fit(games[rng.integers(0, len(games), len(games))], len(names))
                        for _ in range(rounds)]) * SCALE + CENTRE
    low, high = np.percentile(samples, [2.5, 97.5], axis=0) if rounds else (scores, scores)
    rows = []
    for k, name in enumerate(names):
        mine = [(v["vote"], "a") for v in votes if v["a"]["model"] == name]
        mine += [(v["vote"], "b") for v in votes if v["b"]["model"] == name]
        wins = sum(1 for vote, side in mine if vote == side)
        ties = sum(1 for vote, _ in mine if vote in ("tie", "both_bad"))
        rows.append(Row(name, float(scores[k]), float(low[k]), float(high[k]), len(mine), wins,
                        len(mine) - wins - ties, ties))
    return sorted(rows, key=lambda r: -r.score)


@dataclass(frozen=True)
class Standings:
    votes_file: Path
    kind: str
    votes: int
    broken_lines: int  # lines of the votes file that were not votes, skipped
    rows: list[Row]

    def as_json(self) -> dict:
        """What ``ragls arena --leaderboard --json`` prints and ``ragls/arenaLeaderboard`` returns."""
        return {"votes_file": str(self.votes_file), "kind": self.kind, "votes": self.votes,
                "broken_lines": self.broken_lines, "models": [r.as_json() for r in self.rows]}


def standings(config: Config, kind: str = "answer", rounds: int = BOOTSTRAP) -> Standings:
    """The leaderboard of the votes file's ``kind`` votes ("answer" or "completion")."""
    path = votes_path(config)
    votes, broken = read_votes(path)
    votes = [v for v in votes if v.get("kind", "answer") == kind]
    return Standings(path, kind, len(votes), broken, leaderboard(votes, rounds))
