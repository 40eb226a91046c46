"""One module per benchmark. Each defines ``run(ctx: bench.core.Context) -> list[bench.core.Result]``;
bench/run.py finds every module here and runs them in name order."""
