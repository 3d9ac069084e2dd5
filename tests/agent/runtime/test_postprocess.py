"""Output decoding: classification top-k with dequantized scores, SSD-style detections."""

import numpy as np

from edgebench.agent.runtime.interpreter import TensorInfo
from edgebench.agent.runtime.postprocess import Classifier, Detector, detection_roles, load_labels


def t(name, shape, dtype="float32", scale=0.0, zp=0, index=0):
    return TensorInfo(name=name, index=index, shape=shape, dtype=dtype, scale=scale, zero_point=zp)


def test_top_k_dequantizes_with_the_output_quantization():
    c = Classifier(t("out", [1, 5], "uint8", 1 / 256, 0), labels=list("abcde"), k=3)
    top = c.format(c(np.array([[10, 200, 30, 250, 0]], np.uint8)))
    assert [x["label"] for x in top] == ["d", "b", "c"]
    assert top[0]["score"] == round(250 / 256, 6)


def test_labels_without_background_are_offset():
    c = Classifier(t("out", [1, 4]), labels=["x", "y", "z"], k=1)
    assert c.format(c(np.array([[0.0, 0.1, 0.9, 0.0]], np.float32)))[0]["label"] == "y"


def test_labels_file_with_index_prefixes(tmp_path):
    f = tmp_path / "l.txt"
    f.write_text("0 background\n1: cat\n2 dog\n\n")
    assert load_labels(str(f)) == ["background", "cat", "dog"]


class FakeRuntime:
    """Holds output arrays the way an interpreter does, for the decoder."""

    def __init__(self, outputs, arrays):
        self.outputs, self._arrays = outputs, arrays

    def output(self, i):
        return self._arrays[i]


def test_ssd_postprocess_outputs_are_decoded_in_op_order():
    outs = [
        t("TFLite_Detection_PostProcess", [1, 3, 4]),
        t("TFLite_Detection_PostProcess:1", [1, 3]),
        t("TFLite_Detection_PostProcess:2", [1, 3]),
        t("TFLite_Detection_PostProcess:3", [1]),
    ]
    roles = detection_roles(outs)
    assert roles == {"boxes": 0, "classes": 1, "scores": 2, "count": 3}
    arrays = [
        np.array([[[0.1, 0.2, 0.5, 0.6], [0, 0, 1, 1], [0.3, 0.3, 0.4, 0.4]]], np.float32),
        np.array([[17.0, 3.0, 5.0]], np.float32),
        np.array([[0.9, 0.3, 0.7]], np.float32),
        np.array([3.0], np.float32),
    ]
    labels = [f"c{i}" for i in range(20)]
    dets = Detector(FakeRuntime(outs, arrays), roles, labels=labels, k=10, threshold=0.5)(arrays[0])
    assert [(d["label"], d["score"]) for d in dets] == [("c17", 0.9), ("c5", 0.7)]
    assert dets[0]["box"] == [0.1, 0.2, 0.5, 0.6]


def test_reordered_detection_head_is_found_by_names():
    outs = [t("scores", [1, 10]), t("boxes", [1, 10, 4]), t("count", [1]), t("classes", [1, 10])]
    assert detection_roles(outs) == {"boxes": 1, "count": 2, "scores": 0, "classes": 3}


def test_a_classifier_is_not_a_detector():
    assert detection_roles([t("out", [1, 1001])]) is None
