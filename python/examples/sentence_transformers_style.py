"""Embeddings as numpy arrays, the sentence-transformers way, quantized and searched by embquant.

The embeddings are the repository's 5,000 all-MiniLM-L6-v2 vectors (no model download):
with a model, ``model.encode(texts)`` gives the same kind of (n, 384) float32 array.

    python examples/sentence_transformers_style.py [--corpus C.parquet --queries Q.parquet]

Steps: calibrate -> int8 + binary codes (``quantize_embeddings``, as in sentence-transformers)
-> an in-memory corpus -> tiered search (Hamming, then int8, then float) -> recall report.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

import embquant

DATA = Path(__file__).resolve().parents[2] / "tests" / "data"


def load(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(embeddings (n, d) float32, ids, texts) of a Parquet file."""
    table = pq.read_table(path, columns=["id", "text", "embedding"])
    column = table["embedding"].combine_chunks()
    vectors = column.flatten().to_numpy().reshape(len(column), -1)
    return vectors, table["id"].to_numpy(), table["text"].to_pylist()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DATA / "minilm-wordnet-5k.parquet")
    parser.add_argument("--queries", type=Path, default=DATA / "minilm-wordnet-queries-50.parquet")
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args(argv)

    embeddings, ids, texts = load(args.corpus)
    queries, query_ids, query_texts = load(args.queries)
    print(f"corpus {embeddings.shape} {embeddings.dtype}, queries {queries.shape}")

    # 1. Calibrate: per-dimension ranges (min / max here), stored as JSON with a fingerprint.
    cal = embquant.calibrate(embeddings, "minmax")
    print(f"calibration {cal.method} over {cal.rows} rows, fingerprint {cal.fingerprint}")
    print(f"degenerate (dead) dimensions: {cal.degenerate_dims}")

    # 2. Codes, as sentence_transformers.quantization.quantize_embeddings returns them.
    int8 = embquant.quantize_embeddings(embeddings, "int8", ranges=cal)
    ubinary = embquant.quantize_embeddings(embeddings, "ubinary")
    print(
        f"float32 {embeddings.nbytes / 1e6:.2f} MB -> int8 {int8.nbytes / 1e6:.2f} MB "
        f"{int8.dtype}{int8.shape}, ubinary {ubinary.nbytes / 1e6:.2f} MB "
        f"{ubinary.dtype}{ubinary.shape}"
    )

    # 3. A searchable corpus (binary + int8 codes, float vectors for the last tier).
    corpus = embquant.Corpus.from_vectors(embeddings, cal, schemes="int8,binary", ids=ids)
    print(corpus)

    # 4. Tiered search: Hamming keeps 8k candidates, int8 keeps 2k, float ranks the top k.
    tiers = "binary:8,int8:2,float"
    hits = corpus.search(queries, k=args.k, tiers=tiers, query_ids=query_ids)
    text_of = dict(zip(ids.tolist(), texts))
    for qi in range(2):
        print(f"\nquery {query_texts[qi]!r}")
        mine = hits.filter(pc.equal(hits["query_id"], int(query_ids[qi])))
        top = mine.slice(0, 3).to_pylist()
        for hit in top:
            print(f"  {hit['rank']}  {hit['score']:.4f}  {text_of[hit['id']][:70]}")

    # 5. How much recall do the codes keep against exact float search?
    report = embquant.recall(
        embeddings, queries, k=[1, args.k], configs=f"{tiers};binary:4,int8;int8;binary"
    )
    summary = {
        c["config"]: {
            "recall": c["recall"],
            "bytes_per_vector": c.get("bytes_per_vector"),
        }
        for c in report["configs"]
    }
    print("\nrecall:", json.dumps(summary, indent=1))
    return report


if __name__ == "__main__":
    main()
