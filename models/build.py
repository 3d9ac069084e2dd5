"""Build edgebench's bundled models, reproducibly.

    pip install -e '.[build]'          # pins TensorFlow
    python -m edgebench.models.build             # rebuilds every model, rewrites registry.yaml
    python -m edgebench.models.build --check     # rebuilds into a temp dir and compares sha256

Everything is made from data this script generates itself (no download at build
time), with fixed seeds and TensorFlow's deterministic ops, on one CPU thread, so
that the same pinned TensorFlow produces the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

#: models trained in this process, reused by the variants built from them
_TRAINED: dict[str, tuple] = {}

SHAPES_CLASSES = ["circle", "square", "triangle", "cross", "hstripes", "vstripes"]
SHAPES_SIZE = 64
SEED = 20261122


# --------------------------------------------------------------------------- data
def draw_shape(rng: np.random.Generator, cls: str, size: int = SHAPES_SIZE) -> np.ndarray:
    """One RGB uint8 image of `cls` on a noisy background, drawn with OpenCV."""
    import cv2

    bg = rng.integers(0, 110, size=3)
    img = np.empty((size, size, 3), np.uint8)
    img[:] = bg
    fg = tuple(int(v) for v in rng.integers(150, 256, size=3))
    r = int(rng.integers(size // 6, size // 3))
    cx = int(rng.integers(r + 2, size - r - 2))
    cy = int(rng.integers(r + 2, size - r - 2))
    if cls == "circle":
        cv2.circle(img, (cx, cy), r, fg, -1, lineType=cv2.LINE_AA)
    elif cls == "square":
        cv2.rectangle(img, (cx - r, cy - r), (cx + r, cy + r), fg, -1)
    elif cls == "triangle":
        pts = np.array([[cx, cy - r], [cx - r, cy + r], [cx + r, cy + r]], np.int32)
        cv2.fillPoly(img, [pts], fg, lineType=cv2.LINE_AA)
    elif cls == "cross":
        t = max(2, r // 3)
        cv2.rectangle(img, (cx - r, cy - t), (cx + r, cy + t), fg, -1)
        cv2.rectangle(img, (cx - t, cy - r), (cx + t, cy + r), fg, -1)
    elif cls in ("hstripes", "vstripes"):
        period = int(rng.integers(6, 14))
        width = max(2, period // 2)
        for k in range(int(rng.integers(0, period)), size, period):
            if cls == "hstripes":
                cv2.rectangle(img, (0, k), (size - 1, k + width - 1), fg, -1)
            else:
                cv2.rectangle(img, (k, 0), (k + width - 1, size - 1), fg, -1)
    else:  # pragma: no cover - guarded by SHAPES_CLASSES
        raise ValueError(cls)
    noise = rng.normal(0, 12, size=img.shape)
    return np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def make_shapes(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for _ in range(n_per_class):
        for label, cls in enumerate(SHAPES_CLASSES):
            xs.append(draw_shape(rng, cls))
            ys.append(label)
    return np.stack(xs), np.array(ys, np.int64)


# --------------------------------------------------------------------------- TF
def _tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["TF_DETERMINISTIC_OPS"] = "1"
    import tensorflow as tf

    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()
    return tf


def _int8_convert(tf, model, rep_images: np.ndarray, input_type, output_type) -> bytes:
    def representative():
        for img in rep_images:
            yield [img[None].astype(np.float32) / 255.0]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = input_type
    conv.inference_output_type = output_type
    return conv.convert()


def tflite_accuracy(model_bytes: bytes, images: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 of a quantized model on uint8 RGB images, fed the way the agent feeds them."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=model_bytes, num_threads=1)
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    out = it.get_output_details()[0]
    scale, zp = inp["quantization"]
    hits = 0
    for img, y in zip(images, labels):
        if inp["dtype"] == np.int8:
            x = (img.astype(np.int16) - 128).astype(np.int8)
        elif inp["dtype"] == np.uint8:
            x = img
        else:
            x = img.astype(np.float32) / 255.0
        it.set_tensor(inp["index"], x[None])
        it.invoke()
        hits += int(np.argmax(it.get_tensor(out["index"])[0]) == y)
    return hits / len(labels)


def build_shapes(out_dir: Path) -> dict:
    """The trained classifier: six synthetic shape classes, 64x64 RGB, full int8."""
    tf = _tf()
    x_train, y_train = make_shapes(1000, SEED)
    x_test, y_test = make_shapes(20, SEED + 1)
    L = tf.keras.layers
    model = tf.keras.Sequential(
        [
            L.Input((SHAPES_SIZE, SHAPES_SIZE, 3)),
            L.Conv2D(16, 3, strides=2, padding="same", activation="relu"),
            L.Conv2D(32, 3, strides=2, padding="same", activation="relu"),
            L.Conv2D(64, 3, strides=2, padding="same", activation="relu"),
            L.Conv2D(64, 3, strides=2, padding="same", activation="relu"),
            L.GlobalAveragePooling2D(),
            L.Dense(len(SHAPES_CLASSES)),
        ]
    )
    model.compile(
        optimizer=tf.keras.optimizers.Adam(2e-3),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x_train / 255.0, y_train, epochs=12, batch_size=64, shuffle=True, verbose=2)
    # Ship probabilities, not logits, so reported scores read as confidence.
    export = tf.keras.Sequential([model, L.Softmax()])
    tfl = _int8_convert(tf, export, x_train[:200], tf.int8, tf.int8)
    acc = tflite_accuracy(tfl, x_test, y_test)
    _TRAINED["shapes"] = (model, export, x_train, x_test, y_test)

    (out_dir / "shapes_int8.tflite").write_bytes(tfl)
    (out_dir / "shapes_labels.txt").write_text("\n".join(SHAPES_CLASSES) + "\n")
    test_dir = out_dir / "testsets" / "shapes"
    if test_dir.exists():
        shutil.rmtree(test_dir)
    import cv2

    counts = {c: 0 for c in SHAPES_CLASSES}
    for img, y in zip(x_test, y_test):
        cls = SHAPES_CLASSES[int(y)]
        d = test_dir / cls
        d.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(d / f"{counts[cls]:03d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        counts[cls] += 1
    return _shapes_entry(
        "shapes-int8",
        "shapes_int8.tflite",
        tfl,
        acc,
        quantization="full int8 (int8 input and output)",
        description="Six synthetic shape classes (circle, square, triangle, cross, "
        "horizontal/vertical stripes), trained by models/build.py.",
    )


def probe_batch(model_bytes: bytes, batch: int = 4) -> dict:
    """Does resizing the batch dimension work? Tried for real with ai-edge-litert:
    resize_tensor_input on the batch, allocate_tensors, invoke."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=model_bytes, num_threads=1)
    inp = it.get_input_details()[0]
    sig = [int(v) for v in inp["shape_signature"]]
    shape = [batch, *[int(v) for v in inp["shape"][1:]]]
    step = "resize_tensor_input"
    try:
        it.resize_tensor_input(inp["index"], shape, strict=sig[0] == -1)
        step = "allocate_tensors"
        it.allocate_tensors()
        step = "invoke"
        it.set_tensor(inp["index"], np.zeros(shape, inp["dtype"]))
        it.invoke()
        out = it.get_tensor(it.get_output_details()[0]["index"])
        if out.shape[0] != batch:
            return {"batch_resizable": False, "batch_resize_error": f"output batch {out.shape[0]}, not {batch}"}
    except Exception as e:  # what the runtime says is the record
        text = " ".join(line.strip() for line in str(e).splitlines() if line.strip())
        return {"batch_resizable": False, "batch_resize_error": f"{step} failed at batch {batch}: {text}"}
    return {"batch_resizable": True}


