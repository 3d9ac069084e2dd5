"""The model registry and `edgebench models list/info/fetch/verify`, on real files."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import shutil
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml

from edgebench import models
from edgebench.agent.runtime.modelinfo import inspect
from tests.support.paths import ROOT, run_cli

BUNDLED = [e for e in models.load_registry() if "file" in e]
REMOTE = [e for e in models.load_registry() if "url" in e]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------- registry
@pytest.mark.parametrize("e", BUNDLED, ids=lambda e: e["name"])
def test_bundled_file_matches_its_sha256(e):
    path = models.MODELS_DIR / e["file"]
    assert path.is_file(), f"{e['name']}: {path} is missing"
    assert sha256(path) == e["sha256"]
    assert e["size_bytes"] == path.stat().st_size
    assert e["task"] and isinstance(e["trained"], bool) and e["license"]


@pytest.mark.parametrize("e", BUNDLED, ids=lambda e: e["name"])
def test_bundled_entry_says_what_the_file_is(e):
    info = inspect(str(models.MODELS_DIR / e["file"]))
    inp = info["inputs"][0]
    assert inp["shape"][1:3] == e["input"]["size"]
    assert inp["dtype"] == e["input"]["dtype"]
    assert inp["shape_signature"][0] == e["input"]["batch_signature"]
    if e["trained"]:
        labels = (models.MODELS_DIR / e["labels"]).read_text().split()
        assert info["outputs"][0]["shape"] == [1, len(labels)]
        assert (models.MODELS_DIR / e["testset"]).is_dir()
        assert 0.95 <= e["accuracy_top1"] <= 1.0
    else:
        assert e["latency_only"] is True and e["labels"] is None


@pytest.mark.parametrize("e", BUNDLED, ids=lambda e: e["name"])
def test_batch_resizable_claim_holds_with_the_real_interpreter(e):
    """What issue 4's batch sweeps rely on: resize the batch to 4, allocate, invoke."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(models.MODELS_DIR / e["file"]), num_threads=1)
    inp = it.get_input_details()[0]
    shape = [4, *inp["shape"][1:]]
    it.resize_tensor_input(inp["index"], shape, strict=True)  # batch -1: strict resize is allowed
    if e["batch_resizable"]:
        it.allocate_tensors()
        it.set_tensor(inp["index"], np.zeros(shape, inp["dtype"]))
        it.invoke()
        assert it.get_tensor(it.get_output_details()[0]["index"]).shape[0] == 4
    else:
        with pytest.raises(RuntimeError, match="failed to prepare"):
            it.allocate_tensors()
        assert "failed to prepare" in e["batch_resize_error"]


def test_registry_has_the_agent_exercising_variants():
    by_name = {e["name"]: e for e in BUNDLED}
    dtypes = {e["input"]["dtype"] for e in BUNDLED}
    assert {"int8", "uint8", "float32"} <= dtypes
    assert any(e["batch_resizable"] for e in BUNDLED)
    assert any(not e["batch_resizable"] for e in BUNDLED)
    assert "dynamic range" in by_name["shapes-dynamic-int8"]["quantization"]
    untrained = [e for e in BUNDLED if not e["trained"]]
    assert sorted(e["input"]["size"][0] for e in untrained) == [96, 160, 224]
    assert sum(e["size_bytes"] for e in BUNDLED) < 8_000_000


@pytest.mark.parametrize("e", REMOTE, ids=lambda e: e["name"])
def test_remote_entries_name_their_publisher_and_hash_source(e):
    assert e["url"].startswith("https://")
    assert len(e["sha256"]) == 64 and e["sha256_source"] and e["license"]
    assert "file" not in e


def test_remote_hashes_match_the_reference_files(refdata):
    """Entries whose file is in the project's reference data: the registry hash is that file's."""
    checked = 0
    for e in REMOTE:
        local = refdata / models.cached_name(e)
        if e["url"].startswith("https://raw.githubusercontent.com/google-coral/") and local.is_file():
            assert sha256(local) == e["sha256"], e["name"]
            checked += 1
    assert checked >= 3


