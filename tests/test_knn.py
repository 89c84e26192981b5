"""kNN search, pool exclusion and the correctness predictor, on hand-made points."""

import numpy as np
import pytest

from llmrouter import knn


def angles(*degrees: float) -> np.ndarray:
    """Unit vectors in the plane at the given angles."""
    rad = np.deg2rad(degrees)
    return np.stack([np.cos(rad), np.sin(rad)], axis=1).astype(np.float32)


def test_normalize_gives_unit_rows():
    out = knn.normalize(np.array([[3.0, 4.0], [0.0, 2.0]]))
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-6)
    assert out.dtype == np.float32


def test_search_finds_nearest_by_cosine_and_skips_own_dataset():
    # pool: dataset 0 at 0,10,20 degrees; dataset 1 at 90,100 degrees; dataset 2 at 5 degrees
    pool = angles(0, 10, 20, 90, 100, 5)
    codes = np.array([0, 0, 0, 1, 1, 2], dtype=np.int32)
    order = np.argsort(codes, kind="stable")
    pool, codes = pool[order], codes[order]
    query = angles(8)
    nb = knn.search(query, pool, codes, k=2)
    # distances 1 - cos(angle difference): 10 deg->2 deg, 5->3, 0->8, 20->12, 90->82, 100->92
    # dataset 0 offers only its 2 nearest (10, 0): 20 degrees is not a candidate
    expected_angles = [10, 5, 0, 90]
    got = [round(float(np.rad2deg(np.arctan2(*pool[i][::-1])))) for i in nb.index[0]]
    assert got == expected_angles
    np.testing.assert_allclose(nb.distance[0], 1 - np.cos(np.deg2rad([2, 3, 8, 82])), atol=1e-6)
    own = knn.search(query, pool, codes, k=2, exclude_dataset=0)
    assert set(own.dataset[0][own.index[0] >= 0].tolist()) == {1, 2}


def test_first_allowed_is_exact_for_one_extra_exclusion():
    rng = np.random.default_rng(0)
    pool = knn.normalize(rng.normal(size=(300, 8)))
    codes = np.repeat(np.arange(6, dtype=np.int32), 50)
    queries = pool[codes == 0]
    k = 4
    nb = knn.search(queries, pool, codes, k=k, exclude_dataset=0, block_size=7)
    dist = 1 - queries @ pool.T
    for extra in range(1, 6):
        pos = knn.first_allowed(nb, k, exclude=(extra,))
        rows = np.take_along_axis(nb.index, pos, axis=1)
        allowed = (codes != 0) & (codes != extra)
        brute = np.argsort(np.where(allowed, dist, np.inf), axis=1)[:, :k]
        np.testing.assert_array_equal(np.sort(rows, 1), np.sort(brute, 1))


def test_first_allowed_raises_when_pool_too_small():
    nb = knn.Neighbours(np.array([[0, 1]]), np.array([[1, 1]], dtype=np.int32),
                        np.array([[0.1, 0.2]], dtype=np.float32))
    with pytest.raises(ValueError, match="fewer than"):
        knn.first_allowed(nb, 2, exclude=(1,))


def test_predict_correctness_is_mean_over_neighbours():
    correct = np.array([[1, 0], [1, 1], [0, 0], [1, 0]], dtype=np.uint8)
    rows = np.array([[0, 1, 2], [1, 3, 3]])
    g = knn.predict_correctness(rows, correct)
    np.testing.assert_allclose(g, [[2 / 3, 1 / 3], [1.0, 1 / 3]], rtol=1e-6)


def test_knn_descriptor_is_mean_distance_clipped():
    assert knn.knn_descriptor(np.array([[0.1, 0.3], [0.2, -0.5]])) == pytest.approx(
        (0.1 + 0.3 + 0.2 + 1e-7) / 4)


def capped_brute_force(queries, pool, codes, k, exclude=None):
    """The 2k nearest pool rows with at most k per dataset, by full sort (the definition)."""
    dist = 1 - queries @ pool.T
    if exclude is not None:
        dist[:, codes == exclude] = np.inf
    lists = []
    for row in dist:
        taken, count = [], {}
        for j in np.lexsort((np.arange(len(row)), row)):
            if np.isinf(row[j]) or len(taken) == 2 * k:
                break
            if count.get(codes[j], 0) < k:
                taken.append(j)
                count[codes[j]] = count.get(codes[j], 0) + 1
        lists.append(taken)
    return lists


