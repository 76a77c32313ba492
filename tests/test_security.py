"""Security: safe YAML, explicit plug-ins, no unpickling of foreign files, loopback servers,
no secrets in logged params.

Every check is behavioural where it can be (a payload that would leave a marker file if it
ran, sockets actually listening, bytes actually in the sqlite store); the source scan backs up
what a behavioural test cannot cover exhaustively.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from graft_hpo.cli import main
from graft_hpo.config import DataConfig
from graft_hpo.config import ModelConfig
from graft_hpo.config import load_pipeline
from graft_hpo.exceptions import ConfigError

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "graft_hpo"

# ---- YAML: safe loader only


def _payload(marker: Path) -> str:
    """A YAML tag that, under an unsafe loader, would create ``marker``."""
    return f"!!python/object/apply:builtins.open ['{marker}', 'w']"


def test_python_tags_in_a_pipeline_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "ran"
    pipeline = tmp_path / "evil.yaml"
    pipeline.write_text(f"name: evil\ndata:\n  name: digits\ntrain: {_payload(marker)}\n")
    with pytest.raises(ConfigError) as info:
        load_pipeline(str(pipeline))
    message = str(info.value)
    assert str(pipeline) in message and "line 4" in message
    assert "python/object/apply:builtins.open" in message
    assert not marker.exists()

    assert main(["validate", str(pipeline)]) == 2  # bad input, through the CLI
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("graft-hpo validate: error: ")
    assert not marker.exists()


def test_python_tags_in_overrides_and_search_spaces_are_refused(tmp_path: Path) -> None:
    from graft_hpo.space import load_space

    marker = tmp_path / "ran"
    with pytest.raises(ConfigError, match="python/object/apply"):
        load_pipeline("digits", [f"train.lr={_payload(marker)}"])
    space = tmp_path / "space.yaml"
    space.write_text(f"params:\n  train.lr: {_payload(marker)}\n")
    with pytest.raises(ConfigError, match="python/object/apply"):
        load_space(str(space))
    assert not marker.exists()


# ---- plug-ins: only an explicit "module:attr" imports anything


@pytest.fixture
def probe_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """An importable module that leaves a marker file when imported."""
    name = "graft_hpo_security_probe"
    marker = tmp_path / "imported"
    (tmp_path / f"{name}.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n\n"
        "def build(*args, **kwargs):\n    raise RuntimeError('never built here')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    return name, marker


def test_a_bare_name_is_never_imported(probe_module: tuple[str, Path]) -> None:
    from graft_hpo.data import load_data
    from graft_hpo.models import check_model

    name, marker = probe_module
    for bare in (name, f"{name}.build"):
        with pytest.raises(ConfigError, match=r"model\.name must be one of .*'module:attr'"):
            check_model(ModelConfig(name=bare))
        with pytest.raises(ConfigError, match=r"data\.name must be one of .*'module:attr'"):
            load_data(DataConfig(name=bare), seed=0)
    assert not marker.exists() and name not in sys.modules

    # the explicit form runs the user's module, as documented
    check_model(ModelConfig(name=f"{name}:build"))
    assert marker.exists()


def test_plugins_are_documented_as_running_the_users_code() -> None:
    from graft_hpo import _registry

    assert "run the user's code" in " ".join((_registry.__doc__ or "").split())
    doc = " ".join((ROOT / "docs" / "reliability.md").read_text().split())
    assert "runs your code" in doc


# ---- no unpickling, eval or exec of anything a sweep did not write


def _calls(path: Path) -> list[tuple[str, ast.Call]]:
    """``(dotted name, node)`` of every call in a module, e.g. ``("yaml.load", node)``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(node, ast.Call):
            continue
        parts: list[str] = []
        func: ast.expr = node.func
        while isinstance(func, ast.Attribute):
            parts.append(func.attr)
            func = func.value
        if isinstance(func, ast.Name):
            parts.append(func.id)
            found.append((".".join(reversed(parts)), node))
    return found


