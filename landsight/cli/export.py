"""`landsight export`: a MODEL file (classifier or segmentation) to an ONNX edge model."""

from __future__ import annotations

import click

from landsight.cli import options


@click.command()
@options.model_arg
@click.option("--onnx", "onnx_path", required=True, type=click.Path(dir_okay=False), help="ONNX file to write.")
@click.option("--int8", is_flag=True, help="Quantize weights to int8 (dynamic quantization): smaller, less exact.")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True,
              help="Chips per batch for the check and the throughput measurement (segmentation: /8).")
@click.option("--bench-seconds", type=options.FiniteFloatRange(0, min_open=True), default=2.0, show_default=True,
              help="Time each runtime for at least this long.")
@options.threads_opt
@options.overwrite_opt
def export(model: str, onnx_path: str, int8: bool, batch_size: int, bench_seconds: float, threads: int | str,
           overwrite: bool) -> None:
    """Export MODEL to ONNX with its bands, normalization and classes in the ONNX metadata; check onnxruntime
    against PyTorch and print sizes and CPU throughput of both."""
    from landsight.classify.fit import set_cpu_threads
    from landsight.export.onnx import export_onnx

    set_cpu_threads(threads)
    r = export_onnx(model, onnx_path, int8, batch_size, overwrite, bench_seconds=bench_seconds)
    mb = 1024 * 1024
    click.echo(f"wrote {r.path}: {r.task} model, {'int8' if r.int8 else 'float32'}, {r.onnx_bytes / mb:.2f} MB "
               f"(MODEL file {r.model_bytes / mb:.2f} MB)")
    verdict = ("within tolerance" if r.tolerance is not None and r.within_tolerance else
               "NOT within tolerance" if r.tolerance is not None else "int8: no tolerance, compare the agreement")
    click.echo(f"onnxruntime vs PyTorch on a random batch {list(r.batch)}: max abs diff of logits {r.max_abs_diff:.2e}"
               + (f" (tolerance {r.tolerance:g}, {verdict})" if r.tolerance is not None else f" ({verdict})")
               + f"; argmax agreement {100 * r.argmax_agreement:.1f} %")
    click.echo(f"CPU throughput, same batch, {r.threads} thread(s): PyTorch {r.torch_chips_per_s:.1f} chips/s, "
               f"onnxruntime {r.ort_chips_per_s:.1f} chips/s ({r.ort_chips_per_s / r.torch_chips_per_s:.2f}x)")
    if not r.within_tolerance:
        raise click.ClickException("the ONNX outputs differ from PyTorch beyond the tolerance; do not deploy it")
