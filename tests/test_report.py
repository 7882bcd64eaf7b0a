"""genlab report: one self-contained HTML page of tiny runs, checked as text and in a real headless Chromium."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.cli import main
from genlab.errors import GenlabError
from genlab.reporting import build_report, write_report
from genlab.training import train
from helpers import headless_chromium, tiny_config

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
PNG_PREFIX = "data:image/png;base64,"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny VAE (every figure, plus per-epoch samples) and a tiny conditional GAN (metrics.json)."""
    out = tmp_path_factory.mktemp("report_runs")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # models this small train faster on one thread, and leave the other core free
    try:
        train(tiny_config(name="tiny_vae", train={"figures": True, "epoch_samples": True}), out=out)
        train(tiny_config(name="tiny_cgan", model={"name": "cgan", "g_width": 8, "d_width": 8, "latent_dim": 8,
                                                   "label_dim": 4},
                          objective={"kind": "adversarial"}, train={"figures": True}), out=out)
    finally:
        torch.set_num_threads(threads)
    return out / "tiny_vae", out / "tiny_cgan"


class _Page(HTMLParser):
    """The <img> attributes, the element ids and the text of an HTML page."""

    def __init__(self, text: str):
        super().__init__()
        self.imgs: list[dict[str, str]] = []
        self.ids: list[str] = []
        self.external: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a)
        if "id" in a:
            self.ids.append(a["id"])
        if (tag in ("link", "iframe") or (tag == "script" and "src" in a)
                or (a.get("src") or "").startswith(("http:", "https:", "//"))):
            self.external.append(tag)


def _pngs(run: Path) -> list[Path]:
    return sorted((run / "figures").rglob("*.png"))


def _section(text: str, ident: str) -> str:
    match = re.search(rf'<section[^>]*id="{ident}".*?</section>', text, re.S)
    assert match, f"no section #{ident}"
    return match.group(0)


# ------------------------------------------------------------------ the page as text


def test_two_runs_give_one_self_contained_page(runs):
    text = build_report(list(runs))
    page = _Page(text)
    assert page.external == []  # no script file, stylesheet link or remote image: one inline script at most
    assert text.count("<script>") == 1
    assert "tiny_vae" in text and "tiny_cgan" in text
    assert len(page.ids) == len(set(page.ids)) and {"comparison", "metrics", "run-1", "run-2"} <= set(page.ids)

    # One <img> per figure PNG of each run, each the file's bytes as a data URI; the per-epoch sample grids
    # only in a run's own report (in a comparison they were most of its size).
    files = [p for run in runs for p in _pngs(run) if p.parent.name != "epochs"]
    assert len(files) == 8 + 2  # VAE: 8 figures (kl_per_dim too); cGAN: samples + loss curves
    assert len(page.imgs) == len(files)
    assert "3 per-epoch sample grids: in this run's own report" in text
    alone = _Page(build_report([runs[0]]))
    assert len(alone.imgs) == len(_pngs(runs[0])) == 8 + 3
    embedded = []
    for img in page.imgs:
        assert img["src"].startswith(PNG_PREFIX)
        data = base64.b64decode(img["src"][len(PNG_PREFIX):], validate=True)
        Image.open(io.BytesIO(data)).verify()  # decodes as a PNG
        assert img.get("alt") and ("tiny_vae" in img["alt"] or "tiny_cgan" in img["alt"])
        embedded.append(data)
    assert sorted(embedded) == sorted(p.read_bytes() for p in files)


def test_metrics_table_shows_values_with_their_protocol(runs):
    metrics = _section(build_report(list(runs)), "metrics")
    assert "<table>" in metrics and "<th>protocol</th>" in metrics
    row = re.search(r"<tr><td[^>]*>tiny_cgan</td>.*?</tr>", metrics, re.S).group(0)
    assert "d_accuracy" in row and "real_split: validation" in row and "threshold: 0.5" in row
    assert "seed: 1" in row and "step: 18" in row  # protocol fields, next to the values, not among them


