"""`landsight similar index | query`: find chips that look alike, with a classifier's backbone embeddings."""

from __future__ import annotations

import click

from landsight.cli import options
from landsight.cli.advice import CommandGroup
from landsight.imagery.bands import parse_band_indexes


@click.group(cls=CommandGroup)
def similar() -> None:
    """Similarity search over chips (cosine similarity of a classifier's embeddings)."""


@similar.command()
@options.model_arg
@click.argument("chips", nargs=-1, required=True, type=options.InputPath())
@options.output_opt
@click.option("-k", type=click.IntRange(min=1), default=5, show_default=True,
              help="k of the leave-one-out precision@k printed when "
              "the chips sit in class folders.")
@options.bands_opt
@options.device_opt
@options.overwrite_opt
def index(model: str, chips: tuple[str, ...], output: str, k: int, bands: str | None, device: str,
          overwrite: bool) -> None:
    """Embed CHIPS (chip files, folders of chips, rasters cut into windows) with MODEL into an INDEX file (.npz)."""
    from landsight.classify.classifier import Classifier
    from landsight.classify.similar import build_index, index_precision
    from landsight.outputs import check_output

    check_output(output, overwrite)
    built = build_index(Classifier.load(model, device), chips, parse_band_indexes(bands), str(model))
    built.save(output, overwrite)
    click.echo(f"indexed {len(built)} chip(s) ({built.vectors.shape[1]}-d embeddings); wrote {output}")
    precision = index_precision(built, k)
    if precision is not None:
        click.echo(f"leave-one-out precision@{k} over {precision[1]} labelled chips: {precision[0]:.3f}")


@similar.command()
@click.argument("index_path", metavar="INDEX", type=options.InputPath(exists=True, dir_okay=False))
@click.argument("image", type=options.InputPath(exists=True, dir_okay=False))
@click.option("-k", type=click.IntRange(min=1), default=10, show_default=True, help="Number of results.")
@click.option("--model", default=None, type=options.InputPath(dir_okay=False),
              help="MODEL that built the index [the path stored in it].")
@click.option("--html", default=None, type=click.Path(dir_okay=False), help="Write an HTML strip of thumbnails.")
@options.bands_opt
@options.device_opt
@options.overwrite_opt
def query(index_path: str, image: str, k: int, model: str | None, html: str | None, bands: str | None,
          device: str, overwrite: bool) -> None:
    """The K chips of INDEX most similar to IMAGE, best first, with cosine similarity scores."""
    from landsight.classify.query import query_index

    results, built = query_index(index_path, image, k, model, parse_band_indexes(bands), device, html,
                                 overwrite)
    for rank, (i, score) in enumerate(results, start=1):
        click.echo(f"{rank:>3}  {score:.4f}  {built.labels[i] or '-':<16} {built.ids[i]}")
    if html:
        click.echo(f"wrote {html}")
