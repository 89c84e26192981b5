"""OT distances between task clouds on hand-made and random clouds."""

import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from llmrouter import distances, knn
from llmrouter.artifacts import InputError


def cloud(seed: int, n: int, shift: float = 0.0, dim: int = 8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return knn.normalize(rng.normal(size=(n, dim)) + shift)


@pytest.mark.parametrize("method", ["emd", "sinkhorn"])
def test_distance_to_itself_is_zero(method):
    a = cloud(0, 40)
    assert distances.ot_distance(a, a, method) == pytest.approx(0.0, abs=1e-2 if method ==
                                                                "sinkhorn" else 1e-12)


def test_exact_distance_is_symmetric_and_positive():
    a, b = cloud(0, 30), cloud(1, 45, shift=0.5)
    ab, ba = distances.ot_distance(a, b), distances.ot_distance(b, a)
    assert ab == pytest.approx(ba, abs=1e-12)
    assert ab > 0.05


def test_exact_distance_of_hand_made_clouds():
    # Two points each: e1, e2 against e1, e3. The optimal plan keeps e1 on e1 (cost 0) and moves
    # e2 to e3 (cosine distance 1), each with mass 1/2.
    eye = np.eye(3)
    a, b = eye[[0, 1]], eye[[0, 2]]
    assert distances.ot_distance(a, b) == pytest.approx(0.5)
    # Single points: the cosine distance itself.
    v = knn.normalize(np.array([[1.0, 1.0, 0.0]]))
    assert distances.ot_distance(eye[[0]], v) == pytest.approx(1 - 1 / np.sqrt(2))


def test_sinkhorn_approaches_exact_as_regularisation_shrinks():
    a, b = cloud(2, 25), cloud(3, 25, shift=0.3)
    exact = distances.ot_distance(a, b)
    loose = distances.ot_distance(a, b, "sinkhorn", reg=0.1)
    tight = distances.ot_distance(a, b, "sinkhorn", reg=0.02)
    assert abs(tight - exact) < abs(loose - exact)
    assert tight == pytest.approx(exact, abs=0.01)


def test_reg_is_sinkhorns_alone():
    """The workflow passes reg None with emd (so changing it reruns nothing): emd ignores it,
    Sinkhorn refuses to run without it."""
    a, b = cloud(2, 25), cloud(3, 25, shift=0.3)
    assert distances.ot_distance(a, b, "emd", reg=None) == distances.ot_distance(a, b)
    with pytest.raises(ValueError, match="regularisation"):
        distances.ot_distance(a, b, "sinkhorn", reg=None)


def test_sinkhorn_checks_the_marginals_of_its_plan_in_l1(monkeypatch):
    """POT stops Sinkhorn on the L2 norm of one marginal's error, up to sqrt(n) times below the
    mass the plan misplaces: a plan with 2e-3 too much mass over 500 points (marginal error 4e-3
    in L1) is 9e-5 in L2, under the limit, yet its cost may be off by 4e-3. It is refused; one
    with 1e-5 too much is kept."""
    a, b = cloud(2, 500), cloud(3, 500, shift=0.3)
    for excess, refused in ((2e-3, True), (1e-5, False)):
        monkeypatch.setattr(distances.ot, "sinkhorn", lambda wa, wb, *args, **kwargs:
                            np.outer(wa, wb) * (1 + excess))
        plan = np.outer(np.full(500, 1 / 500), np.full(500, 1 / 500)) * (1 + excess)
        assert np.linalg.norm(plan.sum(axis=0) - 1 / 500) < distances.SINKHORN_MAX_ERROR
        if refused:
            with pytest.raises(InputError, match=r"marginal error 0.004\)"):
                distances.ot_distance(a, b, "sinkhorn", 0.05)
        else:
            assert distances.ot_distance(a, b, "sinkhorn", 0.05) == pytest.approx(
                (plan * distances.cosine_cost(a, b)).sum(), abs=1e-12)


def test_subsample_is_seeded_per_task_and_bounded():
    a = cloud(4, 100)
    first = distances.subsample(a, 30, seed=0, task="anatomy")
    assert first.shape == (30, 8)
    np.testing.assert_array_equal(first, distances.subsample(a, 30, seed=0, task="anatomy"))
    assert not np.array_equal(first, distances.subsample(a, 30, seed=0, task="virology"))
    assert not np.array_equal(first, distances.subsample(a, 30, seed=1, task="anatomy"))
    assert distances.subsample(a, 200, seed=0, task="anatomy") is a
    with pytest.raises(ValueError):
        distances.subsample(a, 0, seed=0, task="anatomy")


def test_distance_row():
    clouds = {"x": cloud(5, 20), "y": cloud(6, 20, shift=1.0)}
    row = distances.distance_row(clouds["x"], clouds)
    assert row["x"] == pytest.approx(0.0, abs=1e-12) and row["y"] > 0


def test_unknown_method_and_empty_cloud_raise():
    a = cloud(0, 5)
    with pytest.raises(ValueError, match="unknown OT method"):
        distances.ot_distance(a, a, "bogus")
    with pytest.raises(ValueError, match="empty"):
        distances.ot_distance(a, a[:0])


def test_row_frame():
    frame = distances.row_frame("a", {"a": 0.0, "b": 0.4}, 0.25)
    assert frame.rows() == [("a", "a", 0.0, 0.25), ("a", "b", 0.4, 0.25)]


def test_clouds_read_one_file_at_a_time_equal_those_of_the_whole_pool(tmp_path):
    # compute_task_distances once stacked every embedding of the pool to keep max_points of
    # each task; reading file by file must give the very same points.
    from conftest import sized_pool
    from llmrouter.store import write_embeddings

    pool = sized_pool([30, 8])
    raw = np.vstack([cloud(1, 30), cloud(2, 8, shift=1.0)]) * 3.0  # not unit-norm on disk
    paths = {}
    for name in pool.datasets:
        rows = pool.rows(name)[::-1]  # files list their instances in another order
        paths[name] = tmp_path / f"{name}.parquet"
        write_embeddings(pool.instance_ids[rows].tolist(), raw[rows], paths[name])
    read = distances.read_task_clouds(pool, paths, 10, seed=3)
    vectors = knn.normalize(raw)
    whole = {name: distances.subsample(vectors[pool.rows(name)], 10, 3, name)
             for name in pool.datasets}
    assert list(read) == list(whole) == ["d0", "d1"]
    assert read["d0"].shape == (10, raw.shape[1]) and read["d1"].shape == (8, 8)
    for name in whole:
        np.testing.assert_array_equal(read[name], whole[name])
    with pytest.raises(InputError, match=r"no embeddings file for pool dataset\(s\) \['d1'\]"):
        distances.read_task_clouds(pool, {"d0": paths["d0"]}, 10, seed=3)


# POT's own warnings on the way (exp overflow at reg 1e-5, numItermax reached): the point is
# that they no longer pass unnoticed.
@pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::UserWarning")
def test_a_solver_that_stops_short_of_the_optimum_is_an_error(monkeypatch):
    # POT's Sinkhorn said nothing when it ran out of iterations, and its value with a tiny
    # reg could even fall below the exact cost: no transport plan gives that.
    rng = np.random.default_rng(0)
    a = knn.normalize(rng.normal(size=(50, 8)))
    b = knn.normalize(rng.normal(size=(60, 8)))
    with pytest.raises(InputError, match=r"Sinkhorn with reg 1e-05 did not converge in 2000 "
                                         r"iterations \(marginal error .*\); raise "
                                         r"distances.reg"):
        distances.ot_distance(a, b, "sinkhorn", 1e-5)
    assert distances.ot_distance(a, b, "sinkhorn", 0.05) > distances.ot_distance(a, b)
    # emd's own cap (10 iterations here) only warned and kept a non-optimal cost.
    emd2 = distances.ot.emd2
    monkeypatch.setattr(distances.ot, "emd2",
                        lambda *args, **kwargs: emd2(*args, **{**kwargs, "numItermax": 10}))
    with pytest.raises(InputError, match="did not reach its optimum .*numItermax reached"):
        distances.ot_distance(a, b)


def test_distance_jobs_do_not_import_scikit_learn_or_networkx():
    # POT imports both where installed (1 s of each distance job's start-up) for solvers the
    # workflow never calls; they stay importable afterwards.
    code = ("import sys\nimport llmrouter.distances as d\n"
            "print(sorted(m for m in ('sklearn', 'networkx') if m in sys.modules))\n"
            "import numpy as np\n"
            "a = np.eye(3)\n"
            "print(d.ot_distance(a, a[::-1].copy()))\n"
            "import sklearn.cluster, networkx\n"
            "print('importable')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, check=True)
    assert done.stdout.split("\n")[:3] == ["[]", "0.0", "importable"], done.stdout + done.stderr