def _io(model_bytes: bytes) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=model_bytes, num_threads=1)
    inp = it.get_input_details()[0]
    return {
        "size": [int(inp["shape"][1]), int(inp["shape"][2])],
        "dtype": np.dtype(inp["dtype"]).name,
        "layout": "NHWC",
        "batch_signature": int(inp["shape_signature"][0]),
    }


def _shapes_entry(name: str, file: str, tfl: bytes, acc: float, *, quantization: str, description: str) -> dict:
    return {
        "name": name,
        "file": file,
        "sha256": hashlib.sha256(tfl).hexdigest(),
        "size_bytes": len(tfl),
        "task": "classification",
        "trained": True,
        "input": _io(tfl),
        "quantization": quantization,
        **probe_batch(tfl),
        "normalization": {"mean": [0.0, 0.0, 0.0], "std": [255.0, 255.0, 255.0]},
        "labels": "shapes_labels.txt",
        "testset": "testsets/shapes",
        "accuracy_top1": round(acc, 4),
        "license": "Apache-2.0 (built by this project)",
        "description": description,
    }


def _trained_shapes(out_dir: Path) -> tuple:
    if "shapes" not in _TRAINED:
        build_shapes(out_dir)
    return _TRAINED["shapes"]


def build_shapes_uint8(out_dir: Path) -> dict:
    """The same trained classifier with uint8 input and output (as older Coral models)."""
    tf = _tf()
    _model, export, x_train, x_test, y_test = _trained_shapes(out_dir)
    tfl = _int8_convert(tf, export, x_train[:200], tf.uint8, tf.uint8)
    (out_dir / "shapes_uint8.tflite").write_bytes(tfl)
    return _shapes_entry(
        "shapes-uint8",
        "shapes_uint8.tflite",
        tfl,
        tflite_accuracy(tfl, x_test, y_test),
        quantization="full int8 inside, uint8 input and output",
        description="shapes-int8's trained weights with a uint8 input and output tensor.",
    )


