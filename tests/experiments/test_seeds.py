"""Verdicts over seeds: "about the same" fails only when the seeds fail on one side; a seed where a run of the
comparison did not train decides nothing; seconds are shown as seconds, not as points."""

from __future__ import annotations

import pytest

from fcnseg.experiments.paper import SCALES
from fcnseg.experiments.paper import parts as parts_mod
from fcnseg.experiments.paper import scoring as scoring_mod
from fcnseg.experiments.paper.scoring import one_class, untrained
from fcnseg.experiments.seeds import INCONCLUSIVE, NO, YES, seeded_verdict, spread, verdict_line


def test_about_the_same_fails_only_when_every_seed_is_outside_the_band_on_one_side() -> None:
    # the upsampling part's FCN-32s at convergence: outside ±2 points on every seed, but in both directions
    v = seeded_verdict("c", [-0.056, 0.083, 0.030], 0.02, "|<|", "d", quantity="q")
    assert v["verdict"] == INCONCLUSIVE and v["holds"] == [False, False, False]
    assert seeded_verdict("c", [-0.056, -0.083, -0.030], 0.02, "|<|", "d", quantity="q")["verdict"] == NO
    assert seeded_verdict("c", [0.056, 0.083, 0.030], 0.02, "|<|", "d", quantity="q")["verdict"] == NO
    assert seeded_verdict("c", [0.01, -0.01, 0.0], 0.02, "|<|", "d", quantity="q")["verdict"] == YES
    assert "on one side to not reproduce" in verdict_line(v)


def test_a_seed_whose_run_did_not_train_leaves_the_verdict_undecided() -> None:
    args = ("c", [-0.08, -0.11, -0.17], 0.02, "<", "d")
    assert seeded_verdict(*args, quantity="q")["verdict"] == YES
    v = seeded_verdict(*args, quantity="q", untrained=[True, False, True])
    assert v["verdict"] == INCONCLUSIVE and v["reproduces"] is None and v["untrained"] == [True, False, True]
    assert "did not train on 2 of 3 seeds" in verdict_line(v)


def test_seconds_are_shown_as_seconds() -> None:
    v = seeded_verdict("c", [101.4, -189.2, -7179.6], 0.0, ">", "d", quantity="q", unit="s")
    line = verdict_line(v)
    assert "+101, -189, -7180 s (needs every seed above 0" in line and "points" not in line
    assert "+10.0, -20.0 points" in verdict_line(seeded_verdict("c", [0.1, -0.2], 0.0, ">", "d", quantity="q"))
    with pytest.raises(ValueError, match="unit 'ms'"):
        seeded_verdict("c", [1.0], 0.0, ">", "d", quantity="q", unit="ms")


def _run(accuracy: list[float], objects: list[float] | None = None) -> dict:
    found = objects or [0.3] * len(accuracy)
    return {"per_seed": [{"mean_accuracy": a, "iu": [0.9, f, 0.0]} for a, f in zip(accuracy, found, strict=True)]}


def test_one_class_everywhere_is_how_a_collapse_is_described() -> None:
    k = 9  # SyntheticShapes' classes: a net that predicts background everywhere has mean accuracy 1/9
    assert one_class(_run([1 / k, 0.1117, 1 / k + 1e-9])) == [True, False, True]  # FCN-32s-fixed: 0.1117
    assert one_class(_run([None, float("nan"), 0.5])) == [True, True, False]  # a diverged run has no score


def test_a_run_that_segments_no_object_class_did_not_train() -> None:
    # FCN-32s-fixed at convergence: its best object class at 0.014 IU; jitter seed 1 at 0.071 (trained, barely)
    fixed, jitter = _run([0.11] * 3, [0.007, 0.014, 0.006]), _run([0.15] * 3, [0.077, 0.071, 0.241])
    assert untrained(fixed) == [True, True, True] and untrained(jitter) == [False, False, False]
    assert untrained(_run([0.5] * 3, [0.3, 0.01, 0.3]), _run([0.5] * 3, [0.01, 0.3, 0.3])) == [True, True, False]
    assert untrained({"per_seed": [{"iu": []}, {"iu": [0.9, None, float("nan")]}]}) == [True, True]  # no score


class _Fake:
    ps, device, seeds = SCALES["smoke"], "cpu", (0, 1, 2)

    def train_many(self, reqs):
        base = {"arch": "a", "cap": 3, "batch": 2, "lr": 1.0, "steps": 2, "end": "early_stop", "curve": []}
        return {
            (r.saved_as, r.seed): {
                **base,
                "dir": f"{r.key}/{r.seed}",
                "label": r.key,
                "seed": r.seed,
                "train_s": 1.0,
                "train_s_to_best": 10.0 * (r.seed + 1) if r.key == "whole" else 100.0,
                "diverged": None,
            }
            for r in reqs
        }


