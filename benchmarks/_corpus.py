"""A synthetic topic corpus as TF-IDF: unit-norm, sparse, high-dimensional rows.

Each topic has its own distribution over the vocabulary (a Dirichlet draw,
so that a few hundred words carry most of a topic's mass); a document picks
one topic, a length, and draws its word counts from a mixture of its topic's
distribution and a background distribution shared by all topics.  The counts
go through :class:`sklearn.feature_extraction.text.TfidfTransformer`, whose
rows have unit Euclidean norm, like most text features.

    from _corpus import make_topic_corpus
    X, y = make_topic_corpus(n_docs=2000, n_words=5000, n_topics=4, random_state=0)
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.utils import check_random_state


def make_topic_corpus(
    n_docs: int = 2000,
    *,
    n_words: int = 5000,
    n_topics: int = 4,
    mean_length: int = 80,
    background: float = 0.5,
    concentration: float = 0.05,
    random_state: int | np.random.RandomState | None = None,
) -> tuple[sp.csr_matrix, np.ndarray]:
    """TF-IDF rows of ``n_docs`` documents and their topic labels.

    Parameters
    ----------
    n_docs : int, default=2000
        Number of documents (rows).
    n_words : int, default=5000
        Vocabulary size (columns).
    n_topics : int, default=4
        Number of topics (classes); a document's label is its topic.
    mean_length : int, default=80
        Mean number of words of a document (Poisson, at least 5).
    background : float, default=0.5
        Share of a document's words drawn from the background distribution,
        common to all topics; the rest come from the document's topic.
    concentration : float, default=0.05
        Dirichlet parameter of the word distributions: smaller concentrates
        each topic on fewer words.
    random_state : int, RandomState instance or None, default=None
        Seed.

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (n_docs, n_words)
        TF-IDF features (``TfidfTransformer()`` defaults: smooth idf, rows of
        unit Euclidean norm).
    y : ndarray of shape (n_docs,)
        Topic of each document, in ``range(n_topics)``.
    """
    rng = check_random_state(random_state)
    topics = rng.dirichlet(np.full(n_words, concentration), size=n_topics)
    back = rng.dirichlet(np.full(n_words, 1.0))
    y = rng.randint(n_topics, size=n_docs)
    lengths = np.maximum(rng.poisson(mean_length, size=n_docs), 5)
    counts = np.empty((n_docs, n_words))
    for i in range(n_docs):
        p = background * back + (1.0 - background) * topics[y[i]]
        counts[i] = rng.multinomial(lengths[i], p / p.sum())
    X = TfidfTransformer().fit_transform(sp.csr_matrix(counts))
    return sp.csr_matrix(X), y
