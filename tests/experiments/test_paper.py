"""``fcnseg experiment paper``: every part runs (smoke scale), verdicts follow the numbers, the report and JSON
hold them, the reference configs are the solver the experiment trains, and the probe measures what it says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fcnseg.cli.main import main
from fcnseg.config import TrainConfig, load_config
from fcnseg.experiments.paper import PART_NAMES, REFERENCE_LR, SCALES, reference_lr, run_paper
from fcnseg.experiments.paper import parts as parts_mod
from fcnseg.experiments.paper import scoring as scoring_mod
from fcnseg.experiments.paper.probe import solver_probe
from fcnseg.experiments.paper.runs import Trainer, config_digest
from fcnseg.experiments.results_md import BEGIN, END, paper_section, splice
from fcnseg.experiments.seeds import INCONCLUSIVE, NO, YES, seeded_verdict, spread

ROOT = Path(__file__).resolve().parents[2]
KEYS = {"reference_sgd", "dilation_vs_skips", "loss_sampling", "upsampling", "upper_bounds", "cues"}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> tuple[dict, Path, Path]:
    out, docs = tmp_path_factory.mktemp("paper"), tmp_path_factory.mktemp("docs")
    (docs / "RESULTS.md").write_text("# The miniature's report\n\nkept as it is\n")
    result = run_paper(out, scale="smoke", report=docs, log=lambda *a: None)
    return result, out, docs


def test_every_part_runs_into_one_json_with_the_issue_keys(smoke) -> None:
    _, out, docs = smoke
    saved = json.loads((out / "paper.json").read_text())
    assert KEYS <= set(saved) and set(PART_NAMES) == KEYS
    assert json.loads((docs / "results" / "paper.json").read_text()) == saved
    for part in KEYS:
        assert saved[part]["verdicts"], part
        assert all(v["verdict"] in (YES, NO, INCONCLUSIVE) and v["detail"] for v in saved[part]["verdicts"])
    assert saved["dilation_vs_skips"]["runs"]["fcn32s_os8"]["output_stride"] == 8
    assert set(saved["cues"]["rows"]) == {"reference", "reference_fg", "reference_bg", "fg_only", "bg_only", "shape"}
    whole = saved["loss_sampling"]["runs"]["whole"]
    assert [c["step"] for c in whole["per_seed"][0]["curve"]]  # Fig. 5's points
    assert set(whole["mean_iu"]) == {"mean", "sd", "values"} and whole["seeds"] == [0]
    assert (docs / "results" / "paper-fig5.png").stat().st_size > 1000


def test_every_run_is_trained_to_its_plateau(smoke) -> None:
    """Each run's folder says why it ended; the smoke scale's patience of 1 ends every run before its 3-step cap."""
    _, out, _ = smoke
    summaries = [json.loads(p.read_text()) for p in out.glob("*/seed0/summary.json")]
    assert len(summaries) >= 20 and all(
        s["early_stop"] == {"patience": 1, "min_delta": 0.0, "min_steps": 0, "metric": "mean_iu"} for s in summaries
    )
    assert all(s["end"] in ("early_stop", "max_iter") for s in summaries)


def test_the_report_keeps_the_other_section_and_prints_each_verdict(smoke) -> None:
    result, _, docs = smoke
    text = (docs / "RESULTS.md").read_text()
    assert text.startswith("# The miniature's report") and "kept as it is" in text
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    assert "**Every run is trained to its plateau**" in text and "**Each run is repeated with 1 seeds**" in text
    for part in KEYS:
        for v in result[part]["verdicts"]:
            assert f"**{v['verdict'][0].upper() + v['verdict'][1:]}**: {v['claim']}" in text


def test_a_second_run_reuses_finished_runs_and_merges_parts(smoke) -> None:
    _, out, _ = smoke
    again = run_paper(out, parts=["upsampling"], scale="smoke", report=None, log=lambda *a: None)
    assert KEYS <= set(again)  # the parts not rerun are still there
    first, last = again["meta"]["history"][-2:]  # every command that wrote paper.json, with what it trained
    assert first["parts"] == list(PART_NAMES) and first["runs_trained"] >= 15
    assert last["parts"] == ["upsampling"] and (last["runs_trained"], last["runs_reused"]) == (0, 4)


def test_another_seed_trains_only_that_seed_and_reports_the_spread(smoke, tmp_path) -> None:
    _, out, _ = smoke
    said: list[str] = []
    again = run_paper(
        out,
        parts=["upsampling"],
        scale="smoke",
        seeds=[0, 1],
        jobs=2,
        report=None,
        log=lambda *a: said.append(" ".join(map(str, a))),
    )
    assert again["meta"]["history"][-1]["runs_trained"] == 4  # seed 1 of the 4 runs; seed 0 reused
    assert any("4 run(s), 2 at a time" in s for s in said)
    run = again["upsampling"]["runs"]["fcn32s"]
    assert run["seeds"] == [0, 1] and len(run["mean_iu"]["values"]) == 2
    assert (out / "fcn32s" / "seed1" / "done.json").is_file()


def test_seeded_verdicts_decide_only_when_every_seed_agrees() -> None:
    assert seeded_verdict("c", [0.02, 0.01, 0.03], 0.0, ">", "d", quantity="q")["verdict"] == YES
    assert seeded_verdict("c", [-0.02, -0.01, -0.03], 0.0, ">", "d", quantity="q")["verdict"] == NO
    v = seeded_verdict("c", [0.02, -0.01, 0.03], 0.0, ">", "d", quantity="q")
    assert v["verdict"] == INCONCLUSIVE and v["reproduces"] is None and v["holds"] == [True, False, True]
    assert seeded_verdict("c", [0.01, -0.015], 0.02, "|<|", "d", quantity="q")["verdict"] == YES
    assert seeded_verdict("c", [0.03, 0.05], 0.02, "|<|", "d", quantity="q")["verdict"] == NO
    s = spread([0.4, 0.5, 0.6])
    assert s["mean"] == pytest.approx(0.5) and s["sd"] == pytest.approx(0.1)


def test_verdicts_are_computed_from_the_numbers(monkeypatch) -> None:
    """Same code, two sets of numbers: the verdict follows them."""

    class Fake:
        ps, device, seeds = SCALES["smoke"], "cpu", (0, 1)

        def train_many(self, reqs):
            return {
                (r.saved_as, r.seed): {
                    "dir": f"{r.key}/{r.seed}",
                    "label": r.key,
                    "arch": "a",
                    "cap": 3,
                    "batch": 2,
                    "lr": 1.0,
                    "seed": r.seed,
                    "steps": 2,
                    "end": "early_stop",
                    "train_s": 1.0,
                    "train_s_to_best": 1.0,
                    "curve": [],
                    "diverged": None,
                }
                for r in reqs
            }

    for learned, expected in (((0.41, 0.39), True), ((0.55, 0.56), False), ((0.41, 0.55), None)):
        scores = {
            "fcn32s/0": 0.40,
            "fcn32s/1": 0.40,
            "fcn32s_learned/0": learned[0],
            "fcn32s_learned/1": learned[1],
            "fcn8s/0": 0.5,
            "fcn8s/1": 0.5,
            "fcn8s_learned/0": 0.5,
            "fcn8s_learned/1": 0.5,
        }
        monkeypatch.setattr(
            scoring_mod,
            "held_out",
            lambda d, ps, dev, s=scores, **kw: {
                **{k: s[d] for k in ("mean_iu", "pixel_accuracy", "mean_accuracy", "fw_iu", "boundary_mean_iu")},
                "iu": [0.9, 0.3],
            },
        )
        v = parts_mod.upsampling_part(Fake())["verdicts"]
        assert v[0]["reproduces"] is expected and v[1]["reproduces"] is True


def test_the_config_digest_ignores_keys_left_at_their_defaults() -> None:
    a = load_config(None, ["train.lr=0.1"])
    assert config_digest(a) == config_digest(load_config(None, ["train.lr=0.1", "train.seed=1337"]))
    assert config_digest(a) != config_digest(load_config(None, ["train.lr=0.2"]))
    assert Trainer(Path("x"), SCALES["smoke"], "cpu").seeds == SCALES["smoke"].seeds


def test_a_run_finished_without_the_step_floor_is_kept_only_where_the_floor_could_not_have_changed_it(
    tmp_path,
) -> None:
    import hashlib
    import json

    from fcnseg.config import dump_config
    from fcnseg.experiments.paper.runs import Digests, _finished, _resumable

    base = ["train.lr=0.1", "train.max_iter=16000"]
    floored = Digests.of([*base, "train.early_stop={patience: 6, min_delta: 0.005, min_steps: 4000}"])
    old = config_digest(load_config(None, [*base, "train.early_stop={patience: 6, min_delta: 0.005}"]))
    assert floored.floor == 4000 and floored.without_floor == old != floored.config
    unset = {"train.lr": 0.1, "train.max_iter": 16000, "train.early_stop.patience": 6}
    unset |= {"train.early_stop.min_delta": 0.005, "train.early_stop.metric": "mean_iu"}  # as recorded before
    assert old == hashlib.sha256(json.dumps(unset, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def done(steps: int, digest: str) -> Path:
        path = tmp_path / f"done-{steps}-{digest[:4]}.json"
        path.write_text(json.dumps({"config": digest, "result": {"steps": steps, "end": "early_stop"}}))
        return path

    assert _finished(done(6500, old), floored) == {"steps": 6500, "end": "early_stop"}  # ended past the floor
    assert _finished(done(1750, old), floored) is None  # stopped on the starting plateau: trained again
    assert _finished(done(1750, floored.config), floored) is not None  # trained with the floor itself
    other = config_digest(load_config(None, ["train.lr=0.2"]))
    assert _finished(done(6500, other), floored) is None
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.safetensors").write_bytes(b"x")
    (run / "config.yaml").write_text(
        dump_config(load_config(None, [*base, "train.early_stop={patience: 6, min_delta: 0.005}"]))
    )
    assert _resumable(run, floored) and run.is_dir()  # a killed floorless run resumes under the floor


def test_splice_replaces_or_appends_one_section() -> None:
    once = splice("# head\n", "A")
    assert once == f"# head\n\n{BEGIN}\nA\n{END}\n"
    twice = splice(once + "tail\n", "B")
    assert twice == f"# head\n\n{BEGIN}\nB\n{END}\ntail\n"
    # the miniature's report rewrites the head only: the paper section and the notes after it stay
    assert paper_section("# old head\n\n" + twice) == f"{BEGIN}\nB\n{END}\ntail\n"
    assert paper_section("# head only\n") == ""


def test_the_reference_configs_are_the_solver_the_experiment_trains() -> None:
    """configs/voc-*.yaml: summed loss, SGD momentum 0.99, batch 1, fixed rate, the release's rates — and those are
    fcnseg's defaults, which the experiment's reference runs use (only the rate and budget set)."""
    defaults = TrainConfig()
    for name, arch in (
        ("voc-fcn32s", "fcn32s_vgg16"),
        ("voc-fcn16s", "fcn16s_vgg16"),
        ("voc-fcn8s", "fcn8s_vgg16"),
        ("voc-fcn8s-atonce", "fcn8s_atonce_vgg16"),
    ):
        cfg = load_config(ROOT / "configs" / f"{name}.yaml")
        t = cfg.train
        assert cfg.model.name == arch and t.lr == pytest.approx(REFERENCE_LR[arch], rel=1e-9)
        for key in ("momentum", "weight_decay", "bias_lr_mult", "schedule", "normalize", "iter_size", "optimizer"):
            assert getattr(t, key) == getattr(defaults, key), (name, key)
        assert cfg.data.batch_size == 1
    assert reference_lr("fcn32s_vgg16", 160) == pytest.approx(1e-10 * 187_500 / 25_600)
    assert reference_lr("fcn8s_vgg16", 160, 100) == pytest.approx(1e-14 * 187_500 / 25_600 * 100)


def test_the_probe_step_is_linear_in_the_rate() -> None:
    """From a zero score layer only score_fr has a gradient, and the logits are linear in it: ×100 rate, ×100 change."""
    probe = solver_probe(SCALES["smoke"], {1: 1e-9, 100: 1e-7})
    assert probe["grad_norm_score_fr"] > 0 and probe["grad_norm_conv1_1"] == 0
    a, b = (probe["sgd"][k]["mean_abs_logit_change"] for k in ("1", "100"))
    assert b / a == pytest.approx(100, rel=1e-3)
    assert probe["adamw"]["mean_abs_logit_change"] > 0


def test_a_wrong_part_is_one_line_and_exit_2(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["experiment", "paper", "--part", "everything"])
    assert e.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_background_only_nets_are_named() -> None:
    flat = {"per_seed": [{"mean_accuracy": 1 / 9}, {"mean_accuracy": 1 / 9}]}
    assert parts_mod.background_only(flat)
    assert not parts_mod.background_only({"per_seed": [{"mean_accuracy": 1 / 9}, {"mean_accuracy": 0.3}]})


def test_a_damaged_paper_json_is_one_line_and_a_damaged_done_json_retrains(tmp_path, capsys) -> None:
    (tmp_path / "paper.json").write_text("{not json")
    assert (
        main(
            [
                "experiment",
                "paper",
                "--scale",
                "smoke",
                "--part",
                "upper_bounds",
                "--out",
                str(tmp_path),
                "--report",
                "-",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "paper.json" in err[0] and "Traceback" not in err[0]
    out = tmp_path / "again"
    said: list[str] = []
    run_paper(out, parts=["upsampling"], scale="smoke", report=None, log=lambda *a: None)
    (out / "fcn32s" / "seed0" / "done.json").write_text("[1, 2")
    again = run_paper(out, parts=["upsampling"], scale="smoke", report=None, log=lambda *a: said.append(" ".join(a)))
    assert (again["meta"]["history"][-1]["runs_trained"], again["meta"]["history"][-1]["runs_reused"]) == (1, 3)
    assert any("training 1 run(s)" in s and "fcn32s/seed0" in s for s in said)  # the damaged one trained again
    assert json.loads((out / "fcn32s" / "seed0" / "done.json").read_text())["result"]["label"] == "FCN-32s"


def test_a_resumed_runs_record_counts_its_training_time_not_only_the_resumed_tail(tmp_path) -> None:
    from fcnseg.config import dump_config
    from fcnseg.experiments.paper.runs import Request

    run = tmp_path / "whole" / "seed0"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(dump_config(load_config(None, ["train.max_iter=16000"])))
    (run / "log.csv").write_text("step,loss,train_s,mean_iu\n250,1.0,600.5,0.2\n500,0.9,1201.0,0.3\n")
    (run / "summary.json").write_text(json.dumps({"end": "early_stop", "steps": 500}))
    record = Trainer(tmp_path, SCALES["smoke"], "cpu")._record(Request("whole", 0), run, None, wall=4.0)
    assert record["wall_s"] == 1201.0 and record["steps"] == 500  # the progress estimate reads wall_s


def test_log_rows_of_a_run_trained_in_pieces_count_its_seconds_across_them() -> None:
    from fcnseg.experiments.paper.runs import joined

    def rows(*pairs: tuple[int, float]) -> list[dict[str, str]]:
        return [{"step": str(s), "train_s": str(t), "loss": "1"} for s, t in pairs]

    # an older log: killed at step 3 (checkpoint at 2), resumed from 2 with the count restarted at 0
    old = joined(rows((1, 10.0), (2, 20.0), (2, 20.0), (3, 30.0), (3, 2.0), (4, 12.0)))
    assert [(int(r["step"]), float(r["train_s"])) for r in old] == [(1, 10), (2, 20), (2, 20), (3, 22), (4, 32)]
    # a log of today's trainer: the resumed piece goes on from the count at its checkpoint (20), nothing added
    new = joined(rows((1, 10.0), (2, 20.0), (3, 30.0), (3, 29.0), (4, 39.0)))
    assert [(int(r["step"]), float(r["train_s"])) for r in new] == [(1, 10), (2, 20), (3, 29), (4, 39)]
    assert [float(r["train_s"]) for r in joined(rows((1, 1.0), (2, 2.0)))] == [1.0, 2.0]  # one piece: as it was