# --------------------------------------------------------------------------- list
def test_models_list_shows_every_entry_and_where_it_is(tmp_path):
    p = run_cli("models", "list", env={"EDGEBENCH_CACHE_DIR": str(tmp_path)})
    assert p.returncode == 0, p.stderr
    for e in models.load_registry():
        assert e["name"] in p.stdout
    line = next(ln for ln in p.stdout.splitlines() if ln.startswith("mobilenet-v2-0.35-224-int8-untrained"))
    assert "latency only" in line and "bundled" in line
    assert "fixed" in next(ln for ln in p.stdout.splitlines() if ln.startswith("shapes-int8-fixed-batch"))
    j = run_cli("models", "list", "--json", env={"EDGEBENCH_CACHE_DIR": str(tmp_path)})
    docs = json.loads(j.stdout)
    assert {d["name"]: d["where"] for d in docs}["coral-imagenet-labels"] == "remote"


# --------------------------------------------------------------------------- info
def test_info_on_refdata_mobilenet_v2(refdata):
    p = run_cli("models", "info", str(refdata / "mobilenet_v2_1.0_224_quant.tflite"), "--json")
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    inp = info["inputs"][0]
    assert inp["dtype"] == "uint8" and inp["shape"] == [1, 224, 224, 3]
    assert inp["scale"] == 0.0078125 and inp["zero_point"] == 128
    assert info["outputs"][0]["shape"] == [1, 1001]
    assert info["quantization"].startswith("full integer")
    assert info["ops_by_operator"]["CONV_2D"] == 36 and info["ops_by_operator"]["DEPTHWISE_CONV_2D"] == 17
    assert info["ops_total"] == sum(info["ops_by_operator"].values()) == 66
    assert info["edgetpu"]["ops_supported"] == 66 and info["edgetpu"]["first_unsupported"] is None
    assert info["registry"]["name"] == "coral-mobilenet-v2-1.0-224-quant"
    text = run_cli("models", "info", str(refdata / "mobilenet_v2_1.0_224_quant.tflite"))
    assert "uint8 [1x224x224x3], scale 0.0078125, zero point 128" in text.stdout


def test_info_on_refdata_mobilenet_v1(refdata):
    p = run_cli("models", "info", str(refdata / "mobilenet_v1_0.25_128_quant.tflite"), "--json")
    info = json.loads(p.stdout)
    assert info["inputs"][0]["dtype"] == "uint8" and info["inputs"][0]["shape"] == [1, 128, 128, 3]
    assert info["size_bytes"] == 525598


def test_info_says_what_an_edge_tpu_cannot_take():
    p = run_cli("models", "info", "shapes-dynamic-int8", "--json")
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    assert info["quantization"] == "dynamic range (int8 weights, float activations)"
    assert info["inputs"][0]["dtype"] == "float32"
    assert info["edgetpu"]["ops_supported"] == 0
    assert "float32" in info["edgetpu"]["first_unsupported"]["reason"]
    fixed = json.loads(run_cli("models", "info", "shapes-int8-fixed-batch", "--json").stdout)
    assert fixed["ops_by_operator"]["RESHAPE"] == 1 and fixed["registry"]["name"] == "shapes-int8-fixed-batch"


def test_info_on_a_file_that_is_not_a_model(tmp_path):
    bad = tmp_path / "notes.tflite"
    bad.write_text("hello, not a flatbuffer")
    p = run_cli("models", "info", str(bad))
    assert p.returncode == 3
    assert p.stderr.count("\n") == 1 and "not a TFLite flatbuffer" in p.stderr and "Traceback" not in p.stderr