def _keyword(node: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in node.keywords if k.arg == name), None)


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def _is_safe_loader(path: Path, loader: ast.expr | None) -> bool:
    """Whether a ``Loader=`` argument is yaml.SafeLoader or a subclass of it."""
    if loader is None:
        return False
    obj: Any
    if isinstance(loader, ast.Attribute) and isinstance(loader.value, ast.Name):
        obj = getattr(importlib.import_module(loader.value.id), loader.attr, None)
    elif isinstance(loader, ast.Name):
        obj = getattr(importlib.import_module(_module_name(path)), loader.id, None)
    else:
        return False
    return isinstance(obj, type) and issubclass(obj, yaml.SafeLoader)


def _sources() -> list[Path]:
    paths = sorted(PACKAGE.rglob("*.py"))
    assert len(paths) > 30  # the scan sees the package
    return paths


def test_the_package_never_evaluates_code_or_loads_yaml_unsafely() -> None:
    banned = {
        "eval", "exec", "compile", "os.system", "os.popen", "marshal.load", "marshal.loads",
        "yaml.unsafe_load", "yaml.full_load", "yaml.load_all", "yaml.unsafe_load_all",
    }  # fmt: skip
    problems = []
    for path in _sources():
        for name, node in _calls(path):
            where = f"{path.relative_to(ROOT)}:{node.lineno} {name}"
            if name in banned:
                problems.append(where)
            elif name == "yaml.load" and not _is_safe_loader(path, _keyword(node, "Loader")):
                problems.append(where + " (not a SafeLoader)")
            elif name == "torch.load":
                flag = _keyword(node, "weights_only")
                if not (isinstance(flag, ast.Constant) and flag.value is True):
                    problems.append(where + " (without weights_only=True)")
            elif name.startswith("subprocess."):
                shell = _keyword(node, "shell")
                if not (shell is None or (isinstance(shell, ast.Constant) and not shell.value)):
                    problems.append(where + " (shell=...)")
    assert problems == []


def test_the_package_never_unpickles() -> None:
    banned = {
        "pickle.load", "pickle.loads", "cloudpickle.load", "cloudpickle.loads", "dill.load",
        "dill.loads", "joblib.load", "shelve.open", "pd.read_pickle", "pandas.read_pickle",
    }  # fmt: skip
    problems = [
        f"{path.relative_to(ROOT)}:{node.lineno} {name}"
        for path in _sources()
        for name, node in _calls(path)
        if name in banned
        or (name in ("np.load", "numpy.load") and _keyword(node, "allow_pickle") is not None)
    ]
    assert problems == []


class _Payload:
    """Unpickling this creates a file: what a malicious "data set" could do instead."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def test_a_planted_cifar_batch_cannot_run_code(tmp_path: Path) -> None:
    from graft_hpo.data import load_data

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    marker = tmp_path / "ran"
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps({"data": _Payload(marker), "labels": [0]}))
    with pytest.raises(Exception) as info:  # which one: asserted below
        load_data(DataConfig(name="cifar10", root=str(tmp_path)), seed=0)
    assert not marker.exists(), "unpickling the planted file ran its code"
    assert isinstance(info.value, ConfigError) and "data_batch_1" in str(info.value)


# ---- servers: loopback unless the user opens them


def test_the_printed_server_commands_bind_loopback() -> None:
    from graft_hpo._text import sweep_text

    text = sweep_text(
        {
            "sweep_id": "s1",
            "trials": {"FINISHED": 1},
            "objectives": [["val_acc", "max"], ["co2_kg", "min"]],
            "pareto": [],
            "failed": [],
            "tracking_uri": "sqlite:////tmp/mlruns/mlflow.db",
            "optuna_storage": "sqlite:////tmp/sweeps/s1/optuna.db",
            "sweep_dir": "/tmp/sweeps/s1",
        }
    )
    servers = [line for line in text.splitlines() if "mlflow ui" in line or "dashboard" in line]
    assert len(servers) == 2
    assert all(line.endswith("--host 127.0.0.1") for line in servers), servers
    readme = [line for line in (ROOT / "README.md").read_text().splitlines()
              if "mlflow ui" in line or "optuna-dashboard " in line]  # fmt: skip
    assert readme and all("--host 127.0.0.1" in line for line in readme)


_LISTENERS = """
import json, psutil, ray, time
from graft_hpo.sweep import init_ray
init_ray(None, num_cpus=1)
time.sleep(2)
pids = {p.pid for p in psutil.Process().children(recursive=True)} | {psutil.Process().pid}
ips = sorted({c.laddr.ip for c in psutil.net_connections(kind="inet")
              if c.status == psutil.CONN_LISTEN and c.pid in pids})
