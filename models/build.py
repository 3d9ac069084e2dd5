"""Build edgebench's bundled models, reproducibly.

    pip install -e '.[build]'          # pins TensorFlow
    python -m models.build             # rebuilds every model, rewrites registry.yaml
    python -m models.build --check     # rebuilds into a temp dir and compares sha256

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
    return {
        "name": "shapes-int8",
        "file": "shapes_int8.tflite",
        "sha256": hashlib.sha256(tfl).hexdigest(),
        "task": "classification",
        "trained": True,
        "input": {"size": [SHAPES_SIZE, SHAPES_SIZE], "dtype": "int8", "layout": "NHWC"},
        "normalization": {"mean": [0.0, 0.0, 0.0], "std": [255.0, 255.0, 255.0]},
        "labels": "shapes_labels.txt",
        "testset": "testsets/shapes",
        "accuracy_top1": round(acc, 4),
        "license": "Apache-2.0 (built by this project)",
        "description": "Six synthetic shape classes (circle, square, triangle, cross, "
        "horizontal/vertical stripes), trained by models/build.py.",
    }


BUILDERS = {"shapes-int8": build_shapes}


def write_registry(entries: list[dict], path: Path) -> None:
    import yaml

    header = (
        "# edgebench model registry. Entries with `file` are built by models/build.py\n"
        "# (python -m models.build) and committed; their sha256 is checked by\n"
        "# `edgebench models verify` and by the test suite.\n"
    )
    path.write_text(header + yaml.safe_dump({"models": entries}, sort_keys=False))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="rebuild in a temp dir and compare sha256 with the registry")
    args = ap.parse_args(argv)
    if args.check:
        import yaml

        want = {e["name"]: e["sha256"] for e in yaml.safe_load((HERE / "registry.yaml").read_text())["models"] if "file" in e}
        with tempfile.TemporaryDirectory() as tmp:
            got = {name: fn(Path(tmp))["sha256"] for name, fn in BUILDERS.items()}
        bad = [n for n in got if got[n] != want.get(n)]
        for n in got:
            print(f"{n}: {'same' if n not in bad else 'DIFFERENT'} sha256 {got[n]}")
        return 1 if bad else 0
    entries = [fn(HERE) for fn in BUILDERS.values()]
    write_registry(entries, HERE / "registry.yaml")
    for e in entries:
        print(f"built {e['file']}  sha256={e['sha256']}  top1={e.get('accuracy_top1')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