def test_comparison_has_a_column_per_run_and_figures_side_by_side(runs):
    comparison = _section(build_report(list(runs)), "comparison")
    header = re.search(r"<thead>(.*?)</thead>", comparison, re.S).group(1)
    assert re.findall(r"<th>(.*?)</th>", header) == ["", "tiny_vae", "tiny_cgan"]
    # What the runs are comes first: a VAE and a GAN have different objectives, so every loss row is marked
    for label in ("model", "data set", "images (train / validation)", "objective", "loss unit", "epochs trained"):
        assert f"<td>{label}</td>" in comparison, label
    assert re.search(r'<td class="differs">reconstruction: [^<]*</td><td class="differs">adversarial: ', comparison)
    assert '<td>digits at 12×12, limit 96, val_limit 24</td>' * 2 in comparison  # alike: not highlighted
    assert 'id="setup-differs"' in comparison and "These runs differ in objective" in comparison
    # no loss term is shared by a VAE and a GAN, so none is marked: a dash faces each value
    for name in ("validation loss (final, summed squared error per image + weighted KL)",
                 "validation kl (final, nats per image)", "validation loss_g (final", "validation fd_randconv (final"):
        assert f"<td>{name}" in comparison, name
    assert "<td>discriminator_real_vs_fake / d_accuracy</td>" in comparison
    # a score the metrics store is not repeated as a final validation term, and it says its unit and direction
    assert "validation active_units" not in comparison
    assert "latent_usage / active_units (dimensions, higher is better)</td>" in comparison
    vae_final = (runs[0] / "history.csv").read_text().splitlines()[-1].split(",")[6]  # last val row's loss
    assert f'<td class="num">{vae_final}</td>' in comparison
    samples = re.search(r"<h3>Samples</h3>(.*?)<h3>", comparison, re.S).group(1)
    assert samples.count("<img") == 2  # the same figure type of both runs, side by side
    assert "Reconstructions: not in run tiny_cgan" in comparison  # a GAN draws none


def test_losses_are_marked_where_the_runs_make_them_other_quantities(runs, tmp_path):
    """Another β: the total loss weighs the KL otherwise, its reconstruction and KL terms are still alike.
    Other data: no loss is comparable. A per-pixel mean: the reconstruction term has another unit."""
    def variant(name: str, old: str, new: str) -> Path:
        copy = tmp_path / name
        shutil.copytree(runs[0], copy)
        text = (copy / "config.yaml").read_text()
        assert old in text
        (copy / "config.yaml").write_text(text.replace(old, new))
        return copy

    beta = variant("beta", "beta: 1.0", "beta: 4.0")
    other_data = variant("data", "image_size: 12", "image_size: 16")
    mean = variant("mean", "reduction: sum", "reduction: mean")

    def marked(run: Path) -> set[str]:
        comparison = _section(build_report([runs[0], run]), "comparison")
        return set(re.findall(r"<td>⚠ validation (\w+)", comparison))

    assert marked(beta) == {"loss"}
    assert marked(other_data) == {"loss", "recon", "kl"}
    assert marked(mean) == {"loss", "recon"}
    note = _section(build_report([runs[0], beta]), "comparison")
    assert "These runs differ in objective" in note and "validation loss: it weighs its terms" in note
    assert "reconstruction: beta=1 (" in note and "reconstruction: beta=4 (" in note


def test_single_run_has_its_figures_and_config_summary_and_no_comparison(runs):
    text = build_report([runs[0]])
    assert 'id="comparison"' not in text
    assert len(_Page(text).imgs) == len(_pngs(runs[0]))
    for fact in ("vae (hidden_dims=[4, 8], latent_dim=3)", "reconstruction: recon_loss=mse", "digits at 12×12",
                 "96 train / 24 validation", "18 steps, 288 images", "3 of 3 epochs completed", "adam (lr=0.003"):
        assert fact in text, fact
    assert "<th>val_loss</th>" in text  # the per-epoch loss table


def test_latent_usage_and_warnings_are_shown(runs, tmp_path):
    text = build_report(list(runs))
    vae, gan = _section(text, "run-1"), _section(text, "run-2")
    stats = json.loads((runs[0] / "latent_stats.json").read_text())
    assert f"{stats['active_units']} of 3 latent dimensions active" in vae and "after epoch 3, step 18" in vae
    assert "Latent usage" not in gan and "posterior collapse warning" in _section(text, "comparison")
    assert "KL per latent dimension and active units" in text  # the kl_per_dim figure's title
    copy = tmp_path / "tiny_vae"
    shutil.copytree(runs[0], copy)
    stats["warning"] = "posterior collapse after epoch 2: only 0 of 3 latent dimensions are active"
    (copy / "latent_stats.json").write_text(json.dumps(stats))
    config = (copy / "config.yaml").read_text().replace("normalize: minus_one_one", "normalize: imagenet")
    (copy / "config.yaml").write_text(config)
    section = _section(build_report([copy]), "run-1")
    assert f'<p class="warning">Warning: {stats["warning"]}</p>' in section
    assert '<p class="warning">Config warning: model.output_activation &#x27;tanh&#x27; produces' in section


def test_runs_of_the_same_name_and_a_bare_run_folder(runs, tmp_path):
    copy = tmp_path / "copy" / "tiny_vae"
    copy.mkdir(parents=True)
    shutil.copy(runs[0] / "config.yaml", copy)  # a run that has not logged anything yet
    text = build_report([runs[0], copy])
    assert f"tiny_vae ({runs[0]})" in text and f"tiny_vae ({copy})" in text
    assert "no history.csv yet" in text and "Samples: not in run" in text


