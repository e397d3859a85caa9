#!/usr/bin/env python3
"""Peer benchmark: faiss's multi-bit RaBitQ (IndexRaBitQ) with and without int8 rescoring.

Not part of the Rust build; runs in the peers venv (see rabitq_bits_peers.sh and
../shared/peers/README.md):
    python3 -m venv $HOME/venv-peers && $HOME/venv-peers/bin/pip install numpy==2.4.6 \
        pyarrow==26.0.1 faiss-cpu==1.15.1 threadpoolctl==3.8.0 psutil==7.2.2

Modes
  --data DIR          a dataset folder laid out like shared/data/minilm-wordnet:
                      corpus.parquet / queries.parquet (id int64, text utf8,
                      embedding fixed_size_list<float32>[D]) and ground_truth.parquet
                      (query_id int64, neighbors fixed_size_list<int64>[100],
                      scores fixed_size_list<float32>[100]); measures recall@k.
  --peers-1m          the peers' synthetic 1M x 384 corpus + 1,000 queries
                      ($PEER_DATA/emb_n1000000_d384_q1000_s42_{x,q}.npy, made by
                      shared/peers/common.py load_embeddings); queries/s only.
  --make-heldout DIR  writes a held-out synthetic dataset (same three Parquet
                      schemas): 30,000 x 384 corpus + 1,000 queries, numpy
                      default_rng(2026), raw = mu + sigma * (0.6 * center[c] + 0.8 * z),
                      mu ~ N(0, 0.3) per dim, sigma ~ lognormal(0, 0.35) per dim,
                      500 clusters, rows L2-normalized; queries drawn after the corpus
                      from the same clusters; exact top-100 by float64 inner product,
                      ties to the lower id (like minilm-wordnet's ground truth).

Chains measured per --bits b (faiss 1.15.1 API):
  rabitq        faiss.IndexRaBitQ(d, METRIC_INNER_PRODUCT, b); train() computes the
                centroid, add() encodes. Query bits: index.qb (faiss default 4, set
                with --qb), centered=False. code_size = bytes per vector.
  rabitq+int8   faiss.IndexRefine(rabitq, IndexScalarQuantizer(d, QT_8bit, IP)),
                k_factor = oversample: RaBitQ returns k*o candidates which are rescored
                with the float query against the SQ8 (per-dim min/max int8) codes.
  int8, float   sanity rows (dataset mode): SQ8 flat alone, IndexFlatIP (recall ~1.0).
recall@k = |returned top-k ∩ true top-k| / k averaged over queries. With --qps each
chain's search of all nq queries (one batch, faiss.omp_set_num_threads(threads)) is
timed --repeats times; qps = nq / median. One JSON line per row is appended to --out.
"""
import argparse
import json
import os
import statistics
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import faiss

PEER_DATA = os.environ.get("PEER_DATA", "/tmp/peerdata")


def emb_type(d):
    return pa.list_(pa.field("element", pa.float32()), d)


def read_vectors(path):
    t = pq.read_table(path, columns=["id", "embedding"])
    ids = t.column("id").to_numpy()
    col = t.column("embedding").combine_chunks()
    x = col.values.to_numpy().reshape(len(col), col.type.list_size).astype(np.float32, copy=False)
    assert (ids == np.arange(len(ids))).all(), f"{path}: ids are not 0..n-1 in order"
    return np.ascontiguousarray(x)


def load_folder(d):
    x = read_vectors(os.path.join(d, "corpus.parquet"))
    q = read_vectors(os.path.join(d, "queries.parquet"))
    g = pq.read_table(os.path.join(d, "ground_truth.parquet"), columns=["query_id", "neighbors"])
    nb = g.column("neighbors").combine_chunks()
    gt = nb.values.to_numpy().reshape(len(nb), nb.type.list_size)
    gt = gt[np.argsort(g.column("query_id").to_numpy(), kind="stable")]
    assert len(gt) == len(q)
    return x, q, gt