@pytest.mark.parametrize("collapsed", [False, True])
def test_class_balancing_that_collapsed_decides_nothing(monkeypatch, collapsed: bool) -> None:
    """The converged run: inverse-frequency weights gave a uniform output on every seed — "unnecessary" must not
    be read off a training that broke."""
    iu = {"whole": 0.22, "sample_50": 0.21, "sample_25": 0.23, "balanced": 0.10, "jitter": 0.21}

    def held_out(d, ps, dev, **kw):
        key = d.split("/")[0]
        acc = 1 / 9 if key == "balanced" and collapsed else 0.3
        found = 0.0 if key == "balanced" and collapsed else 0.3
        scores = {"mean_iu": iu[key], "pixel_accuracy": 0.9, "mean_accuracy": acc, "fw_iu": 0.8}
        return scores | {"boundary_mean_iu": 0.1, "iu": [0.9, found, 0.0]}

    monkeypatch.setattr(scoring_mod, "held_out", held_out)
    v = {x["claim"]: x for x in parts_mod.loss_sampling_part(_Fake())["verdicts"]}
    balancing = v["class balancing is unnecessary"]
    assert balancing["verdict"] == (INCONCLUSIVE if collapsed else YES)
    assert "*costs* 12.0–12.0 points here on every seed" in balancing["detail"]
    assert "costs" not in v["mirroring and 32-px jitter give no noticeable gain"]["detail"]  # 1 point: within
    wall = v["whole-image training converges faster in wall time"]
    assert wall["unit"] == "s" and "+90, +80, +70 s" in verdict_line(wall) and wall["verdict"] == YES


def test_the_report_sums_a_set_trained_in_pieces() -> None:
    """Three commands wrote the numbers: the header gives their wall time summed and the runs' training time,
    each run × seed counted once though two parts share it; the commands are listed in order."""
    from fcnseg.experiments.paper.report import paper_markdown

    def run(d: str, train_s: float) -> dict:
        rec = {"dir": d, "train_s": train_s, "seed": 0, "curve": [], "steps": 4000, "cap": 16000, "end": "early_stop"}
        return {"steps": {"values": [4000]}, "per_seed": [rec], "label": d}

    shared = run("fcn32s/seed0", 1800.0)
    result = {
        "meta": {
            "machine": "test machine",
            "device": "cpu",
            "history": [
                {
                    "command": "fcnseg experiment paper",
                    "parts": ["a"],
                    "wall_s": 3600.0,
                    "runs_trained": 2,
                    "runs_reused": 0,
                },
                {
                    "command": "fcnseg experiment paper",
                    "parts": ["a"],
                    "wall_s": 1800.0,
                    "runs_trained": 0,
                    "runs_reused": 2,
                },
                {
                    "command": "fcnseg experiment paper --part b",
                    "parts": ["b"],
                    "wall_s": 1800.0,
                    "runs_trained": 0,
                    "runs_reused": 1,
                },
            ],
        },
        "a": {"runs": {"fcn32s": shared, "fcn8s": run("fcn8s/seed0", 3600.0)}, "verdicts": []},
        "b": {"runs": {"fcn32s": shared}, "verdicts": []},
    }
    text = paper_markdown(result, [])
    assert "run 3 times into the same folder" in text and "**2.0 h of wall time**" in text
    assert "2 runs × seeds, 1.5 h of training time" in text
    assert "<details>" in text and "3. `fcnseg experiment paper --part b` (**30.0 min**" in text


def test_a_run_that_stopped_on_its_caps_evaluation_counts_as_capped() -> None:
    from fcnseg.experiments.paper.scoring import capped

    # whole-image seed 2 at convergence: its plateau rule fired on step 16000, the cap itself
    assert capped({"end": "early_stop", "steps": 16000, "cap": 16000})
    assert capped({"end": "max_iter", "steps": 16000, "cap": 16000})
    assert not capped({"end": "early_stop", "steps": 15750, "cap": 16000})


def test_the_report_names_trainings_that_stopped_at_the_cap() -> None:
    from fcnseg.experiments.paper.report import paper_markdown

    rec = {"dir": "whole/seed2", "seed": 2, "curve": [], "steps": 16000, "cap": 16000, "end": "early_stop"}
    result = {"meta": {"history": []}, "a": {"runs": {"whole": {"label": "whole images", "per_seed": [rec]}}}}
    result["a"]["runs"]["whole"]["steps"] = {"values": [16000]}
    result["a"]["verdicts"] = []
    text = paper_markdown(result, [])
    assert "1 trainings (runs × seeds, each counted once)" in text
    lost = {"dir": "x100/seed0", "seed": 0, "curve": [], "steps": 31721, "cap": 128000, "end": "diverged"}
    result["a"]["runs"]["x100"] = {"label": "rule × 100", "per_seed": [lost], "steps": {"values": [31721]}}
    text = paper_markdown(result, [])
    assert (
        "all but 2 reached their plateau" in text and "**diverged** (loss NaN" in text and "rule × 100 (seed 0)" in text
    )
    result["a"]["runs"].pop("x100")
    text = paper_markdown(result, [])
    assert "**stopped at the cap**" in text and "whole images (seed 2)" in text


