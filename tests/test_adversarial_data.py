"""The data loader: shapes, scaling, seeded stratified splits."""

import numpy as np
import pytest

from wflow.adversarial import load_dataset


def test_digits_scaled_to_unit_interval_and_stratified():
    ds = load_dataset("digits", seed=0)
    assert ds.dim == 64 and ds.n_classes == 10
    assert len(ds.X_train) + len(ds.X_test) == 1797
    allX = np.r_[ds.X_train, ds.X_test]
    assert allX.min() == 0.0 and allX.max() == 1.0
    # the raw pixels are integers 0..16: scaled values are multiples of 1/16
    np.testing.assert_array_equal(allX * 16, np.round(allX * 16))
    # stratified: class proportions of train and test agree within one point per class
    ctr, cte = np.bincount(ds.y_train, minlength=10), np.bincount(ds.y_test, minlength=10)
    np.testing.assert_array_less(np.abs(cte - 0.25 * (ctr + cte)), 1.0 + 1e-9)


def test_splits_are_seeded():
    a, b, c = load_dataset("digits", seed=3), load_dataset("digits", seed=3), load_dataset("digits", seed=4)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    assert not np.array_equal(a.y_test, c.y_test)


def test_breast_cancer_standardized_on_train_split():
    ds = load_dataset("breast_cancer", test_size=0.2, seed=1)
    assert ds.dim == 30 and ds.n_classes == 2 and len(ds.X_test) == 114
    np.testing.assert_allclose(ds.X_train.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(ds.X_train.std(axis=0), 1.0, rtol=1e-12)
    assert np.abs(ds.X_test.mean(axis=0)).max() > 1e-3  # test split not re-standardized


def test_two_moons():
    ds = load_dataset("two_moons", n=200, seed=2)
    assert ds.dim == 2 and len(ds.X_train) == 150 and set(np.unique(ds.y_test)) == {0, 1}
    assert ds.to_dict()["name"] == "two_moons" and ds.class_points(1, "train").shape[1] == 2


def test_bad_input():
    with pytest.raises(ValueError, match="name"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match="test_size"):
        load_dataset("digits", test_size=1.5)
    with pytest.raises(TypeError, match="seed"):
        load_dataset("digits", seed=0.5)
