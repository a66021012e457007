"""Where a run computes (learning.device): the device request, bf16 autocast, and that the
CPU stays the default where there is no GPU. Runs on the CPU; the same code paths on a GPU
are tests/unit/test_cuda.py (skipped here, run by scripts/gpu-check.sh where a GPU is lent).

The bf16 tests use torch's CPU autocast: the learner's real step functions under autocast,
against the same step in fp32 from the same weights. They show the code path (forward in
bf16, losses and update in fp32) gives finite losses close to fp32, not any GPU speed."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from test_distributed import _columns, _network

from ouroboros.contract.game import GameSpec
from ouroboros.contract.run import RunConfig
from ouroboros.contract.vocabulary import PhaseName
from ouroboros.operator.builders import manifests
from ouroboros.operator.resources import TrainingRun
from ouroboros.trainer.commands import phase as phase_command
from ouroboros.trainer.commands import train
from ouroboros.trainer.learning import device, inference, networks, replay
from ouroboros.trainer.learning.checkpoint import TrainState
from ouroboros.trainer.learning.phases import config as pc
from ouroboros.trainer.learning.phases import execute, imitation, ppo

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("one_torch_thread")]

CPU = torch.device("cpu")
BF16 = device.Placement(CPU, torch.bfloat16)


@pytest.mark.parametrize(("requested", "gpus", "local_rank", "expected"), [
    ("auto", 0, 0, "cpu"),          # no GPU: the CPU, silently (the default everywhere without one)
    ("auto", 1, 0, "cuda:0"),
    ("auto", 4, 2, "cuda:2"),        # a learner group's rank takes its local GPU
    ("cpu", 4, 0, "cpu"),
    ("cuda", 1, 0, "cuda:0"),
    ("cuda", 2, 1, "cuda:1"),
    ("cuda:1", 2, 0, "cuda:1"),      # an explicit index is taken as written
    (" CUDA:0 ", 1, 0, "cuda:0"),
])
def test_a_device_request_resolves_to_the_device_torch_should_use(requested, gpus, local_rank, expected):
    assert device.resolve_device(requested, gpus, local_rank) == torch.device(expected)


@pytest.mark.parametrize(("requested", "gpus", "local_rank", "message"), [
    ("cuda", 0, 0, "device: cuda asked for, but this process sees no CUDA device"),
    ("cuda:0", 0, 0, "device: cuda:0 asked for, but this process sees no CUDA device"),
    ("cuda:2", 2, 0, "device: cuda:2 needs CUDA device 2, but this process sees 2"),
    ("cuda", 1, 1, "device: cuda for local rank 1 needs CUDA device 1, but this process sees 1"),
    ("gpu", 1, 0, "device: 'gpu' is not auto, cpu, cuda or cuda:N"),
    ("cuda:", 1, 0, "is not auto, cpu, cuda or cuda:N"),
    ("", 0, 0, "is not auto, cpu, cuda or cuda:N"),
])
def test_a_device_that_cannot_be_had_is_an_error_naming_the_field(requested, gpus, local_rank, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        device.resolve_device(requested, gpus, local_rank)


@pytest.mark.parametrize(("where", "asked", "bf16", "expected"), [
    ("cpu", None, False, None),            # default: fp32 on the CPU
    ("cuda:0", None, True, torch.bfloat16),  # default: bf16 on a GPU that computes it
    ("cuda:0", None, False, None),         # ... and fp32 on one that does not (pre-Ampere)
    ("cuda:0", False, True, None),
    ("cpu", True, False, torch.bfloat16),  # forced: torch's CPU autocast
    ("cuda:0", True, True, torch.bfloat16),
])
def test_mixed_precision_is_bf16_on_a_gpu_by_default_and_fp32_on_the_cpu(where, asked, bf16, expected):
    assert device.autocast_dtype(torch.device(where), asked, bf16) is expected


def test_forcing_bf16_on_a_gpu_without_it_is_an_error_naming_the_field():
    with pytest.raises(ValueError, match="mixed_precision: bf16 autocast asked for, but cuda:0 does not"):
        device.autocast_dtype(torch.device("cuda:0"), True, bf16_supported=False)


def test_here_the_default_run_computes_on_the_cpu_in_fp32():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: auto resolves to it (test_cuda.py covers that)")
    run = pc.RunSettings(run="r", store="memory://x")
    assert run.device == "auto" and run.mixed_precision is None
    assert device.placement(run.device, run.mixed_precision) == device.CPU
    with pytest.raises(ValueError, match="device: cuda asked for, but this process sees no CUDA device"):
        device.placement("cuda")


def test_a_run_config_refuses_a_device_it_does_not_know():
    doc = {"run": {"name": "r", "namespace": "n"}, "champion": "c", "game": {}, "model": {},
           "phases": [{"name": "bootstrap"}], "storage": {"url": "s3://bucket/runs"}}
    assert RunConfig.model_validate(doc).device == "auto"  # run.json written before devices existed
    assert RunConfig.model_validate({**doc, "device": "cuda:1"}).device == "cuda:1"
    with pytest.raises(ValueError, match="device"):
        RunConfig.model_validate({**doc, "device": "tpu"})


@pytest.mark.parametrize(("gpu", "expected"), [(0, "cpu"), (1, "cuda"), (2, "cuda")])
def test_the_operator_asks_for_cuda_exactly_when_the_run_requests_gpus(gpu, expected):
    run = TrainingRun.model_validate({
        "apiVersion": "ouroboros.dev/v1alpha1", "kind": "TrainingRun",
        "metadata": {"name": "r", "namespace": "n", "uid": "u"},
        "spec": {"champion": "c", "phases": [{"name": "bootstrap"}], "resources": {"gpu": gpu}}})
    config = RunConfig.model_validate_json(manifests.config_map(run)["data"]["run.json"])
    assert config.device == expected
    assert pc.run_settings(config).device == expected


def _ppo_step(placement: device.Placement) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    net = _network()
    settings = pc.phase_settings(PhaseName.SELF_PLAY, games=1, batch_size=48)
    state = TrainState(net, torch.optim.SGD(net.parameters(), lr=0.1))
    metrics = ppo.step(state, ppo.RolloutData(_columns(), settings), settings, 7, placement=placement)
    return metrics, net.state_dict()


def test_a_ppo_step_under_bf16_autocast_gives_finite_losses_close_to_fp32():
    fp32, fp32_weights = _ppo_step(device.CPU)
    bf16, bf16_weights = _ppo_step(BF16)
    assert fp32.keys() == bf16.keys()
    for name, value in fp32.items():
        assert np.isfinite(bf16[name]), name
        assert bf16[name] == pytest.approx(value, rel=0.05, abs=0.02), name
    start = _network().state_dict()
    for key, weight in bf16_weights.items():
        assert weight.dtype == start[key].dtype, key  # the weights stay fp32: only the forward is bf16
    moved = max(float((bf16_weights[k].float() - start[k].float()).abs().max()) for k in start)
    gap = max(float((bf16_weights[k].float() - fp32_weights[k].float()).abs().max()) for k in start)
    assert moved > 1e-3 and gap < moved / 2  # the bf16 step went where the fp32 step went


def _imitation_step(placement: device.Placement) -> tuple[dict[str, float], np.ndarray]:
    torch.manual_seed(0)
    net = _network()
    cols = _columns()
    rows = len(cols["move"])
    buffer = replay.ReplayBuffer({k: cols[k] for k in ("planes", "move", "mask", "value")}, ["k"],
                                 np.zeros(rows, np.int32), np.arange(rows, dtype=np.int32),
                                 replay.ReplayConfig(priority_alpha=0.6))
    settings = pc.phase_settings(PhaseName.BOOTSTRAP, games=1, batch_size=40)
    state = TrainState(net, torch.optim.SGD(net.parameters(), lr=0.1))
    metrics = imitation.step(state, buffer, settings, 7, placement=placement)
    return metrics, buffer.state_dict()["priority"]


def test_an_imitation_step_under_bf16_autocast_gives_finite_losses_close_to_fp32():
    fp32, fp32_priorities = _imitation_step(device.CPU)
    bf16, bf16_priorities = _imitation_step(BF16)
    for name, value in fp32.items():
        assert np.isfinite(bf16[name]), name
        assert bf16[name] == pytest.approx(value, rel=0.05, abs=0.02), name
    assert np.ptp(fp32_priorities) > 0  # the step set the sampled rows' priorities from their errors
    np.testing.assert_allclose(bf16_priorities, fp32_priorities, rtol=0.1, atol=0.02)  # value errors -> priorities


def test_a_device_forward_returns_float32_host_tensors_close_to_the_modules_own():
    net = _network().eval()
    planes = torch.from_numpy(_columns()["planes"][:17])
    with torch.no_grad():
        logits, value = net(planes)
    for autocast, tolerance in ((None, 1e-6), (torch.bfloat16, 0.05)):
        got_logits, got_value = inference.DeviceForward(net, autocast)(planes)
        assert got_logits.shape == (17, 4) and got_value.shape == (17, 1)
        assert got_logits.dtype == got_value.dtype == torch.float32 and got_logits.device.type == "cpu"
        torch.testing.assert_close(got_logits, logits, rtol=tolerance, atol=tolerance)
        torch.testing.assert_close(got_value, value, rtol=tolerance, atol=tolerance)


def test_cpu_state_copies_every_tensor_of_a_nested_state_to_the_host():
    net = _network()
    opt = torch.optim.Adam(net.parameters())
    net(torch.from_numpy(_columns()["planes"][:4]))[0].sum().backward()
    opt.step()
    state = device.cpu_state({"model": net.state_dict(), "optimizer": opt.state_dict(), "step": 3})
    assert type(state["model"]) is type(net.state_dict())  # an OrderedDict stays one
    tensors = [*state["model"].values(), *(v for s in state["optimizer"]["state"].values() for v in s.values())]
    assert tensors and all(t.device.type == "cpu" for t in tensors)
    assert state["step"] == 3


def test_a_phase_on_the_default_device_leaves_artifacts_that_load_without_a_map_location(tmp_path):
    run = pc.RunSettings(run="t", store=str(tmp_path), game=GameSpec(width=7, height=7, max_turns=30),
                         network=networks.NetworkConfig(architecture="cnn_simple", blocks=1, channels=8), seed=3)
    phase = pc.phase_settings(PhaseName.BOOTSTRAP, games=2, parallel_games=2, batch_size=16, epochs=1,
                              checkpoint_every=1)
    outcome = execute.execute(run, phase)
    from ouroboros.trainer.artifacts.store import ArtifactStore

    store = ArtifactStore(str(tmp_path))
    for key in (outcome.artifacts["weights"].key, outcome.artifacts["checkpoint"].key):
        payload = torch.load(io.BytesIO(store.get_bytes(key)), weights_only=True)  # no map_location
        found = list(_tensors(payload))
        assert found and all(t.device.type == "cpu" for t in found), key


def _tensors(value):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _tensors(v)


def test_ouro_train_refuses_a_gpu_it_does_not_have_before_any_work(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    code = train.main(["--preset", "smoke", "--store", str(tmp_path / "s"), "--logdir", str(tmp_path / "l"),
                       "--device", "cuda"])
    err = capsys.readouterr().err
    assert code == 2 and "--device: cuda asked for, but this process sees no CUDA device" in err
    assert train.main(["--device", "tpu", "--store", str(tmp_path / "s")]) == 2
    assert "--device: 'tpu' is not auto, cpu, cuda or cuda:N" in capsys.readouterr().err
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").rglob("*.pt"))


def test_ouro_phase_refuses_a_gpu_it_does_not_have_in_its_preflight(tmp_path):
    """A TrainingRun that requests a GPU, its run.json as the operator writes it, on a node
    without one: the phase stops before any work, naming the field."""
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    run = TrainingRun.model_validate({
        "metadata": {"name": "r", "namespace": "ns", "uid": "u"},
        "spec": {"champion": "c", "resources": {"gpu": 1}, "phases": [{"name": "bootstrap", "games": 2}],
                 "storage": {"url": f"file://{tmp_path}/store", "mountPath": str(tmp_path)}}})
    path = tmp_path / "run.json"
    path.write_text(manifests.config_map(run)["data"]["run.json"])
    result = tmp_path / "result.json"
    assert phase_command.main(["bootstrap", "--run-config", str(path), "--result", str(result)]) == 2
    written = json.loads(result.read_text())
    assert written["placeholder"] and written["message"].startswith("device: cuda asked for, but this process sees no")
    assert not (tmp_path / "store" / "runs").exists()  # nothing was played or written
