"""The benchmarks only ever empty a database of their own."""
import pytest

from tests.benchmarks.common import NotABenchDatabase, bench_database


@pytest.mark.parametrize("url", ["postgresql+psycopg://postgres@127.0.0.1:5432/ribambelle",
                                 "postgresql+psycopg://postgres@127.0.0.1:5432/ribambelle_bench_copy",
                                 "postgresql+psycopg://postgres@127.0.0.1:5432/"])
def test_a_benchmark_refuses_a_database_not_named_bench(url, tmp_path):
    with pytest.raises(NotABenchDatabase, match="ne finit pas par _bench"):
        bench_database("postgresql", url, tmp_path)