def test_errors_are_one_paragraph_genlab_errors(runs, tmp_path):
    cases = [([tmp_path / "missing"], tmp_path / "r.html", "does not exist"),
             ([tmp_path], tmp_path / "r.html", "is not a genlab run folder (no config.yaml)"),
             ([runs[0] / "config.yaml"], tmp_path / "r.html", "is not a genlab run folder"),
             ([runs[0]], tmp_path, "it is a folder"),
             ([runs[0]], runs[0] / "config.yaml" / "r.html", "is a file, not a folder"),
             ([runs[0]], runs[0] / "config.yaml" / "deeper" / "r.html", "cannot write the report")]
    for run_dirs, output, message in cases:
        with pytest.raises(GenlabError, match=re.escape(message)) as info:
            write_report(run_dirs, output)
        assert "\n" not in str(info.value)
    assert not list(tmp_path.glob("*.html")) and not list(tmp_path.glob(".*.tmp"))


def test_report_command(runs, tmp_path, capsys):
    out = tmp_path / "sub" / "report.html"
    assert main(["report", *map(str, runs), "-o", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert main(["report", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("genlab: error: ") and "does not exist" in " ".join(err.split())
    assert "\n\n" not in err and "Traceback" not in err


# ------------------------------------------------------------------ the page in a real browser


def test_report_renders_in_headless_chromium(runs, tmp_path):
    report = write_report(list(runs), tmp_path / "report.html")
    started = time.monotonic()
    browser = headless_chromium(tmp_path)
    try:
        from selenium.webdriver.support.wait import WebDriverWait

        browser.get(report.as_uri())
        all_loaded = "return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
        WebDriverWait(browser, 30).until(lambda b: b.execute_script(all_loaded))
        state = browser.execute_script("""
            const imgs = Array.from(document.images);
            return {images: imgs.length,
                    broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
                    without_alt: imgs.filter(i => !i.alt).length,
                    metrics_table: document.querySelector('#metrics table') !== null,
                    metrics_rows: document.querySelectorAll('#metrics table tbody tr').length,
                    comparison_table: document.querySelector('#comparison table') !== null,
                    fetched: performance.getEntriesByType('resource').map(e => e.name),
                    height: document.documentElement.scrollHeight};""")
        assert state["broken"] == [] and state["images"] == 10 and state["without_alt"] == 0
        assert state["metrics_table"] and state["metrics_rows"] >= 4 and state["comparison_table"]
        assert state["fetched"] == []  # self-contained: nothing requested beyond the file itself
        # Wide figures take the section's width at the default window size, and any figure enlarges on click
        # to its full size over the page, closing on a second click.
        widths = browser.execute_script("""return Array.from(document.querySelectorAll('figure.wide img'))
            .map(i => i.getBoundingClientRect().width);""")
        assert widths and min(widths) > 700, widths
        zoomed = browser.execute_script("""
            const img = document.querySelector('figure img'); img.click();
            const zoom = document.getElementById('zoom'), big = zoom.querySelector('img');
            return {shown: !zoom.hidden && getComputedStyle(zoom).display !== 'none', same: big.src === img.src,
                    small: img.getBoundingClientRect().width, natural: big.naturalWidth,
                    big: big.getBoundingClientRect().width, hint: zoom.querySelector('p').textContent};""")
        assert zoomed["shown"] and zoomed["same"] and zoomed["big"] == zoomed["natural"], zoomed
        assert "click or press Escape to close" in zoomed["hint"]
        closed = browser.execute_script("""document.getElementById('zoom').click();
            return document.getElementById('zoom').hidden && !document.querySelector('#zoom img');""")
        assert closed
        browser.set_window_size(1280, min(state["height"] + 100, 12000))  # the whole page in one screenshot
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "report.png"
        assert browser.save_screenshot(str(shot))
    finally:
        browser.quit()
    image = Image.open(shot)
    assert image.size[1] > 900 and np.asarray(image.convert("L")).std() > 5, image.size
    print(f"headless Chromium: {time.monotonic() - started:.1f} s, screenshot {shot}")


def test_the_objective_row_of_runs_of_different_kinds_names_only_each_runs_own_settings():
    from genlab.reporting import RunInfo, setup_rows

    def info(objective: dict) -> RunInfo:
        config = {"model": {"name": "m"}, "objective": objective}
        return RunInfo(run=None, label="r", config=config, history=[], metrics={}, figures={}, epoch_figures=[],
                       summary={})

    rows, differ = setup_rows([info({"kind": "reconstruction", "beta": 4.0}),
                               info({"kind": "adversarial", "real_target": 0.9})])
    vae, gan = dict(rows)["objective"]
    assert "beta=4" in vae and "real_target" not in vae and "—" not in vae, vae
    assert "real_target=0.9" in gan and "beta" not in gan and "—" not in gan, gan
    assert "objective" in differ
