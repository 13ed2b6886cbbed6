"""The layering the code promises: export/ imports nothing of manifolds, fit or training, and the
CLI and the configs import nothing heavy, so bad options are refused in well under a second."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import metaforge

PACKAGE = Path(metaforge.__file__).parent
ABOVE_EXPORT = ("metaforge.manifold", "metaforge.checkpoint", "metaforge.inr", "metaforge.fit", "metaforge.train",
                "metaforge.deploy", "metaforge.bundle", "metaforge.cli")
HEAVY = ("torch", "onnx", "onnxruntime", "tensorflow", "litert_torch", "ai_edge_litert", "tensorrt", "matplotlib", "numpy")


def imports_of(path: Path) -> set[str]:
    """Every metaforge module ``path`` imports, at the top or inside a function (TYPE_CHECKING blocks too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("metaforge"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("metaforge"))
    return found


def test_export_imports_nothing_above_it():
    graph = {p.stem: sorted(imports_of(p)) for p in sorted((PACKAGE / "export").glob("*.py"))}
    assert {"pipeline", "registry", "report", "gates", "onnx", "tflite", "runtime"} <= set(graph)
    upward = {m: [i for i in deps if i.startswith(ABOVE_EXPORT)] for m, deps in graph.items()}
    assert not any(upward.values()), upward


def test_report_names_one_thing():
    """"report" is the export report alone (report.json beside an artifact): progress sinks, fit
    documents and the profile checks are named for what they are, not "report" or "ci"."""
    named = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if p.stem in ("report", "ci", "checks"))
    assert named == ["export/report.py"], named


def test_the_import_walk_sees_imports_inside_functions(tmp_path):
    """The graph test must be able to fail: a lazy import of fit inside a function is found."""
    f = tmp_path / "m.py"
    f.write_text("def g():\n    from metaforge.fit import fit\n    import metaforge.train.run\n")
    assert imports_of(f) == {"metaforge.fit", "metaforge.train.run"}


def _modules_after(code: str) -> list[str]:
    probe = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[-1])


def test_cli_and_configs_import_nothing_heavy():
    loaded = _modules_after(
        "from metaforge.cli import _register; _register()\n"
        "import metaforge.train.config, metaforge.profiles, metaforge.targets, metaforge.fit.document, metaforge.deploy.pick"
    )
    assert "metaforge.cli.export" in loaded and "metaforge.train.config" in loaded  # the probe really imported them
    heavy = [m for m in loaded if m.split(".")[0] in HEAVY]
    assert not heavy, heavy[:10]


def test_latency_tables_and_ingest_import_no_torch():
    """Reading a table, predicting with it and ingesting a device's results need numpy, not torch:
    only measuring a table (:mod:`metaforge.fit.measure_table`) builds modules."""
    loaded = _modules_after("import metaforge.bundle.ingest, metaforge.fit.table, metaforge.fit.predict")
    assert "metaforge.bundle.ingest" in loaded and "numpy" in loaded
    assert "torch" not in loaded and "metaforge.nets" not in loaded


@pytest.mark.parametrize("argv", [
    ["train", "--epochs", "0"],
    ["train", "--bn-mode", "batch"],
    ["train", "--preset", "resnet18"],
    ["fit", "m.safetensors", "--profile", "host-cpu", "--latency-ms", "-1"],
    ["fit", "m.safetensors", "--profile", "host-cpux"],
    ["export", "--manifold", "m.safetensors", "--config", "w=8,16,32 d=2,2,2", "--format", "onnx2", "--out", "e"],
    ["export", "--manifold", "m.safetensors", "--fit", "fit.json", "--out", "e"],
    ["materialize", "m.safetensors", "--config", "w=8", "--out", "o"],
    ["materialize", "{m}", "--config", "w=8,16,64 d=2,2,2", "--out", "o"],
    ["export", "--manifold", "{m}", "--config", "w=9,16,32 d=2,2,2", "--format", "onnx", "--out", "e"],
    ["profile", "ingest", "results.json", "--profile", "host-cpux"],
    ["profile", "ingest", "results.json", "--profile", "host-cpu"],
    ["profile", "ingest", "{bad}", "--profile", "host-cpu"],
])
def test_bad_options_are_refused_before_torch_is_imported(argv, tmp_path, tiny_run):
    bad = tmp_path / "not-results.json"  # "{bad}": JSON, but not a bundle's results
    bad.write_text('{"schema": "metaforge.bundle-results/0"}')
    argv = [a.format(m=tiny_run[0], bad=bad) for a in argv]  # "{m}": a good manifold, whose space the header holds
    code = ("from metaforge.cli import main\n"
            f"try:\n    main({argv!r})\nexcept SystemExit as e:\n    assert e.code == 2, e.code\nelse:\n    raise AssertionError('accepted')")
    r = subprocess.run([sys.executable, "-c", f"import sys\n{code}\nprint('torch' in sys.modules)"], capture_output=True,
                       text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stderr.startswith("error: ") and r.stdout.strip() == "False", (r.stdout, r.stderr)