def build_shapes_dynamic(out_dir: Path) -> dict:
    """Float input and output, int8 weights (dynamic-range quantization: no calibration)."""
    tf = _tf()
    _model, export, _x_train, x_test, y_test = _trained_shapes(out_dir)
    conv = tf.lite.TFLiteConverter.from_keras_model(export)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    tfl = conv.convert()
    (out_dir / "shapes_dynamic_int8.tflite").write_bytes(tfl)
    return _shapes_entry(
        "shapes-dynamic-int8",
        "shapes_dynamic_int8.tflite",
        tfl,
        tflite_accuracy(tfl, x_test, y_test),
        quantization="dynamic range: float32 input and output, int8 weights",
        description="shapes-int8's trained weights, float input (pixel / 255) with int8 weights.",
    )


def build_shapes_fixed_batch(out_dir: Path) -> dict:
    """A batch-1-only model whose input still says batch -1: a hard-coded Reshape to
    [1, 16, 64] before the pooling, as exported graphs often carry. Resizing its batch
    is accepted by resize_tensor_input and fails when the runtime prepares the graph."""
    tf = _tf()
    model, _export, x_train, x_test, y_test = _trained_shapes(out_dir)
    L = tf.keras.layers
    convs, dense = model.layers[:4], model.layers[-1]
    inp = L.Input((SHAPES_SIZE, SHAPES_SIZE, 3))
    x = inp
    for layer in convs:
        x = layer(x)
    side = SHAPES_SIZE // 16
    x = L.Lambda(lambda t: tf.reshape(t, [1, side * side, 64]), output_shape=(side * side, 64))(x)
    x = L.Lambda(lambda t: tf.reduce_mean(t, axis=1), output_shape=(64,))(x)
    out = L.Softmax()(dense(x))
    fixed = tf.keras.Model(inp, out)
    tfl = _int8_convert(tf, fixed, x_train[:200], tf.int8, tf.int8)
    (out_dir / "shapes_int8_fixed_batch.tflite").write_bytes(tfl)
    return _shapes_entry(
        "shapes-int8-fixed-batch",
        "shapes_int8_fixed_batch.tflite",
        tfl,
        tflite_accuracy(tfl, x_test, y_test),
        quantization="full int8 (int8 input and output)",
        description="shapes-int8's trained weights behind a hard-coded batch-1 Reshape: "
        "runs at batch 1 only, although its input signature says batch -1.",
    )


MOBILENET_ALPHA = 0.35
MOBILENET_CLASSES = 1000