@pytest.mark.parametrize("block_size,chunk_columns", [(2048, 32768), (5, 30), (3, 1)])
@pytest.mark.parametrize("exclude", [None, 0, 3, 6])
def test_search_equals_capped_definition(block_size, chunk_columns, exclude):
    # clustered points of uneven dataset sizes, some datasets smaller than k, a duplicate row
    rng = np.random.default_rng(1)
    sizes = [40, 3, 25, 60, 1, 33, 12]
    codes = np.repeat(np.arange(len(sizes), dtype=np.int32), sizes)
    centers = rng.normal(size=(len(sizes), 6))
    pool = knn.normalize(centers[codes] + 0.6 * rng.normal(size=(len(codes), 6)))
    pool[5] = pool[70]
    queries = knn.normalize(rng.normal(size=(17, 6)))
    k = 4
    nb = knn.search(queries, pool, codes, k, exclude_dataset=exclude, block_size=block_size,
                    chunk_columns=chunk_columns)
    expected = capped_brute_force(queries, pool, codes, k, exclude)
    for q, want in enumerate(expected):
        got = nb.index[q][nb.index[q] >= 0]
        np.testing.assert_allclose(np.sort(1 - queries[q] @ pool[got].T),
                                   np.sort(1 - queries[q] @ pool[want].T), atol=1e-6)
        assert np.all(np.diff(nb.distance[q][: len(got)]) >= 0)
        np.testing.assert_array_equal(nb.dataset[q][: len(got)], codes[got])
        if exclude is not None:
            assert exclude not in codes[got]


def test_capped_and_per_dataset_selection_agree():
    # the pruned path and the per-dataset fallback give the same lists, rows and distances,
    # ties included (16 distinct vectors: most similarities tie)
    rng = np.random.default_rng(2)
    codes = np.repeat(np.arange(9, dtype=np.int32), rng.integers(1, 70, 9))
    pool, queries = _tied_vectors(rng, len(codes)), _tied_vectors(rng, 30)
    sim = np.ascontiguousarray(pool @ queries.T)
    ids = np.unique(codes)
    starts = np.searchsorted(codes, ids)
    ends = np.searchsorted(codes, ids, side="right")
    pruned = knn._capped_lists(sim, starts, ends, ids, 5, 10, max_survivors=10**9)
    plain = knn._per_dataset_lists(sim, starts, ends, 5, 10)
    np.testing.assert_array_equal(pruned[0], plain[0])
    np.testing.assert_array_equal(pruned[1], plain[1])
    assert knn._capped_lists(sim, starts, ends, ids, 5, 10, max_survivors=0) is None


def _tied_vectors(rng, n: int) -> np.ndarray:
    """Unit vectors of +-0.5 entries: every dot product is a multiple of 0.25, exact in float32
    whatever the summation order, so ties are ties in every code path."""
    return (rng.integers(0, 2, size=(n, 4)) * 2 - 1).astype(np.float32) * np.float32(0.5)


@pytest.mark.parametrize("chunk_columns", [32768, 40, 7, 1])
def test_ties_go_to_the_lower_pool_row_on_every_path(chunk_columns):
    # Only 16 distinct vectors: most distances tie; the lists must be the capped
    # definition's, rows and all, however the pool is split into groups.
    rng = np.random.default_rng(5)
    codes = np.repeat(np.arange(6, dtype=np.int32), [50, 3, 40, 1, 45, 61])
    pool, queries = _tied_vectors(rng, len(codes)), _tied_vectors(rng, 25)
    for exclude in (None, 2):
        nb = knn.search(queries, pool, codes, 5, exclude_dataset=exclude,
                        chunk_columns=chunk_columns)
        for q, want in enumerate(capped_brute_force(queries, pool, codes, 5, exclude)):
            assert nb.index[q][nb.index[q] >= 0].tolist() == want


def test_per_dataset_fallback_picks_the_same_rows_on_ties():
    rng = np.random.default_rng(6)
    codes = np.repeat(np.arange(5, dtype=np.int32), [30, 2, 41, 17, 26])
    pool, queries = _tied_vectors(rng, len(codes)), _tied_vectors(rng, 20)
    sim = np.ascontiguousarray(pool @ queries.T)
    ids = np.unique(codes)
    starts, ends = np.searchsorted(codes, ids), np.searchsorted(codes, ids, side="right")
    pruned = knn._capped_lists(sim, starts, ends, ids, 5, 10, max_survivors=10**9)
    plain = knn._per_dataset_lists(sim, starts, ends, 5, 10)
    np.testing.assert_array_equal(pruned[0], plain[0])
    np.testing.assert_array_equal(pruned[1], plain[1])