# -------------------------------------------------------------------------- fetch
@pytest.fixture()
def http_dir(tmp_path):
    """A real HTTP server on 127.0.0.1 serving a folder, in a thread."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield root, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def test_registry(tmp_path, http_dir):
    root, base = http_dir
    model = root / "remote_shapes.tflite"
    shutil.copy(ROOT / "models" / "shapes_uint8.tflite", model)
    (root / "remote_labels.txt").write_text((ROOT / "models" / "shapes_labels.txt").read_text())
    good = sha256(model)
    entries = [
        {
            "name": "t-good",
            "url": f"{base}/remote_shapes.tflite",
            "sha256": good,
            "task": "classification",
            "trained": True,
            "labels": "t-labels",
        },
        {
            "name": "t-labels",
            "url": f"{base}/remote_labels.txt",
            "sha256": sha256(root / "remote_labels.txt"),
            "task": "labels",
        },
        {
            "name": "t-wrong-sha",
            "url": f"{base}/remote_shapes.tflite?copy=2",
            "sha256": "0" * 64,
            "task": "classification",
            "filename": "wrong.tflite",
        },
        {"name": "t-missing", "url": f"{base}/nothing-here.tflite", "sha256": good, "task": "classification"},
        {
            "name": "t-offline",
            "url": f"http://127.0.0.1:{_closed_port()}/m.tflite",
            "sha256": good,
            "task": "classification",
        },
    ]
    reg = tmp_path / "test-registry.yaml"
    reg.write_text(yaml.safe_dump({"models": entries}))
    cache = tmp_path / "cache"
    return {"EDGEBENCH_REGISTRY": str(reg), "EDGEBENCH_CACHE_DIR": str(cache)}, cache, good


def test_fetch_downloads_checks_and_caches(test_registry):
    env, cache, good = test_registry
    p = run_cli("models", "fetch", "t-good", env=env)
    assert p.returncode == 0, p.stderr
    assert sha256(cache / "remote_shapes.tflite") == good
    assert (cache / "remote_labels.txt").is_file()  # the model's labels entry comes along
    assert "sha256 ok" in p.stdout
    again = run_cli("models", "fetch", "t-good", env=env)
    assert again.returncode == 0 and "already cached" in again.stdout
    v = run_cli("models", "verify", "t-good", "t-labels", env=env)
    assert v.returncode == 0, v.stdout + v.stderr


def test_fetched_model_runs_with_its_registry_labels(test_registry):
    env, cache, _good = test_registry
    assert run_cli("models", "fetch", "t-good", env=env).returncode == 0
    out = cache.parent / "r.json"
    p = run_cli(
        "run",
        "--model",
        str(cache / "remote_shapes.tflite"),
        "--source",
        str(ROOT / "models" / "testsets" / "shapes" / "cross" / "000.png"),
        "--frames",
        "3",
        "--json",
        str(out),
        "-q",
        env=env,
    )
    assert p.returncode == 0, p.stderr
    res = json.loads(out.read_text())
    # the bytes are shapes-uint8's: the bundled entry is found first, with its own labels
    assert res["model"]["registry"]["name"] == "shapes-uint8"
    assert res["predictions"][0]["top_k"][0]["label"] == "cross"


def test_fetch_rejects_a_wrong_checksum_and_keeps_nothing(test_registry):
    env, cache, _good = test_registry
    p = run_cli("models", "fetch", "t-wrong-sha", env=env)
    assert p.returncode == 7
    assert p.stderr.count("\n") == 1 and "not the registry's" in p.stderr and "not kept" in p.stderr
    assert not list(cache.glob("*")), "a rejected download must leave nothing in the cache"


def test_fetch_says_in_one_line_when_it_cannot_reach_the_host(test_registry):
    env, _cache, _good = test_registry
    p = run_cli("models", "fetch", "t-offline", "--timeout", "10", env=env)
    assert p.returncode == 7
    assert p.stderr.count("\n") == 1 and "cannot be reached" in p.stderr and "Traceback" not in p.stderr
    m = run_cli("models", "fetch", "t-missing", env=env)
    assert m.returncode == 7 and "HTTP 404" in m.stderr


def test_verify_catches_a_damaged_cached_file(test_registry):
    env, cache, _good = test_registry
    assert run_cli("models", "fetch", "t-good", env=env).returncode == 0
    f = cache / "remote_shapes.tflite"
    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF
    f.write_bytes(bytes(data))
    v = run_cli("models", "verify", env=env)
    assert v.returncode == 3
    assert "MISMATCH  t-good" in v.stdout and "do not match the registry" in v.stderr
    refetch = run_cli("models", "fetch", "t-good", env=env)
    assert refetch.returncode == 0 and "downloading it again" in refetch.stdout


def test_verify_passes_on_the_bundled_models():
    p = run_cli("models", "verify")
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"{len(BUNDLED)} file(s) match their sha256" in p.stdout


def test_a_broken_extra_registry_is_one_line(tmp_path):
    reg = tmp_path / "r.yaml"
    reg.write_text("models:\n  - name: x\n    url: http://127.0.0.1/x\n")
    p = run_cli("models", "list", env={"EDGEBENCH_REGISTRY": str(reg)})
    assert p.returncode == 2 and "no valid sha256" in p.stderr and p.stderr.count("\n") == 1


# ------------------------------------------------------------- registry names everywhere
def test_every_command_takes_a_registry_name(tmp_path):
    """Issue 16, item 11: `run --model shapes-int8` said "model file not found"."""
    out = tmp_path / "r.json"
    p = run_cli("run", "--model", "shapes-int8", "--frames", "5", "--no-probes", "--json", str(out), "-q")
    assert p.returncode == 0, p.stderr
    assert json.loads(out.read_text())["model"]["name"] == "shapes_int8.tflite"
    p = run_cli(
        "run", "--model", "shapes-int8", "--scenario", "single-stream", "--frames", "5", "--min-queries", "0",
        "--no-probes", "-q",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    p = run_cli("sweep", "--model", "shapes-int8", "--frames", "3", "--power", "none", "-q")
    assert p.returncode == 0, p.stderr
    p = run_cli("run", "--model", "shapes-int9", "--frames", "5")
    assert p.returncode == 3 and "did you mean shapes-int8?" in p.stderr


def test_a_jobs_registry_name_is_taken_and_checked_at_start():
    from edgebench.agent.errors import UserError
    from edgebench.agent.service.agent import AgentService, resolve_model

    AgentService({"jobs": [{"name": "hourly", "model": "shapes-int8", "frames": 5}]}, "dev-a")
    with pytest.raises(UserError, match="job hourly: model not found"):
        AgentService({"jobs": [{"name": "hourly", "model": "no-such-model", "frames": 5}]}, "dev-a")
    assert resolve_model("shapes-int8", None).endswith("models/shapes_int8.tflite")


def test_run_fetches_a_registry_model_that_is_not_here_yet(test_registry):
    env, cache, good = test_registry
    p = run_cli(
        "run", "--model", "t-good", "--source", str(ROOT / "models" / "testsets" / "shapes" / "cross" / "000.png"),
        "--frames", "3", "--no-probes", env=env,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "t-good is not on this machine yet: fetching it" in p.stderr
    assert sha256(cache / "remote_shapes.tflite") == good and (cache / "remote_labels.txt").is_file()


def test_verify_agrees_with_info_on_a_file_known_by_its_sha256(test_registry, tmp_path):
    env, _cache, _good = test_registry
    copy = tmp_path / "elsewhere.tflite"
    shutil.copy(ROOT / "models" / "shapes_uint8.tflite", copy)
    info = run_cli("models", "info", str(copy), env=env)
    assert "registry: shapes-uint8" in info.stdout, info.stdout
    v = run_cli("models", "verify", str(copy), "t-good", env=env)
    assert v.returncode == 0, v.stdout + v.stderr
    assert f"ok        shapes-uint8  {copy} (known by its sha256)" in v.stdout
    assert "not fetched" not in v.stdout and "t-good" in v.stdout and "not in the cache" in v.stdout