def make_heldout(out, n=30_000, nq=1_000, d=384, seed=2026, n_clusters=500, top=100):
    rng = np.random.default_rng(seed)
    mu = rng.normal(0.0, 0.3, d).astype(np.float32)
    sigma = rng.lognormal(0.0, 0.35, d).astype(np.float32)
    centers = rng.standard_normal((n_clusters, d), dtype=np.float32)

    def draw(m):
        c = rng.integers(0, n_clusters, m)
        z = rng.standard_normal((m, d), dtype=np.float32)
        v = mu + sigma * (0.6 * centers[c] + 0.8 * z)
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32), c

    x, cx = draw(n)
    q, cq = draw(nq)
    s = q.astype(np.float64) @ x.astype(np.float64).T
    nbr = np.argsort(-s, axis=1, kind="stable")[:, :top]  # stable: ties -> lower id
    sc = np.take_along_axis(s, nbr, axis=1).astype(np.float32)
    os.makedirs(out, exist_ok=True)

    def vec_table(v, c, kind):
        return pa.table({
            "id": pa.array(np.arange(len(v), dtype=np.int64)),
            "text": pa.array([f"synthetic {kind} {i} (cluster {k})" for i, k in enumerate(c)], pa.string()),
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(v.ravel(), pa.float32()), type=emb_type(d)),
        })

    def fsl(a, t):
        return pa.FixedSizeListArray.from_arrays(pa.array(a.ravel(), t), type=pa.list_(pa.field("element", t), top))

    pq.write_table(vec_table(x, cx, "corpus"), os.path.join(out, "corpus.parquet"), compression="zstd")
    pq.write_table(vec_table(q, cq, "query"), os.path.join(out, "queries.parquet"), compression="zstd")
    gtt = pa.table({"query_id": pa.array(np.arange(nq, dtype=np.int64)),
                    "neighbors": fsl(nbr.astype(np.int64), pa.int64()),
                    "scores": fsl(sc, pa.float32())})
    pq.write_table(gtt, os.path.join(out, "ground_truth.parquet"), compression="zstd")
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write(f"# heldout-{d}\n\nSynthetic, made by embquant benches/rabitq_bits_peers.py --make-heldout: "
                f"default_rng({seed}), {n} x {d} corpus + {nq} queries, raw = mu + sigma * (0.6 * center[c] + "
                f"0.8 * z), mu ~ N(0,0.3), sigma ~ lognormal(0,0.35) per dim, {n_clusters} clusters, rows "
                f"L2-normalized. Ground truth: exact float64 inner product, top {top}, ties to the lower id.\n")
    for name in ("corpus", "queries", "ground_truth"):
        print(name, pq.read_schema(os.path.join(out, name + ".parquet")).to_string(show_schema_metadata=False))
    print(f"top-1 score median {np.median(sc[:, 0]):.3f}, 100th {np.median(sc[:, -1]):.3f}")


def recall(labels, gt, k):
    return float((labels[:, :k, None] == gt[:, None, :k]).any(-1).sum(1).mean() / k)