print(json.dumps({"node": [n["NodeManagerAddress"] for n in ray.nodes()], "listen": ips}))
ray.shutdown()
"""


@pytest.mark.ray
def test_the_local_ray_of_a_sweep_listens_on_loopback_only(tmp_path: Path) -> None:
    # the environment a user's shell has: none of the variables tests/conftest.py sets for Ray
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(
        HOME=str(tmp_path),  # a bootstrap file keeps Ray's dashboard from probing the cloud
        RAY_USAGE_STATS_ENABLED="0",
        PYTHONPATH=str(ROOT),
    )
    (tmp_path / "ray_bootstrap_config.yaml").write_text("provider:\n  type: local\n")
    done = subprocess.run(
        [sys.executable, "-c", _LISTENERS],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["listen"], seen  # Ray's servers were found
    assert set(seen["listen"]) <= {"127.0.0.1", "::ffff:127.0.0.1", "::1"}, seen
    assert seen["node"] == ["127.0.0.1"], seen


# ---- no secrets in logged params


@pytest.mark.mlflow
def test_logged_params_mask_passwords_and_tokens(tmp_path: Path) -> None:
    from graft_hpo.config import flatten_config
    from graft_hpo.tracking import RunLogger
    from graft_hpo.tracking import query_runs

    db = tmp_path / "mlflow.db"
    config = load_pipeline(
        "digits",
        [
            "search.storage=postgresql://optuna:S3cret-pw@127.0.0.1:5432/studies",
            "tracking.uri=http://mlflow:Pw-2@127.0.0.1:5000",
            "data.options={api_token: tok-0123456789, auth: {password: hunter2-pw}}",
        ],
    )
    run = RunLogger.start(f"sqlite:///{db}", "secrets")
    run.log_params(flatten_config(config))  # what run_trial and the sweep's parent run log
    run.end()
    (record,) = query_runs(f"sqlite:///{db}", "secrets")
    assert record.params["search.storage"] == "postgresql://optuna:***@127.0.0.1:5432/studies"
    assert record.params["tracking.uri"] == "http://mlflow:***@127.0.0.1:5000"
    assert record.params["data.options.api_token"] == "***"
    assert record.params["data.options.auth.password"] == "***"
    assert record.params["train.lr"] == "0.05"
    raw = db.read_bytes()  # nowhere in the store, not just not in the params API
    for secret in (b"S3cret-pw", b"Pw-2", b"tok-0123456789", b"hunter2-pw"):
        assert secret not in raw


@pytest.mark.mlflow
def test_a_url_password_with_a_slash_is_masked(tmp_path: Path) -> None:
    from sqlalchemy.engine import make_url

    from graft_hpo.tracking import RunLogger
    from graft_hpo.tracking import query_runs

    url = "postgresql://optuna:pa/ss@127.0.0.1/studies"
    assert make_url(url).password == "pa/ss"  # what Optuna's storage would use
    run = RunLogger.start(f"sqlite:///{tmp_path / 'mlflow.db'}", "slash")
    run.log_params({"search.storage": url})
    run.end()
    (record,) = query_runs(f"sqlite:///{tmp_path / 'mlflow.db'}", "slash")
    assert "pa/ss" not in record.params["search.storage"]