def test_a_diverged_run_stopped_where_it_diverged_not_at_its_cap() -> None:
    """rule × 100 at convergence: NaN at step 31721 of a 128000 cap — recorded at 128000 and read as capped."""
    from fcnseg.experiments.paper.runs import _steps
    from fcnseg.experiments.paper.scoring import capped

    rows = [{"step": "30000"}, {"step": "30000"}]
    assert _steps({}, "loss became nan at step 31721: with train.normalize=…", rows, 128000) == 31721
    assert _steps({}, "weights became non-finite by step 30500 (conv1)", rows, 128000) == 30500
    assert _steps({}, "diverged", rows, 128000) == 30000  # no step named: the last logged
    assert _steps({"steps": 52000}, None, rows, 128000) == 52000 and _steps({}, None, [], 128000) == 128000
    assert not capped({"end": "diverged", "steps": 128000, "cap": 128000})


def test_the_papers_numbers_read_as_words_and_diverged_seeds_are_named() -> None:
    from fcnseg.experiments.paper.report import _paper_text, _steps

    text = _paper_text({"fcn32s": 63.6, "fcn8s_atonce": 65.4, "source": "release, seg11valid"})
    assert text == "FCN-32s 63.6, FCN-8s at-once 65.4 mean IU (release, seg11valid)" and "{" not in text
    assert _paper_text("CVPR §3.3") == "CVPR §3.3"
    run = {"steps": {"mean": 31907.0, "sd": 161.0, "values": [31721, 32000, 32000]}, "cap": 128000, "diverged": 1}
    assert _steps(run) == "31907 ± 161 (diverged: 1 seed(s), at the step it did)"


def test_a_rate_learns_only_when_every_seed_clears_the_line() -> None:
    """Rule × 1 at convergence: 16.5, 11.6, 17.6 mean IU — its mean clears 15 points, one seed does not."""
    from fcnseg.experiments.paper.reference import _why_not

    def sweep_run(ious: list[float]) -> dict:
        recs = [{"mean_iu": v, "mean_accuracy": 0.2} for v in ious]
        return {"per_seed": recs, "mean_accuracy": spread([0.2] * len(ious)), "mean_iu": spread(ious)}

    probe = {"sgd": {"1": {"mean_abs_logit_change": 0.0082}}, "adamw": {"mean_abs_logit_change": 0.17}}
    probe["fc7_rms"] = 0.51
    text = _why_not(probe, {1: sweep_run([0.165, 0.116, 0.176]), 10: sweep_run([0.28, 0.36, 0.35])})
    assert "× 10 learns" in text and "× 1, × 10" not in text


def test_progress_says_how_many_runs_remain_and_their_time(tmp_path) -> None:
    """The upsampling part over 3 seeds: 12 runs; 3 finished at 10, 20 and 30 min → 9 left at 20 min each, two at a
    time: 1.5 h. A damaged done.json counts as not finished (it is trained again)."""
    import json
    import time

    from fcnseg.experiments.paper.progress import planned_runs, progress_line
    from fcnseg.experiments.paper.runs import Trainer

    tr = Trainer(tmp_path, SCALES["smoke"], "cpu", jobs=2, seeds=(0, 1, 2))
    assert planned_runs(tr, ["upsampling"]) == {
        (n, s) for n in ("fcn32s", "fcn32s_learned", "fcn8s", "fcn8s_learned") for s in (0, 1, 2)
    }
    assert "0 of 12 runs done, 12 to train (time per run: known once one has finished)" in progress_line(
        tr, ["upsampling"], time.perf_counter()
    )
    for seed, minutes in ((0, 10), (1, 20), (2, 30)):
        run = tmp_path / "fcn32s" / f"seed{seed}"
        run.mkdir(parents=True)
        (run / "done.json").write_text(json.dumps({"config": "x", "result": {"wall_s": 60.0 * minutes}}))
    (tmp_path / "fcn8s" / "seed0").mkdir(parents=True)
    (tmp_path / "fcn8s" / "seed0" / "done.json").write_text("{damaged")
    line = progress_line(tr, ["upsampling"], time.perf_counter())
    assert line.startswith("3 of 12 runs done, 9 to train: about 1.5 h at 20.0 min per run, 2 at a time;")
    # the reference part counts its rate sweep too: 4 multipliers + 3 staged nets, over 3 seeds
    assert len(planned_runs(tr, ["reference_sgd"])) == (len(SCALES["smoke"].sweep) + 3) * 3