def timed(fn, repeats):
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return ts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", help="dataset folder (corpus/queries/ground_truth.parquet)")
    ap.add_argument("--peers-1m", action="store_true", help="peers' 1M x 384 .npy data, queries/s only")
    ap.add_argument("--make-heldout", metavar="DIR", help="write the held-out dataset to DIR and exit")
    ap.add_argument("--bits", default="1,2,4,8")
    ap.add_argument("--oversample", default="1,2,4")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--nq", type=int, default=0, help="queries used (0 = all)")
    ap.add_argument("--out", default="/tmp/rabitq-peers.jsonl", help="JSON lines appended here")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--qps", action="store_true", help="also time queries/s")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per chain (median)")
    ap.add_argument("--qb", type=int, default=None, help="IndexRaBitQ.qb query bits (default: faiss's)")
    a = ap.parse_args()

    if a.make_heldout:
        t0 = time.perf_counter()
        make_heldout(a.make_heldout)
        print(f"held-out data written to {a.make_heldout} in {time.perf_counter() - t0:.1f} s")
        return
    faiss.omp_set_num_threads(a.threads)
    if a.peers_1m:
        base = os.path.join(PEER_DATA, "emb_n1000000_d384_q1000_s42")
        x, q, gt = np.load(base + "_x.npy"), np.load(base + "_q.npy"), None
        dataset, a.qps = "peers-1m-s42", True
    elif a.data:
        x, q, gt = load_folder(a.data)
        dataset = os.path.basename(os.path.normpath(a.data))
    else:
        ap.error("one of --data, --peers-1m, --make-heldout is required")
    if a.nq:
        q = q[: a.nq]
        gt = gt[: a.nq] if gt is not None else None
    q = np.ascontiguousarray(q)
    n, d = x.shape
    nq, k = len(q), a.k
    print(f"{dataset}: corpus {n} x {d}, {nq} queries, k={k}, threads={a.threads}, faiss {faiss.__version__}")
    rows = []

    def measure(chain, index, bits=None, ov=None, code_size=None, extra=None):
        D, I = index.search(q, k)  # also the warm-up for the timing
        rec = {"peer": "faiss", "dataset": dataset, "chain": chain, "bits": bits, "oversample": ov,
               "rescoring": "int8" if chain == "rabitq+int8" else None,
               f"recall_at_{k}": round(recall(I, gt, k), 6) if gt is not None else None, "qps": None,
               "code_size": code_size, "threads": a.threads, "nq": nq, "n": n, "k": k}
        if a.qps:
            ts = timed(lambda: index.search(q, k), a.repeats)
            rec["qps"] = round(nq / statistics.median(ts), 2)
            rec["times_s"] = [round(t, 4) for t in ts]
        rec.update(extra or {})
        rec.update({"faiss": faiss.__version__, "loadavg": [round(v, 2) for v in os.getloadavg()],
                    "ts": time.strftime("%Y-%m-%dT%H:%M:%S")})
        with open(a.out, "a") as f:
            f.write(json.dumps(rec) + "\n")
        rows.append(rec)
        r = rec[f"recall_at_{k}"]
        print(f"  {chain:12s} bits={str(bits):4s} ov={str(ov):4s} recall@{k}="
              f"{'-' if r is None else f'{r:.4f}'} qps={rec['qps']} code_size={code_size}", flush=True)

    t0 = time.perf_counter()
    sq = faiss.IndexScalarQuantizer(d, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
    sq.train(x)
    sq.add(x)
    print(f"SQ8 built in {time.perf_counter() - t0:.1f} s")
    if not a.peers_1m:
        measure("int8", sq, code_size=sq.code_size)
        flat = faiss.IndexFlatIP(d)
        flat.add(x)
        measure("float", flat, code_size=4 * d)
        del flat
    ovs = [int(o) for o in a.oversample.split(",") if o]
    for b in [int(s) for s in a.bits.split(",")]:
        t0 = time.perf_counter()
        rq = faiss.IndexRaBitQ(d, faiss.METRIC_INNER_PRODUCT, b)
        if a.qb is not None:
            rq.qb = a.qb
        rq.train(x)
        rq.add(x)
        build = round(time.perf_counter() - t0, 2)
        extra = {"qb": int(rq.qb), "centered": bool(rq.centered), "build_s": build}
        print(f" bits={b}: built in {build} s, code_size {rq.code_size}, qb {rq.qb}")
        measure("rabitq", rq, b, None, rq.code_size, extra)
        for o in ovs:
            ref = faiss.IndexRefine(rq, sq)
            ref.k_factor = float(o)
            measure("rabitq+int8", ref, b, o, rq.code_size, extra)
            del ref
        del rq

    print(f"\n{dataset} (n={n}, nq={nq}, threads={a.threads}); recall@{k} [qps]")
    cols = ["alone"] + [f"+int8 ov{o}" for o in ovs]
    print(f"| bits | code_size | " + " | ".join(cols) + " |")
    print("|" + "---|" * (len(cols) + 2))

    def cell(r):
        rc = r[f"recall_at_{k}"]
        s = "-" if rc is None else f"{rc:.4f}"
        return s + (f" [{r['qps']:.1f}]" if r["qps"] else "")
    for b in sorted({r["bits"] for r in rows if r["bits"] is not None}):
        rr = [r for r in rows if r["bits"] == b]
        cells = [cell(r) for r in rr if r["chain"] == "rabitq"]
        cells += [cell(r) for o in ovs for r in rr if r["chain"] == "rabitq+int8" and r["oversample"] == o]
        print(f"| {b} | {rr[0]['code_size']} | " + " | ".join(cells) + " |")
    for r in rows:
        if r["chain"] in ("int8", "float"):
            print(f"| {r['chain']} | {r['code_size']} | {cell(r)} |")


if __name__ == "__main__":
    main()
