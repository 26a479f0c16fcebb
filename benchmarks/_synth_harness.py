"""Rare-failure experiment on CWRU: do generated fault windows help a few-shot fault classifier?

For each SNR, k (real fault windows per class) and seed:

1. training pool = every normal window of the first half of each recording (capped) + ``k`` random
   fault windows per class from the first half; the test set = non-overlapping windows of the
   second half (never seen by anything trained);
2. classical augmentation (jitter, scaling, shift, time warp) of the ``k`` fault windows;
3. generators are trained on the training pool only: the physics-informed conditional VAE
   (:class:`~synth.physics_vae.PhysicsVAE`, the default) and, on request, the convolutional
   conditional VAE and WGAN-GP;
4. each generator's fault windows go through the quality gate against the same training pool
   (the only real fault windows available in this setting); they join training only if they pass.
   An *audit* gate against 40 first-half windows per fault class that share no sample with the
   few-shot ones (still never the test half; same added noise as the synthetic windows get) is
   reported but decides nothing;
5. classifiers (MiniRocket + ridge = the product's; random forest and logistic regression on
   classical features) are trained on: real; real + classical; real + classical + each generator's
   samples (used whether or not they pass the gate, to show their effect; the "gated" rows replace
   them by nothing when the gate rejects them);
6. macro-F1 on the test half.
"""

# ruff: noqa: N806

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from synth import (
    CWRU_SHAFT_HZ,
    ClassicalAugmenter,
    ConditionalVAE,
    CWRUData,
    FeatureClassifier,
    MiniRocketClassifier,
    QualityGate,
    cwru_condition_features,
    cwru_defect_frequencies,
    few_shot,
    load_cwru,
    make_generator,
)
from synth.quality import plot_comparison

__all__ = ["markdown_table", "run_gap_experiment", "run_rare_failure", "summarise"]

CLASSIFIERS = ("minirocket", "rf_features", "logreg_features")


def _classifier(name: str, seed: int, num_kernels: int) -> Any:
    from core.assets import BearingGeometry

    d = BearingGeometry.skf_6205().defect_frequencies(CWRU_SHAFT_HZ)
    defects = {"bpfo": d.bpfo, "bpfi": d.bpfi, "bsf2": 2 * d.bsf}
    if name == "minirocket":
        return MiniRocketClassifier(num_kernels=num_kernels, random_state=seed)
    kind = "rf" if name.startswith("rf") else "logreg"
    return FeatureClassifier(fs=12_000.0, kind=kind, defects=defects, shaft_hz=CWRU_SHAFT_HZ, random_state=seed)


def _macro_f1(y: NDArray[np.int64], p: NDArray[np.int64]) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, p, average="macro"))


def _gate() -> QualityGate:
    return QualityGate(fs=12_000.0, defect_frequencies=cwru_defect_frequencies(), shaft_hz=CWRU_SHAFT_HZ)


