"""Independent checks of an exported flowtensor ONNX file, with the `onnx` package (Debian: python3-onnx).

usage: onnxcheck.py MODEL.onnx ROWS.ndjson
1. onnx.checker.check_model(full_check=True): schema, opset and shape inference of the whole graph;
2. the README's Python scaling lines applied to ROWS (records of `flowtensor parse | filter | ipsplit |
   sanitize`) with the scaler from the file's metadata.
Prints one JSON object: opset, ir_version, input and output shapes, metadata keys, the scaled rows.
"""
import json
import sys

import numpy as np
import onnx

model_file, rows_file = sys.argv[1], sys.argv[2]
m = onnx.load(model_file)
onnx.checker.check_model(m, full_check=True)
meta = {p.key: p.value for p in m.metadata_props}


def dims(v):
    return [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]


# --- the README's lines (sess.get_modelmeta().custom_metadata_map is this same dict) ---
feats, labels, s = (json.loads(meta[k]) for k in ("flowtensor.features", "flowtensor.labels", "flowtensor.scaler"))
rows = [json.loads(line) for line in open(rows_file)]
x = np.array([[float(r[f]) for f in feats] for r in rows], np.float32)  # raw features, run.json order
x = np.where(np.isnan(x), 0, np.where(np.isposinf(x), s["posinf"], np.where(np.isneginf(x), s["neginf"], x)))
x = np.where(s["log1p"], np.sign(x) * np.log1p(np.abs(x)), x)
x = (x - s["center"]) * s["inv_scale"]
if s["clip"]:
    x = np.clip(x, s["y_min"], s["y_max"])
x = x.astype(np.float32)
# ---

json.dump(
    {
        "opset": [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")][0],
        "ir_version": m.ir_version,
        "inputs": {v.name: dims(v) for v in m.graph.input},
        "outputs": {v.name: dims(v) for v in m.graph.output},
        "ops": [n.op_type for n in m.graph.node],
        "metadata": sorted(meta),
        "labels": labels,
        "scaled": x.astype(float).tolist(),
    },
    sys.stdout,
)
