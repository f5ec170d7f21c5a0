"""`soup_model` and `adapt(..., selector="soup")`: the candidates' mean weights."""

import dataclasses

import numpy as np
import pytest
from helpers import tiny_dense_encoder as tiny_encoder
from helpers import two_gaussian_domains as two_domains

import keras_transfer as kt
from keras_transfer._backend import keras
from keras_transfer.adaptation import SOUP, soup_model, split_source
from keras_transfer.adaptation.pipeline import _as_soup


def member(seed):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(5, name="dense"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.BatchNormalization(name="frozen_bn"),
            keras.layers.Dense(3, activation="softmax", name="head"),
        ]
    )
    model.get_layer("frozen_bn").trainable = False
    # statistics that differ between members, as trained ones do
    bn = model.get_layer("frozen_bn")
    bn.moving_mean.assign(np.full(5, 1.0 + seed, "float32"))
    return model


def test_soup_model_averages_weights_and_re_estimates_trainable_statistics():
    a, b = member(0), member(1)
    x = np.random.default_rng(0).normal(3.0, 2.0, (256, 4)).astype("float32")
    soup = soup_model({"a": a, "b": b}, x)
    for name in ("dense", "head"):
        for got, wa, wb in zip(
            soup.get_layer(name).get_weights(),
            a.get_layer(name).get_weights(),
            b.get_layer(name).get_weights(),
        ):
            np.testing.assert_allclose(got, (wa + wb) / 2, rtol=1e-6)
    # the trainable BatchNorm holds the statistics of the averaged network's
    # activations on x, not the mean of the members' statistics
    features = (
        x @ soup.get_layer("dense").kernel.numpy()
        + soup.get_layer("dense").bias.numpy()
    )
    bn = soup.get_layer("bn")
    np.testing.assert_allclose(bn.moving_mean.numpy(), features.mean(0), atol=1e-3)
    np.testing.assert_allclose(bn.moving_variance.numpy(), features.var(0), rtol=0.05)
    # a frozen one keeps the members' (here averaged) statistics
    np.testing.assert_allclose(soup.get_layer("frozen_bn").moving_mean.numpy(), 1.5)
    # the members are untouched, and the soup is compiled with accuracy
    assert not np.allclose(a.get_layer("dense").kernel, soup.get_layer("dense").kernel)
    _, acc = soup.evaluate(x, np.zeros(len(x), "int64"), verbose=0)
    assert 0.0 <= acc <= 1.0


def test_soup_model_refuses_empty_or_mismatched_members():
    with pytest.raises(ValueError, match="at least one member"):
        soup_model({}, np.zeros((4, 4), "float32"))
    a = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, "softmax")])
    b = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, "softmax")])
    with pytest.raises(ValueError, match="one architecture"):
        soup_model({"a": a, "b": b}, np.zeros((4, 4), "float32"))


def test_soup_selector_returns_the_mean_weights_of_the_eligible_candidates(capsys):
    (xs, ys), (xt, yt) = two_domains()
    names = ["source_only", "entropy", "mcc"]
    result = kt.adapt(
        tiny_encoder(),
        (xs, ys),
        xt,
        method="auto",
        candidates=names,
        selector="soup",
        epochs=4,
    )
    assert "auto returns the soup (mean weights) of" in capsys.readouterr().out
    selection = result.selection
    assert result.method == selection["chosen"] == selection["selector"] == SOUP
    cands = selection["candidates"]
    members = [n for n in names if cands[n]["eligible"]] or names
    assert selection["members"] == members and not selection["soup_fallback"]
    assert selection["ensv_choice"] == max(
        members, key=lambda n: cands[n]["scores"]["ensv"]
    )
    # no reverse-validation fit: the soup needs no rv score
    assert selection["reverse_validation"] is None
    assert all("rv" not in cands[n]["scores"] for n in names)
    # every weight but the BatchNorm statistics is the members' mean
    each = [result.candidate_model(n) for n in members]
    bn_stats = {
        id(v)
        for layer in result.model._flatten_layers()
        if isinstance(layer, keras.layers.BatchNormalization)
        for v in (layer.moving_mean, layer.moving_variance)
    }
    for i, variable in enumerate(result.model.weights):
        if id(variable) in bn_stats:
            continue
        mean = np.mean([m.weights[i].numpy() for m in each], 0)
        np.testing.assert_allclose(variable.numpy(), mean, rtol=1e-5, atol=1e-6)
    # the bottleneck's statistics are the target's (each candidate's were too)
    probe = result.training_model
    np.testing.assert_allclose(
        result.model.predict(xt, verbose=0),
        probe.inference_model().predict(xt, verbose=0),
        atol=1e-6,
    )
    _, _, xv, yv = split_source(xs, ys, 0.15, 0)
    held = np.mean(result.model.predict(xv, verbose=0).argmax(-1) == yv)
    assert result.source_accuracy == pytest.approx(held)
    assert selection["soup_source_accuracy"] == pytest.approx(held)
    loss, acc = result.model.evaluate(xt, yt, verbose=0)
    assert 0.0 <= acc <= 1.0 and np.isfinite(loss)


