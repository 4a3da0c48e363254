"""From a search to a trained model: keep the best weights, export the winner, retrain it.

1. A short search (NAS-Bench-201 cells on the embedded MNIST digits) keeps the trained weights
   of its best 2 trials (``NASObjective(keep_weights=2, weights_dir=...)``; the others' are
   deleted as better trials arrive).
2. ``export_trial`` writes the best trial to a folder: ``architecture.json`` (space,
   architecture string, parameters, build arguments, where it came from), ``weights.pt`` and
   ``model.onnx``; ``load_model`` rebuilds the trained ``nn.Module`` from that folder alone
   (checked here: same outputs as the search's network).
3. ``retrain`` trains the architecture from scratch with its space's published evaluation
   protocol (``get_protocol("nasbench201")``: 200 epochs, SGD 0.1 Nesterov, cosine, wd 5e-4,
   C=16 with 5 cells per stage), here shortened with ``--retrain-epochs``, and records the test
   accuracy in the study (``retrain_results(study)``), next to the search accuracy.

The same flow from the command line: ``optuna-nas search``, ``optuna-nas export --trial best``,
``optuna-nas retrain``. About two minutes on a laptop CPU::

    python examples/export_and_retrain.py
    python examples/export_and_retrain.py --smoke        # seconds, for CI
"""

from __future__ import annotations

import argparse
import os

import optuna
import torch

from optuna_nas import EmbeddedDataModule
from optuna_nas import NASObjective
from optuna_nas import create_search_space
from optuna_nas.export import export_trial
from optuna_nas.export import load_architecture
from optuna_nas.export import load_model
from optuna_nas.retrain import get_protocol
from optuna_nas.retrain import retrain
from optuna_nas.retrain import retrain_results
from optuna_nas.samplers import RegularizedEvolutionSampler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-trials", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per search trial")
    parser.add_argument("--retrain-epochs", type=int, default=10)
    parser.add_argument("--out", default="export_and_retrain", help="folder for everything")
    parser.add_argument("--storage", default=None, help="default: sqlite:///<out>/nas.db")
    parser.add_argument("--smoke", action="store_true", help="a tiny run (seconds)")
    args = parser.parse_args()
    if args.smoke:
        args.n_trials, args.epochs, args.retrain_epochs = 3, 1, 1
    data = dict(dataset="digits", subset=240, image_size=8) if args.smoke else dict(subset=3000)
    channels = 4 if args.smoke else 8
    os.makedirs(args.out, exist_ok=True)

    # 1. Search, keeping the weights of the best 2 trials.
    space = create_search_space("nasbench201")
    objective = NASObjective(
        space,
        EmbeddedDataModule(**data),  # type: ignore[arg-type]
        max_epochs=args.epochs,
        build_kwargs={"channels": channels, "cells_per_stage": 1},
        keep_weights=2,
        weights_dir=os.path.join(args.out, "weights"),
    )
    study = optuna.create_study(
        direction="maximize",
        storage=args.storage or f"sqlite:///{os.path.join(args.out, 'nas.db')}",
        study_name="export-and-retrain",
        load_if_exists=True,
        sampler=RegularizedEvolutionSampler(seed=0, population_size=5, sample_size=2),
    )
    study.optimize(objective, n_trials=args.n_trials)
    best = study.best_trial
    print(f"best trial {best.number}: val_acc {best.value:.4f}, {best.user_attrs['arch']}")

    # 2. Export it and load it back, with nothing but the folder.
    folder = os.path.join(args.out, f"trial_{best.number}")
    exported = export_trial(study, "best", out_dir=folder)
    print(f"exported to {folder}: {sorted(os.listdir(folder))}")
    model = load_model(folder)
    searched = exported.build()
    searched.load_state_dict(torch.load(exported.weights_path, weights_only=True))
    x = torch.randn(4, exported.in_channels, exported.image_size, exported.image_size)
    with torch.no_grad():
        same = torch.allclose(model(x), searched.eval()(x))
    print(f"load_model({folder!r}): {type(model).__name__}, same outputs: {same}")

    # 3. Retrain from scratch with the space's protocol (shortened), recorded in the study.
    arch = load_architecture(folder)
    protocol = get_protocol(arch.search_space, epochs=args.retrain_epochs)
    if args.smoke:
        tiny = {"channels": 4, "cells_per_stage": 1}
        protocol = protocol.replace(batch_size=64, build_kwargs=tiny)
    result = retrain(
        arch.space,
        arch.arch,
        EmbeddedDataModule(**data),  # type: ignore[arg-type]
        protocol=protocol,
        checkpoint_dir=os.path.join(args.out, "retrain_ckpt"),
        study=study,
        trial_number=best.number,
    )
    recorded = retrain_results(study)[best.number]
    print(
        f"retrained {protocol.epochs} epochs ({result.n_params:,} parameters): "
        f"{result.split}_acc {result.test_acc:.4f} (search val_acc {best.value:.4f}); "
        f"recorded in the study: {recorded['test_acc']:.4f}"
    )


if __name__ == "__main__":
    main()
