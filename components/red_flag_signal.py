"""A second, independent signal for warning signs: a character n-gram classifier.

The patterns (components/patterns/) know the phrases someone thought of; this model
learns from examples of how women word each sign (components/examples/*.jsonl, one
example a line: `{"flag", "text", "source"}`, `flag` one of the contract's red flags or
`none`). It reads each clause of a message and proposes at most one sign per clause
when it is sure enough. What it proposes is only ever a *possible* mention: the
extractor checks it like any other (negated after the fact, long past and settled,
someone else's, the stage) and the interview then asks one direct confirming question.
It never adds a sign the patterns already read in that message, whatever they made of
it ("no bleeding" stays no bleeding).

Trained at `rasa train` by the CaseEntityExtractor and stored in the model; anywhere
else (`bench.real_eval --offline`, the tests) `default()` fits it once, lazily, from the
same files. Deterministic: the same files give the same model.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any, Iterable

from triage.contract import RED_FLAGS

EXAMPLES_DIR = Path(__file__).parent / "examples"
NONE = "none"
LABELS = frozenset(RED_FLAGS) | {NONE}
KEYS = frozenset({"flag", "text", "source"})
MODEL_FILE = "red_flag_signal.joblib"
# Probability of the best sign over a clause at which it is proposed, tuned on the
# development part of the real-language corpus (`python -m bench.real_eval --offline`):
# 0.65 keeps confirming questions on its texts without a sign at 0.05 (0.07 at 0.6).
THRESHOLD = 0.65
MIN_CHARS = 12  # a clause shorter than this ("ok", "yes lol") says nothing on its own
MIN_WORDS = 3  # nor one with fewer different words ("pain pain pain ...", "ow ow ow ow")
MIN_CONTENT = 2  # nor a bare answer made of small words ("no it doesn't", "yes I have")
SMALL_WORDS = frozenset(
    """a an and are at be been but did didn do does doesn don has have i is isn it its
    just m me my no nope not of ok okay on or really s so t that the there they this to
    very was we yeah yep yes you""".split()
)
WORD = re.compile(r"[^\W\d_]+")


def says_enough(text: str) -> bool:
    """Whether a clause is long and varied enough for the signal to judge it."""
    words = {word.lower() for word in WORD.findall(text)}
    content = words - SMALL_WORDS
    return len(text) >= MIN_CHARS and len(words) >= MIN_WORDS and len(content) >= MIN_CONTENT


def example_files(folder: str | Path | None = None) -> list[Path]:
    """The example files, in name order."""
    return sorted(Path(folder or EXAMPLES_DIR).glob("*.jsonl"))


def load_examples(folder: str | Path | None = None) -> list[dict[str, str]]:
    """Every example, checked: an unknown flag or key, or a missing source, raises."""
    examples: list[dict[str, str]] = []
    seen: dict[str, str] = {}
    for path in example_files(folder):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            where = f"{path.name}:{number}"
            entry = json.loads(line)
            if not isinstance(entry, dict) or set(entry) != KEYS:
                raise ValueError(f"{where}: keys must be {sorted(KEYS)}")
            if entry["flag"] not in LABELS:
                raise ValueError(f"{where}: unknown flag {entry['flag']!r}")
            if not str(entry["source"]).startswith(("http://", "https://")):
                raise ValueError(f"{where}: source must be the page's address")
            text = " ".join(str(entry["text"]).split())
            if not text:
                raise ValueError(f"{where}: empty text")
            key = text.lower()
            if key in seen and seen[key] != entry["flag"]:
                raise ValueError(f"{where}: the same text is also labelled {seen[key]!r}")
            seen[key] = entry["flag"]
            examples.append({"flag": entry["flag"], "text": text, "source": entry["source"]})
    if not examples:
        raise ValueError(f"no examples in {folder or EXAMPLES_DIR}")
    return examples


class RedFlagSignal:
    """A fitted classifier: clause text in, (flag, probability) out."""

    def __init__(self, pipeline: Any, threshold: float = THRESHOLD) -> None:
        """Wraps a fitted scikit-learn pipeline (`fit` builds one)."""
        self._pipeline = pipeline
        self.threshold = threshold

    @classmethod
    def fit(cls, examples: Iterable[dict[str, str]]) -> RedFlagSignal:
        """Fits word and character n-gram TF-IDF features and a logistic regression."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import FeatureUnion, Pipeline

        rows = list(examples)
        # Character n-grams (2-5, within words: typos, "wee'd", "38.5") and words (1-2).
        kinds = {"chars": ("char_wb", (2, 5), 2), "words": ("word", (1, 2), 1)}
        features = FeatureUnion(
            [
                (name, TfidfVectorizer(analyzer=a, ngram_range=n, min_df=m, sublinear_tf=True))
                for name, (a, n, m) in kinds.items()
            ]
        )
        # One-vs-rest liblinear: under a second to fit on ~2,000 examples, deterministic.
        model = LogisticRegression(C=10.0, class_weight="balanced", solver="liblinear")
        pipeline = Pipeline([("features", features), ("model", model)])
        pipeline.fit([r["text"] for r in rows], [r["flag"] for r in rows])
        return cls(pipeline)

    def best(self, texts: list[str]) -> list[tuple[str, float]]:
        """The most likely label of each text and its probability."""
        if not texts:
            return []
        probabilities = self._pipeline.predict_proba(texts)
        classes = list(self._pipeline.classes_)
        out = []
        for row in probabilities:
            index = int(row.argmax())
            out.append((classes[index], float(row[index])))
        return out

    def propose(self, texts: list[str]) -> list[str | None]:
        """For each text the sign it proposes, or None."""
        judged = [text for text in texts if says_enough(text)]
        read = iter(self.best(judged))  # only the clauses it may judge go to the model
        out: list[str | None] = []
        for text in texts:
            flag, p = next(read) if says_enough(text) else (NONE, 0.0)
            out.append(flag if flag != NONE and p >= self.threshold else None)
        return out

    def save(self, directory: Path) -> None:
        """Writes the model into `directory` (the component's model storage)."""
        import joblib

        joblib.dump(
            {"pipeline": self._pipeline, "threshold": self.threshold}, directory / MODEL_FILE
        )

    @classmethod
    def load(cls, directory: Path) -> RedFlagSignal | None:
        """The model saved in `directory`, or None when it holds none."""
        import joblib

        path = directory / MODEL_FILE
        if not path.exists():
            return None
        stored = joblib.load(path)
        return cls(stored["pipeline"], stored["threshold"])


@functools.lru_cache(maxsize=1)
def default() -> RedFlagSignal:
    """The signal fitted on the shipped examples (once per process)."""
    return RedFlagSignal.fit(load_examples())