def test_candidates_sort_by_true_distance_below_zero_too():
    # A near-duplicate's 1 - cos can be -1e-7; clamped to 0, it tied with 0.0 and went by
    # column, unlike the lexsort path and the distances written next to it.
    # -0.0 equals 0.0: the two go by column.
    dist = np.array([0.0, -1.2e-7, 0.3, -0.0, 1e-7, -2.0, 2.0, -1e-7, 0.0], dtype=np.float32)
    rows = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1])
    cols = np.array([2, 9, 1, 5, 3, 4, 0, 7, 8])
    got = knn._order_by_row_then_distance(rows, cols, dist)
    np.testing.assert_array_equal(got, np.lexsort((cols, dist, rows)))
    values = np.array([-np.inf, -2.0, -1e-30, -0.0, 0.0, 1e-45, 0.5, np.inf], dtype=np.float32)
    assert np.all(np.diff(knn.sortable_bits(values).astype(np.int64)) >= 0)


@pytest.mark.parametrize("k", [1, 3, 7, 12])
def test_k_smallest_matches_a_stable_sort_on_ties(k):
    # values from 4 levels only: the k-th place is nearly always shared by several columns
    dist = np.random.default_rng(k).integers(0, 4, size=(40, 12)).astype(np.float32)
    got = knn._k_smallest_lowest_first(dist, k)
    want = np.sort(np.argsort(dist, axis=1, kind="stable")[:, :k], axis=1)
    np.testing.assert_array_equal(got, want)


def test_broken_embeddings_are_a_clear_error():
    pool = knn.normalize(np.random.default_rng(0).normal(size=(20, 4)))
    codes = np.repeat(np.arange(2, dtype=np.int32), 10)
    bad = pool.copy()
    bad[7, 2] = np.nan
    with pytest.raises(ValueError, match="pool vector 7 holds NaN"):
        knn.search(pool[:3], bad, codes, 2)
    with pytest.raises(ValueError, match="query vector 7 holds NaN"):
        knn.search(bad, pool, codes, 2)


def _clustered_pool(seed: int = 3):
    rng = np.random.default_rng(seed)
    codes = np.repeat(np.arange(8, dtype=np.int32), rng.integers(30, 90, 8))
    centers = rng.normal(size=(8, 16))
    return codes, knn.normalize(centers[codes] + 0.8 * rng.normal(size=(len(codes), 16)))


def _cell_index(k: int = 3):
    """The clustered pool in an approximate index of about 10 rows per cell, and the exact
    lists of dataset 2: (codes, pool, cells, index, exact)."""
    from llmrouter import ann

    codes, pool = _clustered_pool()
    cells = ann.assign_cells(pool, codes, cell_size=10)
    index = ann.make_index(pool, codes, cells)
    exact = knn.search(pool[codes == 2], pool, codes, k, exclude_dataset=2)
    return codes, pool, cells, index, exact


def test_approximate_index_probing_every_cell_is_exact():
    from llmrouter import ann

    k = 3
    codes, pool, cells, index, exact = _cell_index(k)
    # cells never mix datasets, and every dataset has several
    assert all(len(set(codes[cells == c])) == 1 for c in np.unique(cells))
    assert index.n_cells >= 8 * 3
    for query_cells in (cells[codes == 2], None):  # pool rows, or a new task's queries
        full = ann.search(index, pool[codes == 2], k, exclude_dataset=2,
                          n_probe=index.n_cells, query_cells=query_cells)
        np.testing.assert_array_equal(full.index, exact.index)
        np.testing.assert_array_equal(full.distance, exact.distance)
    assert ann.recall(full, exact) == 1.0


