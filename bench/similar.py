"""Benchmark: approximate indexes vs exact search on real CLMR window embeddings.

Not a test. Embeds at most --max-windows windows of a real corpus (the free-music corpus of
../shared/data/free-music.sh; a seeded sample of its files, into a resumable store) with the
bundled model, then for each index library (usearch, faiss-cpu HNSW, hnswlib) measures build time,
index memory, query latency and recall@10 against exact numpy search on the centred,
L2-normalised vectors that `clmr-embed similar` searches. Rows above the real count (100k, 1M) are
the real vectors replicated with small Gaussian noise (sigma 0.05 before re-normalising), so they
keep the real vectors' anisotropy (random vectors flatter an index); 1M is latency only, for
exact numpy and the chosen library (usearch, float16).

Usage: python bench/similar.py --corpus /data/free-music [--max-windows 10000]
       [--sizes 10000 100000] [--million] [--threads 2] [--queries 200]
       [--store /tmp/clmr-bench/free.h5]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float32]
LIBRARIES = ("usearch", "usearch-f16", "faiss", "hnswlib")
CONNECTIVITY = 16  # HNSW M for every library: the same graph degree
EF_CONSTRUCTION = 128  # candidate list while building
EF_SEARCH = 64  # candidate list while searching


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def sample_files(corpus: Path, max_windows: int, window_s: float, seed: int = 0) -> list[str]:
    """A seeded sample of the corpus's relpaths whose whole windows add up to ~max_windows."""
    import av

    from clmr_embed.scan import find_audio_files

    files = find_audio_files([corpus])
    random.Random(seed).shuffle(files)
    chosen, total = [], 0
    for file in files:
        try:
            with av.open(str(file.path), metadata_errors="replace") as container:
                seconds = (container.duration or 0) / 1e6
        except av.error.FFmpegError:
            continue  # a file extract would report as failed; the sample skips it
        n_windows = int(seconds // window_s)
        if n_windows == 0 or total + n_windows > max_windows * 1.05:
            continue
        chosen.append(file.relpath)
        total += n_windows
        if total >= max_windows:
            break
    return chosen


def embed_corpus(corpus: Path, store: Path, max_windows: int, threads: int) -> Path:
    """Extract the sampled files of `corpus` into `store` (resumable: reruns embed nothing)."""
    from glob import escape

    from clmr_embed.constants import WINDOW_SECONDS
    from clmr_embed.extract import ExtractConfig, run_extract

    relpaths = sample_files(corpus, max_windows, WINDOW_SECONDS)
    config = ExtractConfig(
        inputs=(corpus,), output=store, threads=threads, include=tuple(map(escape, relpaths))
    )
    began = time.perf_counter()
    summary = run_extract(config)
    print(
        f"store {store}: {summary.embedded} embedded, {summary.unchanged} unchanged, "
        f"{summary.audio_seconds / 3600:.1f} h in {time.perf_counter() - began:.0f} s",
        file=sys.stderr,
    )
    return store


def real_vectors(store: Path) -> Matrix:
    """The store's windows, centred and L2-normalised as `similar --windows` searches them."""
    from clmr_embed.search.vectors import load_space
    from clmr_embed.store import open_store

    with open_store(store) as opened:
        return load_space(opened, "windows").vectors


def replicate(real: Matrix, n: int, sigma: float = 0.05, seed: int = 0) -> Matrix:
    """n vectors: the real ones, then noisy copies of them, re-normalised."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, real.shape[1]), np.float32)
    out[: len(real)] = real[:n]
    for begin in range(len(real), n, len(real)):
        end = min(begin + len(real), n)
        noisy = real[: end - begin] + rng.normal(0, sigma, (end - begin, real.shape[1]))
        out[begin:end] = noisy / np.linalg.norm(noisy, axis=1, keepdims=True)
    return out


def exact(vectors: Matrix, queries: Matrix, top_k: int) -> npt.NDArray[np.int64]:
    """Ids of the exact top_k by inner product (chunked so 1M rows fit)."""
    from clmr_embed.search.exact import top_k_rows

    return np.stack([top_k_rows(vectors, q, top_k)[0] for q in queries])


def build_usearch(vectors: Matrix, dtype: str) -> Any:
    """usearch HNSW, inner product, vectors kept as `dtype` ("f32" or "f16")."""
    from usearch.index import Index

    index = Index(
        ndim=vectors.shape[1], metric="ip", dtype=dtype, connectivity=CONNECTIVITY,
        expansion_add=EF_CONSTRUCTION, expansion_search=EF_SEARCH,
    )  # fmt: skip
    index.add(np.arange(len(vectors)), vectors)
    return index


def build_faiss(vectors: Matrix) -> Any:
    """faiss IndexHNSWFlat, inner product."""
    import faiss

    index = faiss.IndexHNSWFlat(vectors.shape[1], CONNECTIVITY, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = EF_CONSTRUCTION
    index.hnsw.efSearch = EF_SEARCH
    index.add(vectors)
    return index


def build_hnswlib(vectors: Matrix) -> Any:
    """hnswlib, inner product."""
    import hnswlib

    index = hnswlib.Index(space="ip", dim=vectors.shape[1])
    index.init_index(max_elements=len(vectors), M=CONNECTIVITY, ef_construction=EF_CONSTRUCTION)
    index.add_items(vectors, np.arange(len(vectors)))
    index.set_ef(EF_SEARCH)
    return index


def build(library: str, vectors: Matrix) -> Any:
    """An HNSW index of `library` over unit vectors, inner-product metric."""
    if library.startswith("usearch"):
        return build_usearch(vectors, "f16" if library.endswith("f16") else "f32")
    return build_faiss(vectors) if library == "faiss" else build_hnswlib(vectors)


def query(library: str, index: Any, q: Matrix, top_k: int) -> npt.NDArray[np.int64]:
    """Ids of the approximate top_k for a batch of queries."""
    if library.startswith("usearch"):
        return np.asarray(index.search(q, top_k).keys, np.int64).reshape(len(q), top_k)
    if library == "faiss":
        return index.search(q, top_k)[1]
    return index.knn_query(q, k=top_k)[0].astype(np.int64)


def set_threads(threads: int) -> None:
    """Build threads for every library (usearch takes them per call)."""
    try:
        import faiss

        faiss.omp_set_num_threads(threads)
    except ImportError:
        pass


def measure(library: str, vectors: Matrix, queries: Matrix, truth: Any, threads: int) -> dict:
    """Build time, index memory, single-query latency and recall@10 of one library."""
    rss0, began = _rss_mb(), time.perf_counter()
    index = build(library, vectors)
    build_s = time.perf_counter() - began
    memory_mb = _rss_mb() - rss0
    latencies = []
    found = []
    for q in queries:  # one query at a time: what a CLI call or a click does
        began = time.perf_counter()
        found.append(query(library, index, q[None], 10)[0])
        latencies.append(time.perf_counter() - began)
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])
    return {
        "library": library,
        "n": len(vectors),
        "build_s": round(build_s, 2),
        "index_mb": round(memory_mb, 1),
        "query_ms_p50": round(1e3 * float(np.median(latencies)), 3),
        "query_ms_p99": round(1e3 * float(np.percentile(latencies, 99)), 3),
        "recall_at_10": round(float(recall), 4),
    }


def exact_row(vectors: Matrix, queries: Matrix) -> dict:
    """Latency of exact numpy search, one query at a time."""
    latencies = []
    for q in queries:
        began = time.perf_counter()
        exact(vectors, q[None], 10)
        latencies.append(time.perf_counter() - began)
    return {
        "library": "exact numpy",
        "n": len(vectors),
        "build_s": 0.0,
        "index_mb": round(vectors.nbytes / 2**20, 1),
        "query_ms_p50": round(1e3 * float(np.median(latencies)), 3),
        "query_ms_p99": round(1e3 * float(np.percentile(latencies, 99)), 3),
        "recall_at_10": 1.0,
    }


def run_size(real: Matrix, n: int, args: argparse.Namespace, libraries: tuple[str, ...]) -> list:
    """Every library's row at size n (queries: held-out noisy copies of real vectors)."""
    vectors = replicate(real, n)
    rng = np.random.default_rng(1)
    picks = rng.choice(len(real), args.queries, replace=False)
    noisy = real[picks] + rng.normal(0, 0.05, (args.queries, real.shape[1]))
    queries = (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32)
    truth = exact(vectors, queries, 10) if libraries else None
    rows = [exact_row(vectors, queries[:50])]
    for library in libraries:
        rows.append(measure(library, vectors, queries, truth, args.threads))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True, help="free-music corpus folder")
    parser.add_argument("--store", type=Path, default=Path("/tmp/clmr-bench/free.h5"))
    parser.add_argument("--max-windows", type=int, default=10_000)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--million", action="store_true", help="add the 1M latency rows")
    parser.add_argument(
        "--million-libraries", nargs="*", default=["usearch-f16"],
        help="libraries to build at 1M (none: exact numpy only; a 1M build takes long)",
    )  # fmt: skip
    parser.add_argument("--libraries", nargs="+", default=list(LIBRARIES))
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    set_threads(args.threads)
    embed_corpus(args.corpus, args.store, args.max_windows, args.threads)
    real = real_vectors(args.store)
    print(f"{len(real)} real windows", file=sys.stderr)
    rows = []
    for n in args.sizes:
        rows += run_size(real, n, args, tuple(args.libraries))
    if args.million:
        rows += run_size(real, 1_000_000, args, tuple(args.million_libraries))
    print("| library | vectors | build s | index MB | query ms p50 | p99 | recall@10 |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['library']} | {r['n']:,} | {r['build_s']} | {r['index_mb']} | "
            f"{r['query_ms_p50']} | {r['query_ms_p99']} | {r['recall_at_10']} |"
        )


if __name__ == "__main__":
    main()
