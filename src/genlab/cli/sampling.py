"""`genlab sample`: N images from a trained run as PNG files with a manifest, without its training data."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub, name: str, text: str, flags: dict[str, argparse.ArgumentParser]) -> None:
    s = sub.add_parser(name, help=text, parents=[flags["debug"], flags["checkpoint"]],
                       description="Write N images drawn from a trained run's model (or its reconstructions of "
                                   "a folder of images) as PNG files, with manifest.json recording the checkpoint "
                                   "and its SHA-256, the step, the seed, each image's label and the generator "
                                   "weights. The training data is not read.")
    s.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    s.add_argument("-n", type=int, default=64, metavar="N", help="how many images (default 64)")
    s.add_argument("--out", type=Path, metavar="DIR",
                   help="output folder (default: RUN_DIR/samples/CHECKPOINT_seedSEED, or .../reconstructions)")
    s.add_argument("--seed", type=int, default=0, help="noise seed (default 0): the same seed, the same images")
    s.add_argument("--labels", metavar="LIST", help="conditional models: class indices or names separated by "
                                                    "commas, cycled over the N images (default: all classes)")
    s.add_argument("--live", action="store_true",
                   help="GANs with a weight-averaged generator: draw from the live (trained) weights instead")
    s.add_argument("--reconstruct", type=Path, metavar="FOLDER",
                   help="autoencoder family: reconstruct the images of FOLDER instead (at most N of them; "
                        "each one's file is in the manifest)")
    s.add_argument("--batch-size", type=int, default=256, help="images per forward pass (default 256)")
    s.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    s.add_argument("--overwrite", action="store_true", help="replace a sample set already in --out")
    s.set_defaults(run=sample)


def sample(args) -> int:
    from genlab.device import select_device
    from genlab.errors import GenlabError
    from genlab.run import load_model
    from genlab.sampling import check_output, draw, parse_labels, read_folder_images, reconstruct, write_set

    if args.n < 1 or args.batch_size < 1:
        raise GenlabError(f"-n and --batch-size must be at least 1 (got -n {args.n}, --batch-size {args.batch_size}).")
    kind = "reconstructions" if args.reconstruct else f"{args.checkpoint}_seed{args.seed}"
    out = args.out or args.run_dir / "samples" / kind
    check_output(out, args.overwrite)  # before the model is loaded: a refused folder costs nothing
    trained = load_model(args.run_dir, args.checkpoint)
    device = select_device(args.device)
    if args.reconstruct:
        if args.labels or args.live:
            raise GenlabError("--labels and --live are for samples; reconstructions take neither.")
        images, files = read_folder_images(args.reconstruct, trained, limit=args.n)
        recon = reconstruct(trained, images, batch_size=args.batch_size, device=device)
        path = write_set(out, recon, trained, overwrite=args.overwrite, kind="reconstructions",
                         source=f"reconstructions (posterior mean) of {args.reconstruct}", sources=files)
    else:
        labels = parse_labels(args.labels, trained)
        drawn = draw(trained, args.n, seed=args.seed, labels=labels, live=args.live, batch_size=args.batch_size,
                     device=device)
        path = write_set(out, drawn.images, trained, overwrite=args.overwrite, kind="samples", source=drawn.source,
                         seed=args.seed, generator_weights=drawn.generator_weights, labels=drawn.labels)
    count = len(recon) if args.reconstruct else args.n
    print(f"{count} {'reconstructions' if args.reconstruct else 'samples'} of {args.run_dir} "
          f"({args.checkpoint} checkpoint, step {trained.step}) in {out}; manifest: {path}")
    return 0