def test_approximate_index_few_probes_still_fills_every_list():
    from llmrouter import ann

    k = 3
    codes, pool, cells, index, exact = _cell_index(k)
    # one probe reaches one cell of about 10 rows: short lists are searched again, wider
    few = ann.search(index, pool[codes == 2], k, exclude_dataset=2, n_probe=1,
                     query_cells=cells[codes == 2])
    assert np.all(few.index >= 0)
    assert not np.any(few.dataset == 2)
    assert np.all(np.bincount(few.dataset[0], minlength=8) <= k)
    assert 0.3 < ann.recall(few, exact) <= 1.0
    # distances are the true ones of the rows found, ascending
    true = 1.0 - np.einsum("qd,qkd->qk", pool[codes == 2], pool[few.index])
    np.testing.assert_allclose(few.distance, true, atol=1e-5)
    assert np.all(np.diff(few.distance, axis=1) >= 0)


def test_approximate_index_rejects_another_pool(tmp_path):
    from llmrouter import ann
    from llmrouter.artifacts import InputError
    from llmrouter.pool import Pool
    from llmrouter.store import read_cells, write_cells

    codes, pool = _clustered_pool()
    cells = ann.assign_cells(pool, codes, cell_size=10)
    ids = np.array([f"i{j}" for j in range(len(codes))])
    models = ["m"]
    this = Pool([f"d{j}" for j in range(8)], codes, ids, models,
                np.zeros((len(codes), 1), dtype=np.uint8))
    write_cells(this, cells, tmp_path / "index.parquet")
    np.testing.assert_array_equal(read_cells(tmp_path / "index.parquet", this), cells)
    other = Pool(this.datasets, codes, np.char.add(ids, "x"), models, this.correct)
    with pytest.raises(InputError, match="index.parquet.*another pool"):
        read_cells(tmp_path / "index.parquet", other)


@pytest.mark.parametrize("descriptor_k", [3, 7])
def test_shared_strict_pairs_equal_one_pass_per_heldout(descriptor_k):
    from llmrouter.pool import Pool
    from llmrouter.routing import RoutingParams, all_smoother_pairs, smoother_pairs

    rng = np.random.default_rng(4)
    codes = np.repeat(np.arange(6, dtype=np.int32), rng.integers(15, 40, 6))
    centers = rng.normal(size=(6, 8))
    vectors = knn.normalize(centers[codes] + rng.normal(size=(len(codes), 8)))
    pool = Pool([f"d{i}" for i in range(6)], codes, np.arange(len(codes)).astype(str),
                ["a", "b", "c"], (rng.random((len(codes), 3)) < 0.6).astype(np.uint8))
    params = RoutingParams(k=3, descriptor_k=descriptor_k)
    width = max(params.k, params.descriptor_k)
    neighbours = {n: knn.search(vectors[pool.rows(n)], vectors, codes, width, exclude_dataset=c)
                  for c, n in enumerate(pool.datasets)}
    heldouts = [None] + pool.datasets
    shared = all_smoother_pairs(pool, neighbours, params, heldouts)
    for heldout in heldouts:
        one = smoother_pairs(pool, neighbours, params, heldout)
        assert shared[heldout].datasets == one.datasets
        np.testing.assert_array_equal(shared[heldout].u, one.u)
        np.testing.assert_array_equal(shared[heldout].acc, one.acc)


def test_task_neighbours_of_a_benchmark_task_and_of_a_new_one():
    from conftest import sized_pool
    from llmrouter import ann
    from llmrouter.task_search import task_neighbours

    codes, vectors = _clustered_pool()
    pool = sized_pool(np.bincount(codes).tolist())
    ids, nb = task_neighbours("d2", pool, vectors, 3)
    exact = knn.search(vectors[codes == 2], vectors, codes, 3, exclude_dataset=2)
    assert ids.tolist() == pool.instance_ids[codes == 2].tolist()
    np.testing.assert_array_equal(nb.index, exact.index)
    # probing every cell of the approximate index gives the same lists
    cells = ann.assign_cells(vectors, codes, cell_size=10)
    _, approx = task_neighbours("d2", pool, vectors, 3, cells=cells, n_probe=10**6)
    np.testing.assert_array_equal(approx.index, exact.index)
    # a new task: its own embeddings (normalised here) against the whole pool
    queries = np.random.default_rng(0).normal(size=(4, vectors.shape[1]))
    ids, nb = task_neighbours("new", pool, vectors, 3, (np.array(["a", "b", "c", "d"]), queries))
    whole = knn.search(knn.normalize(queries), vectors, codes, 3)
    assert ids.tolist() == ["a", "b", "c", "d"]
    np.testing.assert_array_equal(nb.index, whole.index)
    with pytest.raises(ValueError, match="not in the pool"):
        task_neighbours("new", pool, vectors, 3)
