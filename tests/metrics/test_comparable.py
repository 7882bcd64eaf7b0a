"""Tables that refuse to mix protocols: compare, report and results mark rows whose runs made a score
differently, say why, and refuse with --strict."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from genlab.cli import main
from genlab.comparison import compare_table
from genlab.errors import GenlabError
from genlab.metrics.comparable import mismatches, refuse, table_flags
from genlab.reporting import build_report
from genlab.results import results_rows

FID = {"fid": 31.2, "kid_mean": 0.01, "kid_std": 0.001, "n_real": 2400, "n_fake": 2400, "pr_k": 3,
       "reference_split": "validation split of cat-faces (300 images); 300 drawn with seed 0",
       "extractor": {"name": "inception-v3-fid", "resize": "bilinear to 299x299", "weights": "pt_inception.pth",
                     "weights_sha256": "abc"},
       "model_mode": "eval (BatchNorm running statistics, dropout off)", "checkpoint": "best", "step": 10,
       "score_keys": ["fid", "kid_mean", "kid_std"]}


def _run(root: Path, name: str, entry: dict, key: str = "fid_inception") -> Path:
    run = root / name
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(f"name: {name}\nmodel: {{name: vae}}\n")
    (run / "metrics.json").write_text(json.dumps({key: entry}))
    return run


def _changed(**fields) -> dict:
    e = copy.deepcopy(FID)
    for k, v in fields.items():
        if k.startswith("extractor_"):
            e["extractor"][k[len("extractor_"):]] = v
        else:
            e[k] = v
    return e


@pytest.mark.parametrize("fields, what", [
    ({"n_fake": 350}, "generated-image count"),
    ({"reference_split": "test split of cat-faces"}, "reference split"),
    ({"extractor_resize": "nearest to 299x299"}, "resizer"),
    ({"extractor_weights_sha256": "def"}, "feature weights"),
    ({"pr_k": 5}, "k of precision/recall"),
    ({"binarisation": "dynamic"}, "binarisation"),
    ({"model_mode": "batch statistics: ..."}, "model mode"),
])
def test_each_protocol_difference_is_named(fields, what):
    reasons = mismatches({"a": FID, "b": _changed(**fields)})
    assert len(reasons) == 1 and reasons[0].startswith(what), reasons
    assert " in a" in reasons[0] and " in b" in reasons[0]


def test_same_protocol_gives_no_flag_and_values_may_differ():
    assert mismatches({"a": FID, "b": _changed(fid=12.0, step=99, checkpoint="last")}) == []


def test_a_field_one_run_does_not_record_is_not_assumed_equal():
    legacy = {k: v for k, v in FID.items() if k != "model_mode"}
    (reason,) = mismatches({"new": FID, "old": legacy})
    assert "model mode" in reason and "not recorded in old" in reason


def test_compare_marks_the_row_and_explains_it_and_strict_refuses(tmp_path, capsys):
    a, b = _run(tmp_path, "a", FID), _run(tmp_path, "b", _changed(n_fake=350, n_real=350))
    header, rows, flags = compare_table([a, b])
    assert set(flags) == {"fid_inception"} and len(flags["fid_inception"]) == 2
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "⚠ fid_inception / fid" in out and "generated-image count (n_fake) differs: 2400 in a; 350 in b" in out
    assert "⚠ fid_inception / checkpoint" in out and all(r[0].startswith("fid_inception") for r in rows)
    # CSV keeps the row names scripts look up; the reasons go in a column of their own
    assert main(["compare", str(a), str(b), "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith(",protocol_mismatch") and lines[1].startswith("fid_inception / checkpoint,")
    assert "n_fake" in lines[1] and "⚠" not in "".join(lines)
    assert main(["compare", str(a), str(b), "--strict"]) != 0
    err = capsys.readouterr().err
    assert "mixes protocols" in err and "n_fake" in err
    c = _run(tmp_path, "c", _changed(fid=10.0))
    assert main(["compare", str(a), str(c), "--strict"]) == 0


def test_report_lists_the_mismatches_and_strict_writes_nothing(tmp_path, capsys):
    a, b = _run(tmp_path, "a", FID), _run(tmp_path, "b", _changed(model_mode="batch statistics"))
    page = build_report([a, b])
    assert 'id="protocol-mismatches"' in page and "model mode (model_mode) differs" in page
    out = tmp_path / "r.html"
    assert main(["report", str(a), str(b), "-o", str(out), "--strict"]) != 0
    assert not out.exists() and "mixes protocols" in capsys.readouterr().err
    assert 'id="protocol-mismatches"' not in build_report([a, _run(tmp_path, "c", FID)])


def test_results_flags_a_measure_whose_two_runs_differ(tmp_path, capsys):
    rand = {"fd_randconv": 1.4, "n_real": 350, "n_fake": 350, "score_keys": ["fd_randconv"], "checkpoint": "last",
            "model_mode": "eval"}
    _run(tmp_path, "dcgan_anime64", rand, "fd_randconv")
    _run(tmp_path, "dcgan_anime64_recommended", {**rand, "fd_randconv": 0.7, "n_fake": 2400}, "fd_randconv")
    _, rows, flags = results_rows(tmp_path)
    (row,) = [r for r in rows if "fd_randconv" in r[1] and r[0].startswith("DCGAN")]
    assert list(flags) == [f"{row[0]} / {row[1]}"]
    assert main(["results", str(tmp_path), "--strict"]) != 0
    assert main(["results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "⚠ fd_randconv" in out and "generated-image count" in out


def test_a_weight_average_in_one_run_only_is_part_of_the_model_not_of_the_protocol(tmp_path):
    """The recommended GAN configs add ema_decay; their scores still compare with the original's."""
    live = {**FID, "generator_weights": "live weights (no weight average)"}
    ema = {**FID, "generator_weights": "weight-averaged generator (ema_decay 0.999)"}
    assert mismatches({"original": live, "recommended": ema}) == []


def test_model_modes_compare_by_kind_and_a_network_without_batchnorm_agrees_with_either():
    batch = "batch statistics: D's BatchNorm normalises each real-only and each fake-only batch of up to {} images"
    no_bn = "eval (D has no BatchNorm: eval and training modes compute the same function)"
    assert mismatches({"a": _changed(model_mode=batch.format(128)), "b": _changed(model_mode=batch.format(64))}) == []
    assert mismatches({"a": _changed(model_mode=batch.format(128)), "b": _changed(model_mode=no_bn)}) == []
    assert mismatches({"a": FID, "b": _changed(model_mode=no_bn)}) == []
    (reason,) = mismatches({"a": FID, "b": _changed(model_mode=batch.format(128))})
    assert reason == "model mode (model_mode) differs: eval in a; batch statistics in b"


def test_refuse_names_every_row():
    flags = table_flags({"a": {"x": FID, "y": FID}, "b": {"x": _changed(pr_k=5), "y": _changed(n_real=1)}})
    with pytest.raises(GenlabError) as err:
        refuse(flags, "this table")
    assert "[x] k of precision/recall" in str(err.value) and "[y] real-image count" in str(err.value)
