"""`upgrade compat` and `upgrade check` through typer's CliRunner: output and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.model.desired import DesiredStateError, load_desired, parse_desired

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parents[2]
runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "code", "rule"),
    [
        (["--gpu", "NVIDIA H100 80GB HBM3", "--driver", "580.95.05", "--cuda", "13.0", "--kernel-module", "open"],
         0, None),
        (["--gpu", "h100", "--driver", "535.183.01", "--cuda", "12.8"], 1, "cuda-minor-version-compat"),
        (["--gpu", "Tesla V100-SXM2-32GB", "--driver", "580.82.07", "--cuda", "13.0"], 2, "cuda-drops-architecture"),
        (["--gpu", "H100", "--driver", "580.82.07", "--fabric-manager", "580.95.05"], 2, "fabric-manager-mismatch"),
        (["--gpu", "B200", "--driver", "580.82.07", "--kernel-module", "proprietary"], 2, "open-module-required"),
    ],
)
def test_compat_exit_codes(args: list[str], code: int, rule: str | None) -> None:
    result = runner.invoke(app, ["compat", *args, "--output", "json"])
    assert result.exit_code == code, result.output
    data = json.loads(result.stdout)
    rules = {f["rule"] for f in data["findings"]} - {"branch-end-of-life"}
    assert (rule in rules) if rule else rules == set()


def test_compat_table_output() -> None:
    result = runner.invoke(app, ["compat", "--gpu", "V100", "--driver", "580.82.07", "--kernel-module", "open"])
    assert result.exit_code == 2
    assert "open-module-unsupported" in result.stdout


def test_compat_unknown_gpu_is_an_input_error() -> None:
    result = runner.invoke(app, ["compat", "--gpu", "Voodoo5", "--driver", "580.82.07"])
    assert result.exit_code != 0
    assert isinstance(result.exception, ValueError)


def test_desired_state_loads_and_rejects_unknown_keys(tmp_path: Path) -> None:
    desired = load_desired(DATA / "target_example.yaml")
    assert set(desired.pools) == {"train-h100", "infer-a100", "legacy-v100"}
    with pytest.raises(DesiredStateError, match=r"pools\.p\.target\.drivr"):
        parse_desired("version: 1\npools:\n  p:\n    target: {drivr: '580.95.05'}\n", "t.yaml")
    with pytest.raises(DesiredStateError, match=r"t\.yaml: not valid YAML"):
        parse_desired("pools: [", "t.yaml")
    missing = tmp_path / "nope.yaml"
    with pytest.raises(DesiredStateError, match=r"nope\.yaml"):
        load_desired(missing)


def test_target_overlays_current_stack() -> None:
    from orchestrator.model.stack import SoftwareStack

    desired = load_desired(DATA / "target_example.yaml")
    current = SoftwareStack.model_validate({"driver": "535.183.01", "cudnn": "8.9.7.29", "cuda": "12.2"})
    after = desired.pools["infer-a100"].target.applied_to(current)
    assert str(after.driver) == "580.95.05" and str(after.cuda) == "12.8" and str(after.cudnn) == "8.9.7.29"


def test_check_example_fleet() -> None:
    result = runner.invoke(app, ["check", "-i", str(ROOT / "inventories/example"), str(DATA / "target_example.yaml"),
                                 "--facts", str(ROOT / "inventories/example/facts.json"), "--output", "json"])
    assert result.exit_code == 2, result.output
    data = json.loads(result.stdout)
    v100 = [h for h in data["hosts"].values() if h["pool"] == "legacy-v100"]
    assert v100 and any(f["rule"] == "cuda-drops-architecture" for f in v100[0]["target"])


@pytest.mark.parametrize(
    ("args", "code", "rule"),
    [
        # fabric manager as apt and dnf show it: the same release as the driver
        (["--gpu", "H100", "--driver", "580.95.05", "--fabric-manager", "580.95.05-1", "--kernel-module", "open"],
         0, None),
        (["--gpu", "H100", "--driver", "580.95.05-0ubuntu0.24.04.1", "--fabric-manager", "3:580.95.05-1.el9",
          "--cuda", "13.0.2-1", "--kernel-module", "open"], 0, None),
        (["--gpu", "H100", "--driver", "580.95.05", "--cuda", "13.0", "--nccl", "2.28.9-1+cuda12.9"],
         2, "nccl-cuda-mismatch"),
        (["--gpu", "A100", "--driver", "460.32.03", "--cuda", "11.2", "--os", "ubuntu:22.04", "--production"],
         2, "os-unsupported-by-cuda"),
        (["--gpu", "B200", "--driver", "550.127.08", "--kernel-module", "open"], 2, "driver-predates-architecture"),
    ],
)
def test_compat_package_forms_and_new_families(args: list[str], code: int, rule: str | None) -> None:
    result = runner.invoke(app, ["compat", *args, "--output", "json"])
    assert result.exit_code == code, result.output
    rules = {f["rule"] for f in json.loads(result.stdout)["findings"]} - {"branch-end-of-life"}
    assert (rule in rules) if rule else rules == set()


def test_compat_refuses_a_malformed_os() -> None:
    result = runner.invoke(app, ["compat", "--gpu", "H100", "--driver", "580.95.05", "--os", "ubuntu"])
    assert result.exit_code == 2
    assert "ID:VERSION_ID" in result.output


def test_check_judges_host_os_against_the_target(tmp_path: Path) -> None:
    # The example fleet runs Ubuntu 22.04, which CUDA 11.2's table does not list: an error in a production pool,
    # a warning in another.
    target = tmp_path / "target.yaml"
    target.write_text(
        "version: 1\npools:\n"
        "  infer-a100: {production: true, target: {cuda: '11.2'}}\n"
        "  train-h100: {production: false, target: {cuda: '11.2'}}\n"
    )
    result = runner.invoke(app, ["check", "-i", str(ROOT / "inventories/example"), str(target),
                                 "--facts", str(ROOT / "inventories/example/facts.json"), "--output", "json"])
    data = json.loads(result.stdout)
    found = {(h["pool"], f["rule"], f["severity"]) for h in data["hosts"].values() for f in h["target"] or []}
    assert ("infer-a100", "os-unsupported-by-cuda", "error") in found
    assert ("train-h100", "os-unsupported-by-cuda", "warning") in found
    assert result.exit_code == 2