def test_soup_below_the_floor_keeps_ensv_choice():
    (xs, ys), (xt, _) = two_domains(n=150)
    names = ["source_only", "entropy", "mcc"]
    result = kt.adapt(
        tiny_encoder(),
        (xs, ys),
        xt,
        method="auto",
        candidates=names,
        selector="ensv",
        epochs=3,
        verbose=0,
    )
    before = result.model.get_weights()
    results = {
        n: {"eligible": c["eligible"]}
        for n, c in result.selection["candidates"].items()
    }
    _, _, xv, yv = split_source(xs, ys, 0.15, 0)
    kept = _as_soup(
        dataclasses.replace(result), results, (xv, yv), None, xt, floor=1.01
    )
    assert kept.method == result.method and kept.selection["soup_fallback"]
    assert kept.selection["ensv_choice"] == result.method
    for got, want in zip(kept.model.get_weights(), before):
        np.testing.assert_array_equal(got, want)


def test_soup_is_a_choice_of_the_cli_config():
    from keras_transfer.config.sections import AdaptationConfig

    field = {f.name: f for f in dataclasses.fields(AdaptationConfig)}["selector"]
    assert "soup" in field.metadata["choices"]
    field = {f.name: f for f in dataclasses.fields(AdaptationConfig)}[
        "on_low_agreement"
    ]
    assert field.default == kt.adaptation.soup.DEFAULT_ON_LOW_AGREEMENT
    assert field.metadata["choices"] == ("soup", "keep")


@pytest.mark.parametrize("action", ["soup", "keep"])
def test_low_agreement_returns_the_soup_by_default(monkeypatch, action):
    import keras_transfer.adaptation.result as result_module

    # every pool now counts as disagreeing: the warning fires on these easy domains
    monkeypatch.setattr(result_module, "LOW_AGREEMENT", 1.01)
    (xs, ys), (xt, _) = two_domains(n=150)
    names = ["source_only", "entropy", "mcc"]
    kwargs = {} if action == "soup" else {"on_low_agreement": "keep"}  # the default
    with pytest.warns(UserWarning, match="candidates agree with the chosen") as got:
        result = kt.adapt(
            tiny_encoder(),
            (xs, ys),
            xt,
            method="auto",
            candidates=names,
            epochs=3,
            verbose=0,
            **kwargs,
        )
    message = " ".join(str(w.message) for w in got)
    selection = result.selection
    assert selection["low_agreement"]
    if action == "keep":
        assert result.method in names and selection["on_low_agreement"] is None
        assert "soup" not in message
        return
    assert "adapt returns the soup of the candidates" in message
    assert selection["on_low_agreement"] == "soup"
    assert result.method == selection["chosen"] == SOUP
    assert selection["selector"] == "ensv_rv"  # the default selector ranked them
    assert selection["ensv_choice"] in names and not selection["soup_fallback"]
    members = selection["members"]
    each = [result.candidate_model(n) for n in members]
    kernel = result.model.weights[0].numpy()
    np.testing.assert_allclose(
        kernel, np.mean([m.weights[0].numpy() for m in each], 0), rtol=1e-5, atol=1e-6
    )


def test_on_low_agreement_refuses_other_values():
    (xs, ys), (xt, _) = two_domains(n=60)
    with pytest.raises(ValueError, match="on_low_agreement in"):
        kt.adapt(tiny_encoder(), (xs, ys), xt, on_low_agreement="average")
