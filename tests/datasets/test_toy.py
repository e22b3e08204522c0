import numpy as np

from minidl.datasets import two_spirals, xor


def test_xor():
    X, y = xor()
    assert X.shape == (4, 2) and y.tolist() == [0, 1, 1, 0]
    assert np.array_equal(y, (X[:, 0] != X[:, 1]).astype(int))


def test_two_spirals_shapes_and_seeding():
    X, y = two_spirals(50, noise=0.1, seed=3)
    assert X.shape == (100, 2) and X.dtype == np.float64
    assert y.dtype == np.int64 and np.bincount(y).tolist() == [50, 50]
    assert np.array_equal(X, two_spirals(50, noise=0.1, seed=3)[0])
    assert not np.array_equal(X, two_spirals(50, noise=0.1, seed=4)[0])


def test_the_spirals_are_point_reflections_of_each_other():
    X, y = two_spirals(20, noise=0.0)
    np.testing.assert_allclose(X[y == 1], -X[y == 0], atol=1e-12)  # angle + π
    assert np.linalg.norm(X, axis=1).max() == 1.0