def _build_mobilenet(out_dir: Path, size: int) -> dict:
    """MobileNetV2 (alpha 0.35, 1000 classes) with seeded random weights: realistic
    compute for latency, meaningless answers."""
    tf = _tf()
    tf.keras.backend.clear_session()
    tf.keras.utils.set_random_seed(SEED + size)
    model = tf.keras.applications.MobileNetV2(
        input_shape=(size, size, 3), alpha=MOBILENET_ALPHA, weights=None, classes=MOBILENET_CLASSES
    )
    rng = np.random.default_rng(SEED + size)
    rep = rng.integers(0, 256, size=(32, size, size, 3), dtype=np.uint8)

    def representative():
        for img in rep:
            yield [(img[None].astype(np.float32) - 127.5) / 127.5]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    tfl = conv.convert()
    file = f"mobilenet_v2_0.35_{size}_int8_untrained.tflite"
    (out_dir / file).write_bytes(tfl)
    return {
        "name": f"mobilenet-v2-0.35-{size}-int8-untrained",
        "file": file,
        "sha256": hashlib.sha256(tfl).hexdigest(),
        "size_bytes": len(tfl),
        "task": "classification",
        "trained": False,
        "latency_only": True,
        "input": _io(tfl),
        "quantization": "full int8 (int8 input and output)",
        **probe_batch(tfl),
        "normalization": {"mean": [127.5, 127.5, 127.5], "std": [127.5, 127.5, 127.5]},
        "labels": None,
        "license": "Apache-2.0 (built by this project; architecture from tf.keras.applications)",
        "description": f"MobileNetV2 alpha {MOBILENET_ALPHA}, {size}x{size}, {MOBILENET_CLASSES} classes, "
        "seeded random weights: latency only, its answers mean nothing.",
    }


def build_mobilenet_96(out_dir: Path) -> dict:
    return _build_mobilenet(out_dir, 96)


def build_mobilenet_160(out_dir: Path) -> dict:
    return _build_mobilenet(out_dir, 160)


def build_mobilenet_224(out_dir: Path) -> dict:
    return _build_mobilenet(out_dir, 224)


# Order matters: shapes-int8 first (it trains the model the variants reuse), and the
# MobileNets last (they reset the Keras session).
BUILDERS = {
    "shapes-int8": build_shapes,
    "shapes-uint8": build_shapes_uint8,
    "shapes-dynamic-int8": build_shapes_dynamic,
    "shapes-int8-fixed-batch": build_shapes_fixed_batch,
    "mobilenet-v2-0.35-96-int8-untrained": build_mobilenet_96,
    "mobilenet-v2-0.35-160-int8-untrained": build_mobilenet_160,
    "mobilenet-v2-0.35-224-int8-untrained": build_mobilenet_224,
}


def hand_kept_entries(path: Path) -> list[dict]:
    """Registry entries this script does not build (remote ones, with `url`): kept as they are."""
    import yaml

    if not path.exists():
        return []
    data = yaml.safe_load(path.read_text()) or {}
    return [e for e in data.get("models", []) if "url" in e and "file" not in e]


def write_registry(entries: list[dict], path: Path) -> None:
    import yaml

    header = (
        "# edgebench model registry.\n"
        "# Entries with `file` are built by models/build.py (python -m edgebench.models.build) and\n"
        "# committed: the script rewrites them. Entries with `url` are kept by hand (the\n"
        "# script carries them over as they are); `sha256_source` says where each hash\n"
        "# comes from. `edgebench models verify` and the test suite check every sha256.\n"
    )
    path.write_text(header + yaml.safe_dump({"models": entries}, sort_keys=False, width=100, default_flow_style=None))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="rebuild in a temp dir and compare sha256 with the registry")
    args = ap.parse_args(argv)
    if args.check:
        import yaml

        want = {
            e["name"]: e["sha256"]
            for e in yaml.safe_load((HERE / "registry.yaml").read_text())["models"]
            if "file" in e
        }
        with tempfile.TemporaryDirectory() as tmp:
            got = {name: fn(Path(tmp))["sha256"] for name, fn in BUILDERS.items()}
        bad = [n for n in got if got[n] != want.get(n)]
        for n in got:
            print(f"{n}: {'same' if n not in bad else 'DIFFERENT'} sha256 {got[n]}")
        return 1 if bad else 0
    entries = [fn(HERE) for fn in BUILDERS.values()]
    write_registry(entries + hand_kept_entries(HERE / "registry.yaml"), HERE / "registry.yaml")
    for e in entries:
        print(
            f"built {e['file']}  {e['size_bytes']} bytes  sha256={e['sha256']}  "
            f"top1={e.get('accuracy_top1')}  batch_resizable={e['batch_resizable']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