def _audit_reference(
    data: CWRUData, seen: NDArray[np.int64] | None = None, per_class: int = 40
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """``per_class`` evenly spaced first-half windows of each fault class that share no sample with ``seen``.

    ``seen`` indexes ``data.X_train`` (the few-shot windows the generator is trained on); training
    windows overlap their neighbours by half (stride 512), so those are left out too.
    """
    seen = np.empty(0, dtype=np.int64) if seen is None else np.asarray(seen, dtype=np.int64)
    rows = []
    for c in range(1, 10):
        idx = np.flatnonzero(data.y_train == c)
        idx = idx[~np.isin(idx, np.concatenate([seen - 1, seen, seen + 1]))]
        rows.append(idx[:: max(1, idx.size // per_class)][:per_class])
    idx = np.concatenate(rows)
    return data.X_train[idx], data.y_train[idx]


def run_rare_failure(
    data_dir: Path | str,
    *,
    snrs: Sequence[float] = (-4.0, 0.0),
    ks: Sequence[int] = (1, 2),
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    n_aug: int = 50,
    n_gen: int = 50,
    max_normal: int = 200,
    vae_steps: int = 400,
    gan_steps: int = 600,
    physics_steps: int = 800,
    generators: Sequence[str] = ("physics_vae",),
    num_kernels: int = 10_000,
    classifiers: Sequence[str] = CLASSIFIERS,
    out: Path | str | None = None,
    plot_dir: Path | str | None = None,
    log: Callable[[str], None] = lambda m: print(m, flush=True),
) -> dict[str, Any]:
    """Run the experiment; write JSON to ``out`` after every run (partial results survive)."""
    runs: list[dict[str, Any]] = []
    steps = {"vae": vae_steps, "gan": gan_steps, "physics_vae": physics_steps}
    meta = {
        "snrs_db": list(snrs),
        "ks": list(ks),
        "seeds": list(seeds),
        "n_aug_per_class": n_aug,
        "n_gen_per_class": n_gen,
        "max_normal_train": max_normal,
        "generators": list(generators),
        "steps": {g: steps[g] for g in generators},
        "minirocket_kernels": num_kernels,
        "window": 1024,
        "train_stride": 512,
        "channels": ["DE"],
        "classifiers": list(classifiers),
        "conditions": ["real", "real+classical", *[f"real+classical+{g}" for g in generators]],
    }
    t0 = time.time()
    for snr in snrs:
        data = load_cwru(data_dir, snr_db=snr, max_normal_train=max_normal)
        for seed in seeds:
            for k in ks:
                run = _one_run(
                    data,
                    snr=snr,
                    k=k,
                    seed=seed,
                    n_aug=n_aug,
                    n_gen=n_gen,
                    generators=generators,
                    steps=steps,
                    num_kernels=num_kernels,
                    classifiers=classifiers,
                    plot_dir=Path(plot_dir) if plot_dir is not None and seed == seeds[0] else None,
                    log=log,
                )
                runs.append(run)
                log(f"[{time.time() - t0:7.0f}s] snr={snr} k={k} seed={seed} " + json.dumps(run["macro_f1"]["minirocket"]))
                result = {"meta": {**meta, "elapsed_s": round(time.time() - t0)}, "summary": summarise(runs), "runs": runs}
                if out is not None:
                    Path(out).parent.mkdir(parents=True, exist_ok=True)
                    Path(out).write_text(json.dumps(result, indent=1, default=float))
    return {"meta": {**meta, "elapsed_s": round(time.time() - t0)}, "summary": summarise(runs), "runs": runs}


def _one_run(
    data: CWRUData,
    *,
    snr: float,
    k: int,
    seed: int,
    n_aug: int,
    n_gen: int,
    generators: Sequence[str],
    steps: dict[str, int],
    num_kernels: int,
    classifiers: Sequence[str],
    plot_dir: Path | None,
    log: Callable[[str], None],
) -> dict[str, Any]:
    X_k, y_k, seen = few_shot(data.X_train, data.y_train, k, seed=1000 * k + seed)
    X_audit, y_audit = _audit_reference(data, seen)
    faults = np.arange(1, 10)
    X_cl, y_cl = ClassicalAugmenter(n_per_class=n_aug, random_state=seed).augment(X_k, y_k, classes=faults)
    gens = {g: make_generator(g, seed=seed, snr=snr, steps=steps) for g in generators}
    gate = _gate()
    fault_mask = y_k > 0
    synthetic: dict[str, tuple[NDArray[np.float32], NDArray[np.int64]]] = {}
    gate_info: dict[str, Any] = {}
    for name, gen in gens.items():
        t = time.time()
        gen.fit(X_k, y_k)
        fit_s = time.time() - t
        y_syn = np.repeat(faults, n_gen)
        X_syn = gen.sample(y_syn.size, y_syn, random_state=seed + 17)
        synthetic[name] = (X_syn, y_syn)
        # the gate sees only what the generator saw: the k real windows per fault class
        deploy = gate.evaluate(X_k[fault_mask], y_k[fault_mask], X_syn, y_syn)
        audit = gate.evaluate(
            X_audit,
            y_audit,
            X_syn[np.isin(y_syn, y_audit)],
            y_syn[np.isin(y_syn, y_audit)],
            plot_dir=None if plot_dir is None else plot_dir / f"snr{snr:g}_k{k}_{name}",
        )
        gate_info[name] = {"fit_s": round(fit_s, 1), "passed": deploy.passed, "deploy": _brief(deploy), "audit": _brief(audit)}
        log(
            f"  {name}: fit {fit_s:.0f}s gate passed={deploy.passed} audit disc={audit.discriminative_score:.3f} "
            f"mmd={audit.mmd:.3f} spectral={audit.spectral_passed}"
        )
    gate_classical = {
        "deploy": _brief(gate.evaluate(X_k[fault_mask], y_k[fault_mask], X_cl, y_cl)),
        "audit": _brief(gate.evaluate(X_audit, y_audit, X_cl, y_cl)),
    }
    if plot_dir is not None:
        plot_comparison(
            X_audit, y_audit, X_cl, y_cl, 12_000.0, plot_dir / f"snr{snr:g}_k{k}_classical", cwru_defect_frequencies()
        )
    train_sets = {
        "real": (X_k, y_k),
        "real+classical": (np.concatenate([X_k, X_cl]), np.concatenate([y_k, y_cl])),
    }
    for name in gens:
        Xs, ys = synthetic[name]
        train_sets[f"real+classical+{name}"] = (np.concatenate([X_k, X_cl, Xs]), np.concatenate([y_k, y_cl, ys]))
    scores: dict[str, dict[str, float]] = {c: {} for c in classifiers}
    for clf_name in classifiers:
        for cond_name, (Xt, yt) in train_sets.items():
            clf = _classifier(clf_name, seed, num_kernels).fit(Xt, yt)
            scores[clf_name][cond_name] = round(_macro_f1(data.y_test, clf.predict(data.X_test)), 4)
        for name in gens:  # gated: rejected samples do not join training
            forced = scores[clf_name][f"real+classical+{name}"]
            scores[clf_name][f"real+classical+{name}(gated)"] = (
                forced if gate_info[name]["passed"] else scores[clf_name]["real+classical"]
            )
    return {"snr_db": snr, "k": k, "seed": seed, "macro_f1": scores, "gate": gate_info, "gate_classical": gate_classical}


def _brief(r: Any) -> dict[str, Any]:
    return {
        "passed": r.passed,
        "discriminative": round(r.discriminative_score, 4),
        "predictive": round(r.predictive_score, 4),
        "mmd": round(r.mmd, 4),
        "spectral_passed": r.spectral_passed,
        "spectral_rel_err": {k: v["relative_error"] for k, v in r.spectral.items() if v["assessed"]},
        "failures": r.failures,
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean, std and n of macro-F1 per (snr, k, classifier, condition) and gate pass rates."""
    out: dict[str, Any] = {}
    keys = sorted({(r["snr_db"], r["k"]) for r in runs})
    for snr, k in keys:
        rs = [r for r in runs if r["snr_db"] == snr and r["k"] == k]
        block: dict[str, Any] = {}
        for clf in rs[0]["macro_f1"]:
            block[clf] = {}
            for cond in rs[0]["macro_f1"][clf]:
                v = np.array([r["macro_f1"][clf][cond] for r in rs])
                std = float(v.std(ddof=1)) if v.size > 1 else 0.0
                block[clf][cond] = {"mean": round(float(v.mean()), 4), "std": round(std, 4), "n": int(v.size)}
        block["gate_pass_rate"] = {g: float(np.mean([r["gate"][g]["passed"] for r in rs])) for g in rs[0]["gate"]}
        block["audit_discriminative"] = {
            g: round(float(np.mean([r["gate"][g]["audit"]["discriminative"] for r in rs])), 4) for g in rs[0]["gate"]
        }
        block["deploy_discriminative"] = {
            g: round(float(np.mean([r["gate"][g]["deploy"]["discriminative"] for r in rs])), 4) for g in rs[0]["gate"]
        }
        if "gate_classical" in rs[0]:
            gc = [r["gate_classical"] for r in rs]
            block["classical_gate_pass_rate"] = float(np.mean([g["deploy"]["passed"] for g in gc]))
            block["classical_deploy_discriminative"] = round(float(np.mean([g["deploy"]["discriminative"] for g in gc])), 4)
            block["classical_audit_discriminative"] = round(float(np.mean([g["audit"]["discriminative"] for g in gc])), 4)
            block["classical_audit_mmd"] = round(float(np.mean([g["audit"]["mmd"] for g in gc])), 4)
            block["classical_audit_spectral_pass_rate"] = float(np.mean([g["audit"]["spectral_passed"] for g in gc]))
        block["audit_mmd"] = {g: round(float(np.mean([r["gate"][g]["audit"]["mmd"] for r in rs])), 4) for g in rs[0]["gate"]}
        block["audit_spectral_pass_rate"] = {
            g: float(np.mean([r["gate"][g]["audit"]["spectral_passed"] for r in rs])) for g in rs[0]["gate"]
        }
        # the criterion: best generator over classical alone, product classifier
        if "minirocket" in block:
            base = np.array([r["macro_f1"]["minirocket"]["real+classical"] for r in rs])
            gains = {}
            for g in rs[0]["gate"]:
                d = np.array([r["macro_f1"]["minirocket"][f"real+classical+{g}"] for r in rs]) - base
                gains[g] = {"mean": round(float(d.mean()), 4), "std": round(float(d.std(ddof=1)) if d.size > 1 else 0.0, 4)}
            best = max(gains, key=lambda g: gains[g]["mean"])
            block["generator_gain_minirocket"] = gains
            block["done_criterion"] = {
                "best_generator": best,
                "gain": gains[best]["mean"],
                "std": gains[best]["std"],
                "met": bool(gains[best]["mean"] >= 0.05 and gains[best]["mean"] > 2 * gains[best]["std"]),
            }
        out[f"snr{snr:g}_k{k}"] = block
    return out


def markdown_table(result: dict[str, Any]) -> str:
    """The README tables: macro-F1 mean +- std per setting, classifier and training set; the gate; RUL."""
    summ = result["summary"]
    meta = result["meta"]
    gens = list(meta.get("generators", ["vae", "gan"]))
    conds = ["real", "real+classical", *[f"real+classical+{g}" for g in gens], *[f"real+classical+{g}(gated)" for g in gens]]
    steps = ", ".join(f"{g} {n}" for g, n in meta.get("steps", {}).items())
    lines = [
        "### Rare-failure experiment (CWRU 12 kHz DE, 0 HP, 10 classes, 1024-sample windows)",
        "",
        f"Macro-F1 on the second half of every recording, mean +- std over seeds {meta['seeds']}; "
        f"k real fault windows per class + {meta['max_normal_train']} normal windows; "
        f"{meta['n_aug_per_class']} classical and {meta['n_gen_per_class']} generated windows per fault class; "
        f"training batches: {steps}; MiniRocket {meta['minirocket_kernels']} kernels.",
        "",
        "| SNR | k | classifier | " + " | ".join(conds) + " |",
        "| --- | --- | --- | " + " | ".join("---" for _ in conds) + " |",
    ]
    for key, block in summ.items():
        snr, k = key[3:].split("_k")
        for clf in ("minirocket", "rf_features", "logreg_features"):
            if clf not in block:
                continue
            cells = [f"{block[clf][c]['mean']:.3f} +- {block[clf][c]['std']:.3f}" if c in block[clf] else "" for c in conds]
            lines.append(f"| {snr} dB | {k} | {clf} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Quality gate (deploy: against the k real windows the generator saw; audit: against 40 unseen "
        "first-half windows per fault class that share no sample with the k seen ones, reported only). "
        "Mean over seeds.",
        "",
        "| SNR | k | generator | deploy pass rate | deploy discriminative | audit discriminative | audit MMD | "
        "audit spectral pass rate | gain over classical (MiniRocket) | done (>= 0.05 and > 2 std) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, block in summ.items():
        snr, k = key[3:].split("_k")
        gains = block.get("generator_gain_minirocket", {})
        best = block.get("done_criterion", {}).get("best_generator")
        for g in block["gate_pass_rate"]:
            gain = gains.get(g, {})
            done = block["done_criterion"]["met"] if g == best else ""
            lines.append(
                f"| {snr} dB | {k} | {g} | {block['gate_pass_rate'][g]:.2f} | "
                f"{block.get('deploy_discriminative', {}).get(g, float('nan')):.3f} | "
                f"{block['audit_discriminative'][g]:.3f} | {block['audit_mmd'][g]:.3f} | "
                f"{block['audit_spectral_pass_rate'][g]:.2f} | "
                f"{gain.get('mean', 0):+.3f} +- {gain.get('std', 0):.3f} | {done} |"
            )
        if "classical_audit_discriminative" in block:
            lines.append(
                f"| {snr} dB | {k} | classical aug. (reference) | {block['classical_gate_pass_rate']:.2f} | "
                f"{block['classical_deploy_discriminative']:.3f} | {block['classical_audit_discriminative']:.3f} | "
                f"{block['classical_audit_mmd']:.3f} | {block['classical_audit_spectral_pass_rate']:.2f} | | |"
            )
    rul = result.get("rul_cmapss")
    if rul:
        rs, rm = rul["summary"], rul["meta"]
        lines += [
            "",
            f"### RUL with few run-to-failure units (C-MAPSS FD001, {rm['train_units_per_seed']} of "
            f"{rm['n_units']} training units, {len(rm['val_units'])} validation units, seeds {rm['seeds']})",
            "",
            "| training set | RMSE | PHM08 score |",
            "| --- | --- | --- |",
        ]
        for name in ("real", "real+vae"):
            lines.append(
                f"| {name} | {rs[name]['rmse']['mean']:.2f} +- {rs[name]['rmse']['std']:.2f} | "
                f"{rs[name]['phm08']['mean']:.0f} +- {rs[name]['phm08']['std']:.0f} |"
            )
        ch = rs["rmse_change"]
        lines.append(f"| paired RMSE change from synthetic late-life windows | {ch['mean']:+.2f} +- {ch['std']:.2f} | |")
    return "\n".join(lines) + "\n"


def run_gap_experiment(
    data_dir: Path | str,
    *,
    snrs: Sequence[float | None] = (None, 0.0),
    gaps: Sequence[int] = (8, 32),
    vae_steps: int = 800,
    seed: int = 0,
    out: Path | str | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Missing-data synthesis: a conditional VAE trained on first-half windows fills gaps in second-half ones."""
    from synth.gaps import evaluate_gap_filling

    res: dict[str, Any] = {
        "meta": {
            "vae_steps": vae_steps,
            "seed": seed,
            "gap_samples": list(gaps),
            "train": "first half of each recording (200 normal + all fault windows)",
            "test": "second half, one gap per window in the DE channel",
        },
        "results": {},
    }
    for snr in snrs:
        data = load_cwru(data_dir, snr_db=snr, max_normal_train=200)
        vae = ConditionalVAE(condition_features=cwru_condition_features(), n_steps=vae_steps, random_state=seed)
        vae.fit(data.X_train, data.y_train)
        key = "clean" if snr is None else f"snr{snr:g}"
        res["results"][key] = {
            f"gap{g}": {k: round(v, 4) for k, v in evaluate_gap_filling(vae, data.X_test, data.y_test, gap=g, seed=seed).items()}
            for g in gaps
        }
        log(f"gaps {key}: {res['results'][key]}")
        if out is not None:
            Path(out).write_text(json.dumps(res, indent=1))
    return res
