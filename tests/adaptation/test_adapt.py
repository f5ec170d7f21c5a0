"""`keras_transfer.adapt`: the recipe, its bad-input errors, resume, and the CLI path."""

import json
import warnings

import numpy as np
import pytest
from helpers import tiny_dense_encoder as tiny_encoder
from helpers import two_gaussian_domains as two_domains

import keras_transfer as kt
from keras_transfer._backend import keras
from keras_transfer.adaptation import (
    AdaptationController,
    DomainAdaptationModel,
    adapt_batchnorm,
    split_source,
)
from keras_transfer.data import domain_pairs


def test_adapt_returns_a_compiled_inference_model_and_merged_history():
    (xs, ys), (xt, yt) = two_domains()
    result = kt.adapt(tiny_encoder(), (xs, ys), xt, method="mcc", epochs=4, verbose=0)
    assert result.method == "mcc"
    assert result.model.output_shape == (None, 3)
    loss, acc = result.model.evaluate(xt, yt, verbose=0)  # compiled with accuracy
    assert 0.0 <= acc <= 1.0 and np.isfinite(loss)
    hist = result.history.history
    assert len(result.history.epoch) == 4
    assert len(hist["source_val_accuracy"]) == 4
    assert result.selection["warmup_epochs"] >= 1
    # every score but reverse validation's, which costs a fit per candidate
    assert set(result.selection["candidates"]["mcc"]["scores"]) == {
        *kt.adaptation.scores.MODEL_SELECTORS,
        "ensv",
    }
    # the held-out source accuracy is the model's, on the held-out split
    _, _, xv, yv = split_source(xs, ys, 0.15, 0)
    got = np.mean(result.model.predict(xv, verbose=0).argmax(-1) == yv)
    assert result.source_accuracy == pytest.approx(got)
    # its features, in this process (the bottleneck was also called in training)
    features = kt.feature_extractor(result.model)
    assert features.layers[-1].name == "bottleneck"
    assert features.predict(xv[:4], verbose=0).shape[0] == 4


def test_auto_branches_candidates_from_one_warmup_and_picks_the_best_score(capsys):
    (xs, ys), (xt, _) = two_domains()
    result = kt.adapt(
        tiny_encoder(),
        (xs, ys),
        xt,
        method="auto",
        candidates=["source_only", "entropy"],
        selector="entropy",
        epochs=4,
        target_batchnorm=False,  # predictions = the scored ones
        verbose=1,
    )
    cands = result.selection["candidates"]
    assert set(cands) == {"source_only", "entropy"}
    # two candidates nearly always agree: no agreement check, no warning
    assert result.selection["agreement"] is None
    assert result.selection["low_agreement"] is None
    eligible = [n for n, c in cands.items() if c["source_accuracy"] >= 0]
    best = max(eligible, key=lambda n: cands[n]["scores"]["entropy"])
    assert result.method == best == result.selection["chosen"]
    # verbose says what it chose, by which score, and every candidate's score
    scores = {n: c["scores"]["entropy"] for n, c in cands.items()}
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "auto chose" in ln)
    assert f"auto chose {best!r} by entropy (higher is better): " in line
    for name, score in scores.items():
        assert f"{name} {score:.4f}" in line
    # the returned model holds the winner's weights: its score reproduces
    probs = result.model.predict(xt, verbose=0)
    ent = -np.mean(np.sum(probs * np.log(np.clip(probs, 1e-12, 1)), -1))
    assert -ent == pytest.approx(cands[best]["scores"]["entropy"], abs=1e-4)


def test_default_auto_ranks_the_five_default_candidates_by_ensv_rv(monkeypatch):
    (xs, ys), (xt, _) = two_domains(n=120)
    traced = []
    make = keras.Model.make_predict_function

    def counting(self, *args, **kwargs):
        traced.append(self.name)
        return make(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "make_predict_function", counting)
    result = kt.adapt(tiny_encoder(), (xs, ys), xt, epochs=3, verbose=0)
    # adapt's own predictions (held-out accuracy, scores) run eagerly: no predict
    # graph per candidate model, so no TensorFlow retracing warning in a user's run
    assert traced == []
    assert kt.adaptation.AUTO_CANDIDATES == (
        "source_only",
        "bnm",
        "cdan",
        "dann",
        "mcc",
    )
    selection = result.selection
    assert selection["requested"] == "auto" and selection["selector"] == "ensv_rv"
    cands = selection["candidates"]
    assert list(cands) == list(kt.adaptation.AUTO_CANDIDATES)
    eligible = [n for n in cands if cands[n]["eligible"]] or list(cands)
    # EnsV among the candidates that reverse validation does not veto
    best_rv = max(cands[n]["scores"]["rv"] for n in eligible)
    kept = [n for n in eligible if cands[n]["scores"]["rv"] >= 0.5 * best_rv]
    assert result.method == max(kept, key=lambda n: cands[n]["scores"]["ensv"])
    assert selection["reverse_validation"]["epochs"] == 10
    agreement = cands[result.method]["scores"]["ensv"]
    assert selection["agreement"] == pytest.approx(agreement)
    assert selection["low_agreement"] is (agreement < kt.adaptation.LOW_AGREEMENT)
    # the old default is one argument away and picks by DEV among its two
    old = kt.adaptation.choose(selection, ["mcc", "cdan"], "dev")
    assert old in ("mcc", "cdan")


def test_ensv_scores_each_candidate_against_the_pool_and_choose_recomputes_subsets(
    monkeypatch,
):
    (xs, ys), (xt, _) = two_domains()
    names = ["source_only", "entropy", "mcc"]
    # every agreement is below a threshold above 1: the warning path must fire
    monkeypatch.setattr(kt.adaptation.result, "LOW_AGREEMENT", 1.01)
    with pytest.warns(UserWarning, match="check the model on a few labelled target"):
        result = kt.adapt(
            tiny_encoder(),
            (xs, ys),
            xt,
            method="auto",
            candidates=names,
            selector="ensv",
            epochs=4,
            target_batchnorm=False,  # predictions = the scored ones
            on_low_agreement="keep",  # the choice itself (the soup: test_soup.py)
            verbose=0,
        )
    selection = result.selection
    chosen_agreement = selection["candidates"][result.method]["scores"]["ensv"]
    assert selection["agreement"] == pytest.approx(chosen_agreement)
    assert selection["low_agreement"] is True
    assert f"{chosen_agreement:.0%} of the target" in selection["agreement_warning"]
    probs = result.target_probabilities
    assert set(probs) == set(names) and all(
        p.shape == (len(xt), 3) for p in probs.values()
    )
    # the winner's stored predictions are the returned model's
    np.testing.assert_allclose(
        probs[result.method], result.model.predict(xt, verbose=0), atol=1e-5
    )
    votes = np.mean([probs[n] for n in names], axis=0).argmax(-1)
    cands = result.selection["candidates"]
    for n in names:
        want = np.mean(probs[n].argmax(-1) == votes)
        assert cands[n]["scores"]["ensv"] == pytest.approx(want)
    eligible = [n for n in names if cands[n]["eligible"]] or names
    assert result.method == max(eligible, key=lambda n: cands[n]["scores"]["ensv"])
    # a subset has its own ensemble: recomputed from the predictions, or refused
    sub = ["source_only", "mcc"]
    with pytest.raises(ValueError, match="probabilities=result.target_probabilities"):
        kt.adaptation.choose(result.selection, sub, "ensv")
    got = kt.adaptation.choose(result.selection, sub, "ensv", probabilities=probs)
    agree = kt.adaptation.ensemble_agreement({n: probs[n] for n in sub})
    pool = [n for n in sub if cands[n]["eligible"]] or sub
    assert got == max(pool, key=agree.get)


def test_ensemble_selector_returns_the_mean_of_the_eligible_candidates(
    tmp_path, capsys
):
    (xs, ys), (xt, yt) = two_domains()
    names = ["source_only", "entropy", "mcc"]
    result = kt.adapt(
        tiny_encoder(),
        (xs, ys),
        xt,
        method="auto",
        candidates=names,
        selector="ensemble",
        epochs=4,
        target_batchnorm=False,  # predictions = the scored ones
    )
    assert "auto returns the ensemble of" in capsys.readouterr().out
    selection = result.selection
    assert result.method == selection["chosen"] == "ensemble"
    cands = selection["candidates"]
    members = [n for n in names if cands[n]["eligible"]] or names
    assert selection["members"] == members
    # EnsV's pick is recorded, and the training model is its
    ensv = max(members, key=lambda n: cands[n]["scores"]["ensv"])
    assert selection["ensv_choice"] == ensv
    # the output is the mean of the members' own probabilities, member by member
    each = {n: result.candidate_model(n).predict(xt, verbose=0) for n in members}
    mean = np.mean(list(each.values()), axis=0)
    got = result.model.predict(xt, verbose=0)
    np.testing.assert_allclose(got, mean, atol=1e-5)
    np.testing.assert_allclose(
        mean, np.mean([result.target_probabilities[n] for n in members], 0), atol=1e-5
    )
    # candidate_model still rebuilds each candidate, not the ensemble that replaced
    # result.model
    for n in members:
        np.testing.assert_allclose(each[n], result.target_probabilities[n], atol=1e-5)
    _, _, xv, yv = split_source(xs, ys, 0.15, 0)
    held = np.mean(result.model.predict(xv, verbose=0).argmax(-1) == yv)
    assert result.source_accuracy == pytest.approx(held)
    assert selection["ensemble_source_accuracy"] == pytest.approx(held)
    loss, acc = result.model.evaluate(xt, yt, verbose=0)  # compiled with accuracy
    assert np.isfinite(loss) and acc == pytest.approx(
        np.mean(got.argmax(-1) == yt), abs=1e-6
    )
    # one .keras file; reloaded, it predicts the same
    path = tmp_path / "ensemble.keras"
    result.model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(reloaded.predict(xt, verbose=0), got, atol=1e-6)


def test_ensemble_model_refuses_empty_or_mismatched_members():
    from keras_transfer.adaptation import ensemble_model

    with pytest.raises(ValueError, match="at least one member"):
        ensemble_model({})
    a = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, "softmax")])
    b = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, "softmax")])
    with pytest.raises(ValueError, match="same input and output shapes"):
        ensemble_model({"a": a, "b": b})


def test_ensemble_agreement_refuses_mismatched_predictions():
    from keras_transfer.adaptation import ensemble_agreement

    one = np.full((4, 2), 0.5)
    assert ensemble_agreement({"a": one}) == {"a": 1.0}
    with pytest.raises(ValueError, match="one shape"):
        ensemble_agreement({"a": one, "b": np.full((3, 2), 0.5)})
    with pytest.raises(ValueError, match="at least one"):
        ensemble_agreement({})


@pytest.mark.parametrize(
    "method", ["source_only", "adabn", "self_training", "bnm", "dann+mcc"]
)
def test_every_method_name_runs(method):
    (xs, ys), (xt, _) = two_domains(n=90)
    result = kt.adapt(tiny_encoder(), (xs, ys), xt, method=method, epochs=2, verbose=0)
    assert result.method == method
    assert np.all(np.isfinite(result.model.predict(xt, verbose=0)))


@pytest.mark.parametrize(
    "source, target, match",
    [
        ("xs", "xt", "Expected source to be labelled"),
        (("xs", "ys"), ("xt", "yt"), "unlabelled"),
        (("xs", "ys"), "xt_bad", "same shape"),
        (("xs", "ys0"), "xt", "at least two classes"),
        (("xs_few", "ys_few"), "xt", "too small to hold out"),
    ],
)
def test_bad_input_is_refused_before_training(source, target, match):
    (xs, ys), (xt, yt) = two_domains(n=60)
    arrays = {
        "xs": xs,
        "ys": ys,
        "xt": xt,
        "yt": yt,
        "ys0": np.zeros_like(ys),
        "xt_bad": xt[:, :3],
        "xs_few": xs[:3],
        "ys_few": np.array([0, 1, 1]),
    }
    pick = lambda v: tuple(arrays[a] for a in v) if isinstance(v, tuple) else arrays[v]  # noqa: E731
    with pytest.raises(ValueError, match=match):
        kt.adapt(tiny_encoder(), pick(source), pick(target), epochs=1, verbose=0)


def test_unknown_method_and_labelled_target_dataset_are_refused():
    import tensorflow as tf

    (xs, ys), (xt, yt) = two_domains(n=60)
    with pytest.raises(ValueError, match="Expected method to be one of"):
        kt.adapt(tiny_encoder(), (xs, ys), xt, method="nope", verbose=0)
    labelled = tf.data.Dataset.from_tensor_slices((xt, yt))
    with pytest.raises(ValueError, match="unlabelled"):
        kt.adapt(tiny_encoder(), (xs, ys), labelled, verbose=0)


def test_several_inputs_per_example_are_refused_by_name():
    import tensorflow as tf

    (xs, ys), (xt, _) = two_domains(n=60)
    several = (
        "Expected the source inputs to be one array.*dict of inputs \\(\\['a'\\]\\)"
    )
    with pytest.raises(ValueError, match=several):
        kt.adapt(tiny_encoder(), ({"a": xs}, ys), xt, verbose=0)
    source = tf.data.Dataset.from_tensor_slices(({"a": xs}, ys))
    with pytest.raises(ValueError, match=several):
        kt.adapt(tiny_encoder(), source, xt, verbose=0)
    with pytest.raises(ValueError, match="target inputs to be one array"):
        kt.adapt(tiny_encoder(), (xs, ys), {"a": xt}, verbose=0)
    target = tf.data.Dataset.from_tensor_slices({"a": xt, "b": xt})
    with pytest.raises(ValueError, match=r"target inputs.*\['a', 'b'\]"):
        kt.adapt(tiny_encoder(), (xs, ys), target, verbose=0)
    # a list of examples (one array per image) is told how to become one array
    with pytest.raises(ValueError, match=r"list of inputs \(60 entries\).*np.stack"):
        kt.adapt(tiny_encoder(), (list(xs), ys), xt, verbose=0)


def test_combined_method_ramps_every_part_and_bad_combinations_are_refused():
    (xs, ys), (xt, _) = two_domains(n=90)
    result = kt.adapt(
        tiny_encoder(), (xs, ys), xt, method="cdan+bnm", epochs=3, verbose=0
    )
    method = result.training_model.method
    assert isinstance(method, kt.adaptation.CombinedAlignment)
    assert [type(p).__name__ for p in method.parts] == [
        "ConditionalDomainAdversarial",
        "BatchNuclearNorm",
    ]
    # the recipe's defaults reach the adversarial part; λ reaches both parts
    assert method.parts[0].hidden_units == (1024, 1024)
    assert method.parts[0].lambda_ == pytest.approx(method.parts[1].lambda_)
    assert "domain_accuracy" in result.history.history
    for bad, match in [
        ("dann+nope", "Expected method to be one of"),
        ("dann+source_only", "Expected method to be one of"),
    ]:
        with pytest.raises(ValueError, match=match):
            kt.adapt(tiny_encoder(), (xs, ys), xt, method=bad, verbose=0)
    with pytest.raises(ValueError, match="two or more different"):
        kt.adaptation.get_alignment_method("mcc+mcc")
    with pytest.raises(ValueError, match="takes the argument 'nope'"):
        kt.adaptation.get_alignment_method("dann+mcc", nope=1)


def test_source_augmentation_reaches_the_source_batches_only():
    (xs, ys), (xt, _) = two_domains(n=120)
    # an "augmentation" that erases the source: nothing can be learned from it
    erased = kt.adapt(
        tiny_encoder(),
        (xs, ys),
        xt,
        method="source_only",
        epochs=6,
        verbose=0,
        source_augmentation=lambda x: x * 0.0,
    )
    plain = kt.adapt(
        tiny_encoder(), (xs, ys), xt, method="source_only", epochs=6, verbose=0
    )
    # the held-out split is not augmented: the plain run learns, the erased does not
    assert plain.source_accuracy >= erased.source_accuracy + 0.3
    with pytest.raises(ValueError, match="source_augmentation to be one of"):
        kt.adapt(tiny_encoder(), (xs, ys), xt, source_augmentation="flip", verbose=0)


def test_auto_source_augmentation_jitters_image_sources_only(capsys):
    from keras_transfer.adaptation.candidates import (
        augment_source,
        source_augmentation_for,
    )

    rng = np.random.default_rng(0)
    ys = np.arange(40) % 2
    xs = np.zeros((40, 12, 12, 1), "float32")
    xs[ys == 0, 2:10, 5:7] = 1.0  # a vertical bar
    xs[ys == 1, 5:7, 2:10] = 1.0  # a horizontal bar
    xt = xs + rng.uniform(0, 0.3, xs.shape).astype("float32")
    aug = source_augmentation_for("auto", xs)
    assert source_augmentation_for("auto", np.zeros((8, 4), "float32")) is None
    assert source_augmentation_for("auto", np.zeros((8, 12, 12, 7))) is None
    assert source_augmentation_for(None, xs) is None
    # the source half of every batch moves, the target half does not
    import tensorflow as tf

    batch = {"source": xs[:8], "target": xt[:8]}
    pairs = tf.data.Dataset.from_tensors((batch, ys[:8]))
    jittered, _ = next(iter(augment_source(pairs, aug)))
    assert not np.allclose(jittered["source"], xs[:8])
    np.testing.assert_array_equal(jittered["target"], xt[:8])

    def encoder():
        return keras.Sequential(
            [
                keras.Input((12, 12, 1)),
                keras.layers.Conv2D(4, 3, activation="relu"),
                keras.layers.Flatten(),
            ]
        )

    kwargs = {"method": "source_only", "epochs": 2, "verbose": 0}
    auto = kt.adapt(encoder(), (xs, ys), xt, source_augmentation="auto", **kwargs)
    off = kt.adapt(encoder(), (xs, ys), xt, source_augmentation=None, **kwargs)
    default = kt.adapt(encoder(), (xs, ys), xt, **kwargs)
    assert (
        auto.selection["source_augmentation"] == "auto: translation 0.1, rotation 0.1"
    )
    assert off.selection["source_augmentation"] is None
    # the default is the appearance jitter for images in [0, 1] or [0, 255] ...
    assert default.selection["source_augmentation"].startswith(
        "default (appearance): invert 0.5"
    )
    # ... and nothing for features, or images in another range (no error)
    (fs, fy), (ft, _) = two_domains(n=60)
    features = kt.adapt(tiny_encoder(), (fs, fy), ft, **kwargs)
    assert features.selection["source_augmentation"] is None
    centred = kt.adapt(encoder(), (xs - 0.5, ys), xt - 0.5, **{**kwargs, "verbose": 1})
    assert centred.selection["source_augmentation"] is None
    assert "source augmentation: none (the default appearance jitter needs" in (
        capsys.readouterr().out
    )


@pytest.mark.large
def test_choose_keeps_the_jitter_whose_candidates_agree_more(capsys, monkeypatch):
    rng = np.random.default_rng(0)
    ys = np.arange(60) % 3
    xs = np.zeros((60, 12, 12, 1), "float32")
    for c in range(3):  # a bar per class, at three heights
        xs[ys == c, 2 + 3 * c : 4 + 3 * c, 2:10] = 1.0
    xt = np.clip(xs + rng.uniform(0, 0.4, xs.shape), 0, 1).astype("float32")
    encoder = keras.Sequential(
        [
            keras.Input((12, 12, 1)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Flatten(),
        ]
    )
    # every agreement is "low" and every source "unlearnt": the kept run warns once
    # for each, the discarded one not at all
    monkeypatch.setattr(kt.adaptation.result, "LOW_AGREEMENT", 1.01)
    from keras_transfer.adaptation import pipeline

    unlearnt = "the chosen model's held-out source accuracy is {:.3f} (test)"
    monkeypatch.setattr(pipeline, "source_check", lambda a, k, **_: unlearnt.format(a))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = kt.adapt(
            encoder,
            (xs, ys),
            xt,
            candidates=["source_only", "bnm", "mcc"],
            source_augmentation="choose",
            epochs=3,
            target_batchnorm=False,  # predictions = the scored ones
            on_low_agreement="keep",  # a candidate, whose predictions are stored
            verbose=1,
        )
    said = [w for w in caught if "candidates agree" in str(w.message)]
    assert [str(w.message) for w in said] == [
        f"adapt: {result.selection['agreement_warning']}"
    ]
    assert said[0].filename == __file__  # it points at the user's call
    said = [w for w in caught if "held-out source accuracy is" in str(w.message)]
    assert [str(w.message) for w in said] == [
        f"adapt: {result.selection['source_warning']}"
    ]
    choice = result.selection["source_augmentation_choice"]
    agreement = choice["agreement"]
    assert set(agreement) == {"default", "auto+appearance"}
    want = max(("default", "auto+appearance"), key=lambda s: agreement[s])
    assert choice["chosen"] == want
    assert result.selection["agreement"] == agreement[want]
    label = result.selection["source_augmentation"]
    assert label.startswith("default (appearance)" if want == "default" else "auto+")
    # both runs trained the one encoder in place; the kept run's weights are back
    np.testing.assert_allclose(
        result.model.predict(xt, verbose=0),
        result.target_probabilities[result.method],
        atol=1e-5,
    )
    assert f"choose: kept source_augmentation={want!r}" in capsys.readouterr().out
    with pytest.raises(ValueError, match='needs method="auto"'):
        kt.adapt(encoder, (xs, ys), xt, method="mcc", source_augmentation="choose")
    # features: no jitter applies, so one run, and nothing to compare
    (fs, fy), (ft, _) = two_domains(n=60)
    once = kt.adapt(
        tiny_encoder(),
        (fs, fy),
        ft,
        candidates=["source_only", "bnm", "mcc"],
        source_augmentation="choose",
        epochs=2,
        verbose=0,
    )
    assert list(once.selection["source_augmentation_choice"]["agreement"]) == [
        "default"
    ]


def test_appearance_augmentation_changes_intensity_in_the_images_range():
    from keras_transfer.adaptation.candidates import source_augmentation_for

    rng = np.random.default_rng(0)
    for high in (1.0, 255.0):
        xs = (rng.uniform(0.2, 0.4, (64, 12, 12, 3)) * high).astype("float32")
        aug = source_augmentation_for("appearance", xs, seed=1)
        out = np.asarray(aug(xs, training=True))
        assert out.shape == xs.shape
        assert 0.0 <= out.min() and out.max() <= high + 1e-3  # stays in its range
        # polarity flips: dark images become light ones, in about half the batch
        inverted = (out.mean(axis=(1, 2, 3)) > 0.5 * high).mean()
        assert 0.2 < inverted < 0.8
    # pixels do not move (no geometric part): a lone bright spot stays the
    # brightest pixel, or the darkest where the image was inverted
    spot = np.full((8, 12, 12, 1), 50.0, "float32")
    spot[:, 3, 7] = 250.0
    out = np.asarray(source_augmentation_for("appearance", spot)(spot, training=True))
    flat = out.reshape(8, -1)
    extreme = np.where(
        flat.mean(1, keepdims=True) > 127,
        flat.argmin(1)[:, None],
        flat.argmax(1)[:, None],
    )
    assert (extreme[:, 0] == 3 * 12 + 7).all()
    both = source_augmentation_for("auto+appearance", spot)
    names = [type(layer).__name__ for layer in both.layers]
    assert names[:2] == ["RandomTranslation", "RandomRotation"]
    assert "RandomInvert" in names and "RandomHue" not in names  # one channel
    assert source_augmentation_for("appearance", np.zeros((8, 16), "float32")) is None
    with pytest.raises(ValueError, match=r"values in \[0, 1\] or \[0, 255\]"):
        source_augmentation_for("appearance", spot - 100.0)
    # adapt records what ran
    encoder = keras.Sequential([keras.Input((12, 12, 1)), keras.layers.Flatten()])
    spots = np.concatenate([spot, spot[:, ::-1]])
    result = kt.adapt(
        encoder,
        (spots, np.arange(16) // 8),
        spots[:, :, ::-1],
        method="source_only",
        epochs=1,
        verbose=0,
        source_augmentation="appearance",
    )
    assert result.selection["source_augmentation"].startswith("appearance: invert 0.5")


def test_candidates_continue_with_the_warmup_optimizer_state():
    from keras_transfer.adaptation.result import carry_optimizer_state, optimizer_state

    (xs, ys), (xt, _) = two_domains(n=90)
    warm = DomainAdaptationModel(tiny_encoder(), 3, method=None, bottleneck_units=6)
    warm.compile(optimizer=keras.optimizers.Adam(1e-3))
    warm.fit(domain_pairs((xs, ys), xt, 16), epochs=1, verbose=0)
    state = optimizer_state(warm.optimizer)
    assert "learning_rate" not in state and state["iteration"] > 0
    branch = DomainAdaptationModel(
        warm.encoder,
        3,
        classifier=warm.classifier,
        bottleneck=warm.bottleneck,
        method="dann",
    )
    branch.compile(optimizer=keras.optimizers.Adam(5e-4))
    loaded = carry_optimizer_state(branch, state)
    slots = {v.name: np.array(v) for v in branch.optimizer.variables}
    shared = [n for n in state if n != "iteration"]
    assert loaded == len(state) and shared
    for name in shared:  # the warm-up's moments, not zeros
        np.testing.assert_array_equal(slots[name], state[name])
    fresh = [n for n in slots if n not in state and n != "learning_rate"]
    assert fresh and all(not slots[n].any() for n in fresh)  # the discriminator's
    assert float(branch.optimizer.learning_rate) == pytest.approx(5e-4)
    assert carry_optimizer_state(branch, {}) == 0


@pytest.mark.large
def test_adapt_trains_with_xla_and_refuses_a_bad_jit_compile():
    (xs, ys), (xt, _) = two_domains(n=60)
    result = kt.adapt(
        tiny_encoder(),
        (xs, ys),
        xt,
        method="dann",
        epochs=2,
        warmup=1,
        verbose=0,
        jit_compile=True,
    )
    assert result.training_model.jit_compile is True
    assert np.all(np.isfinite(result.model.predict(xt, verbose=0)))
    with pytest.raises(ValueError, match="jit_compile to be True, False or 'auto'"):
        kt.adapt(tiny_encoder(), (xs, ys), xt, jit_compile="xla", verbose=0)


@pytest.mark.parametrize(
    "policy, method, bottleneck_units",
    [("mixed_bfloat16", "dann", 256), ("mixed_float16", "coral", None)],
)
def test_adapt_mixed_precision_keeps_heads_losses_and_outputs_float32(
    tmp_path, policy, method, bottleneck_units
):
    (xs, ys), (xt, _) = two_domains(n=60)
    encoder = tiny_encoder()
    result = kt.adapt(
        encoder,
        (xs, ys),
        xt,
        method=method,
        epochs=2,
        warmup=1,
        bottleneck_units=bottleneck_units,
        mixed_precision=policy,
        verbose=0,
    )
    compute = policy.removeprefix("mixed_")
    assert encoder.layers[-1].compute_dtype == compute
    training = result.training_model
    assert training.classifier.compute_dtype == "float32"
    scaled = isinstance(training.optimizer, keras.optimizers.LossScaleOptimizer)
    assert scaled == (policy == "mixed_float16")
    assert np.isfinite(result.history.history["loss"]).all()
    # the alignment and the selection scores see float32 features
    assert training.features(xt[:8]).dtype == np.float32
    probabilities = result.model.predict(xt, verbose=0)
    assert probabilities.dtype == np.float32 and np.isfinite(probabilities).all()
    result.model.save(tmp_path / "m.keras")
    reloaded = kt.load_model(tmp_path / "m.keras")
    computes = {layer.compute_dtype for layer in reloaded._flatten_layers()}
    assert computes == {compute, "float32"}  # the encoder's policy was saved
    assert reloaded.layers[-1].compute_dtype == "float32"
    with pytest.raises(ValueError, match="mixed_precision to be one of"):
        kt.adapt(tiny_encoder(), (xs, ys), xt, mixed_precision="half", verbose=0)


def test_adapt_pooling_reaches_the_encoder():
    rng = np.random.default_rng(0)
    xs = rng.uniform(0, 1, (40, 8, 8, 3)).astype("float32")
    ys = np.arange(40) % 2
    conv = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3)])
    result = kt.adapt(
        conv, (xs, ys), xs + 0.1, method="mcc", epochs=1, pooling="flatten", verbose=0
    )
    assert result.training_model.encoder.output_shape == (None, 6 * 6 * 4)
    with pytest.raises(ValueError, match="pooling to be one of"):
        kt.adapt(conv, (xs, ys), xs, pooling="mean", verbose=0)


def test_datasets_are_accepted(monkeypatch, caplog, tmp_path):
    import gc
    import logging
    import tempfile

    import tensorflow as tf

    from keras_transfer.data import spill
    from keras_transfer.data.spill import SpilledArray

    (xs, ys), (xt, _) = two_domains(n=90)
    source = tf.data.Dataset.from_tensor_slices((xs, ys)).batch(16)
    target = tf.data.Dataset.from_tensor_slices(xt).batch(16)
    weights = []
    for limit in (None, xt[:20].nbytes):  # in memory; then both "large": on disk
        monkeypatch.setattr(spill, "SPILL_BYTES", limit or spill.SPILL_BYTES)
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
        read = []
        whole = SpilledArray.__array__

        def bounded(self, dtype=None, copy=None, read=read, whole=whole):
            read.append(len(self))
            if len(self) > 256:  # the largest batch adapt predicts on
                raise AssertionError(f"{len(self)} spilled rows read into one array")
            return whole(self, dtype, copy)

        monkeypatch.setattr(SpilledArray, "__array__", bounded)
        keras.utils.set_random_seed(0)  # the same initial weights both times
        encoder = tiny_encoder()
        with caplog.at_level(logging.INFO, logger="keras_transfer"):
            result = kt.adapt(
                encoder, source, target, method="coral", epochs=2, verbose=0
            )
        monkeypatch.undo()
        assert result.model.output_shape == (None, 3)
        weights.append(result.model.get_weights())
        gc.collect()
        assert not list(tmp_path.glob("keras_transfer_*"))  # went with adapt
    # read into memory below the limit; above it written to disk, read a batch at
    # a time, and the same model as from memory
    assert caplog.text.count("is read back one batch at a time") == 2
    assert read and max(read) <= 256
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_spilled_dataset_with_nan_is_refused_by_row(monkeypatch, tmp_path):
    import tempfile

    import tensorflow as tf

    from keras_transfer.data import spill

    (xs, ys), (xt, _) = two_domains(n=90)
    xt = xt.copy()
    xt[[3, 70]] = np.nan
    monkeypatch.setattr(spill, "SPILL_BYTES", 0)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    target = tf.data.Dataset.from_tensor_slices(xt).batch(16)
    with pytest.raises(ValueError, match=r"2 target example.*indices \[3, 70\]"):
        kt.adapt(tiny_encoder(), (xs, ys), target, epochs=1, verbose=0)


def test_split_source_is_stratified_and_seeded():
    y = np.repeat(np.arange(4), [10, 20, 30, 40])
    x = np.arange(len(y))
    _, ytr, xv, yv = split_source(x, y, 0.1, seed=3)
    assert np.bincount(yv).tolist() == [1, 2, 3, 4]
    assert len(ytr) + len(yv) == len(y) and not set(xv) & set(
        np.setdiff1d(x, xv)
    ) - set(x)
    again = split_source(x, y, 0.1, seed=3)[2]
    np.testing.assert_array_equal(xv, again)


class _Accuracies(keras.callbacks.Callback):
    """Feeds the controller a scripted held-out accuracy per epoch."""


def test_controller_waits_for_take_off_then_ramps_and_guards(monkeypatch, capsys):
    from keras_transfer.adaptation import recipe

    (xs, ys), (xt, _) = two_domains(n=64)
    script = iter([0.34, 0.33, 0.34, 0.8, 0.9, 0.9, 0.9, 0.5, 0.9, 0.9, 0.9, 0.9])
    monkeypatch.setattr(recipe, "_source_accuracy", lambda *a: next(script))
    model = DomainAdaptationModel(tiny_encoder(), 3, method="mcc")
    model.compile("adam")
    ctrl = AdaptationController((xs[:40], ys[:40]), patience=2, label="mcc")
    model.fit(domain_pairs((xs, ys), xt, 32), epochs=12, callbacks=[ctrl], verbose=0)
    printed = capsys.readouterr().out
    # every line names whose phase it is, so a guard is never read as another's
    assert "[adapt] mcc: collapse guard at epoch 8:" in printed
    assert "[adapt] mcc: warm-up ends after epoch 6" in printed
    # chance-level plateau (epochs 1-3) does not end the warm-up; the 0.9 plateau does
    assert ctrl.warmup_epochs == 6
    guard = [e for e in ctrl.events if e["event"] == "collapse_guard"]
    assert (
        len(guard) == 1 and guard[0]["epoch"] == 8 and guard[0]["restored_epoch"] == 7
    )
    assert ctrl.lambda_max == 0.5
    assert 0.0 < ctrl.value <= 0.5


def test_adapt_batchnorm_uses_target_statistics():
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(3), keras.layers.BatchNormalization()]
    )
    model.layers[1].trainable = False  # frozen BN is updated too
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(300, 3)).astype("float32")
    assert adapt_batchnorm(model, x, batch_size=100) == 1
    h = model.layers[0](x).numpy()
    np.testing.assert_allclose(
        model.layers[1].moving_mean.numpy(), h.mean(0), atol=1e-4
    )
    assert model.layers[1].trainable is False


def test_adapt_resumes_from_its_backup(tmp_path):
    (xs, ys), (xt, _) = two_domains(n=90)
    backup = tmp_path / "backup"

    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if self.model.name == "adapt_dann" and epoch == 1:
                raise KeyboardInterrupt

    kwargs = dict(method="dann", epochs=6, warmup=2, verbose=0, seed=1)
    keras.utils.set_random_seed(1)
    with pytest.raises(KeyboardInterrupt):
        kt.adapt(
            tiny_encoder(),
            (xs, ys),
            xt,
            backup_dir=str(backup),
            callbacks=[Stop()],
            **kwargs,
        )
    state = json.loads((backup / "state.json").read_text())
    assert "warmup" in state and "dann" not in state
    keras.utils.set_random_seed(1)
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resumed = kt.adapt(
            tiny_encoder(), (xs, ys), xt, backup_dir=str(backup), **kwargs
        )
    # the running phase resumed with its optimizer state (Adam moments), not fresh
    skipped = [w for w in caught if "Skipping variable loading" in str(w.message)]
    assert not skipped, [str(w.message) for w in skipped]
    assert len(resumed.history.epoch) == 6
    assert resumed.selection["warmup_epochs"] == 2
    assert not backup.exists()  # removed once the run completed


def test_the_cli_accepts_every_selector_the_library_has():
    import dataclasses

    from keras_transfer.adaptation.result import DEFAULT_SELECTOR
    from keras_transfer.config.sections import AdaptationConfig

    field = {f.name: f for f in dataclasses.fields(AdaptationConfig)}["selector"]
    want = (*kt.adaptation.SELECTORS, kt.adaptation.ENSEMBLE, kt.adaptation.SOUP)
    assert tuple(field.metadata["choices"]) == want
    assert field.default == DEFAULT_SELECTOR  # the CLI's default is the library's


def test_the_cli_accepts_every_source_augmentation_the_library_has():
    import dataclasses

    from keras_transfer.adaptation.candidates import SOURCE_AUGMENTATIONS
    from keras_transfer.config.sections import AdaptationConfig

    fields = {f.name: f for f in dataclasses.fields(AdaptationConfig)}
    choices = fields["source_augmentation"].metadata["choices"]
    assert tuple(choices) == (*SOURCE_AUGMENTATIONS, "choose", None)


def test_source_augmentation_draws_the_same_batches_on_every_run():
    # the random layers share one seeded state: a parallel map would hand out the
    # draws in a different order on each run (the demo's target accuracy for one
    # seed moved between 0.71 and 0.81)
    from keras_transfer.adaptation.candidates import (
        augment_source,
        source_augmentation_for,
    )

    rng = np.random.default_rng(0)
    xs = rng.integers(0, 256, (320, 16, 16, 3)).astype("float32")
    xt = rng.integers(0, 256, (320, 16, 16, 3)).astype("float32")
    ys = np.arange(320) % 4

    def batches():
        aug = source_augmentation_for("auto+appearance", xs, seed=3)
        pairs = augment_source(domain_pairs((xs, ys), xt, 8, seed=0), aug)
        return np.stack([b["source"].numpy() for b, _ in pairs])

    first, second = batches(), batches()
    assert first.shape[0] == 40
    np.testing.assert_array_equal(first, second)


class _MomentumSeen(keras.callbacks.Callback):
    """Records the encoder BatchNorm layers' momentum while `fit` trains."""

    def __init__(self, layers):
        super().__init__()
        self.layers, self.seen = layers, set()

    def on_train_batch_begin(self, batch, logs=None):
        self.seen.add(tuple(layer.momentum for layer in self.layers))


def _bn_encoder(seed):
    keras.utils.set_random_seed(seed)
    encoder = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, name="dense"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.BatchNormalization(name="frozen_bn"),
            keras.layers.ReLU(),
        ]
    )
    encoder.get_layer("frozen_bn").trainable = False
    return encoder


def test_encoder_batchnorm_uses_momentum_0_9_while_adapting_then_its_own(capsys):
    (xs, ys), (xt, _) = two_domains(n=120)
    xs, xt = xs + 20.0, xt + 20.0  # BatchNorm inputs far from the initial mean 0
    moving = {}
    for momentum in (0.9, None):
        encoder = _bn_encoder(seed=1)
        bn, frozen = encoder.get_layer("bn"), encoder.get_layer("frozen_bn")
        seen = _MomentumSeen([bn, frozen])
        result = kt.adapt(
            encoder,
            (xs, ys),
            xt,
            method="mcc",
            epochs=2,
            batchnorm_momentum=momentum,
            callbacks=[seen],
        )
        printed = capsys.readouterr().out
        moving[momentum] = np.abs(bn.moving_mean.numpy()).mean()
        assert bn.momentum == frozen.momentum == 0.99  # given back
        info = result.selection["encoder_batchnorm"]
        if momentum is None:
            assert seen.seen == {(0.99, 0.99)}
            assert info == {"momentum": None, "layers": 0}
            assert "BatchNormalization" not in printed
        else:  # the frozen layer runs in inference mode: left alone
            assert seen.seen == {(0.9, 0.99)}
            assert info == {"momentum": 0.9, "layers": 1}
            assert "1 trainable BatchNormalization layer(s) use momentum 0.9" in printed
    # 16 steps: 0.9 moved the statistics most of the way, 0.99 about 15% of it
    assert moving[0.9] > 2.0 * moving[None]
    with pytest.raises(ValueError, match=r"momentum in \[0, 1\) or None"):
        kt.adapt(_bn_encoder(0), (xs, ys), xt, batchnorm_momentum=1.5, verbose=0)


@pytest.mark.large
def test_a_model_that_learnt_nothing_from_the_source_is_warned_about():
    # Blank inputs: every candidate predicts one class, agrees with the others
    # (no agreement warning), and sits at chance on the held-out source.
    ys = np.arange(90) % 3
    xs, xt = np.zeros((90, 4), "float32"), np.zeros((60, 4), "float32")
    with pytest.warns(UserWarning, match="learnt nothing from the labelled source"):
        result = kt.adapt(tiny_encoder(), (xs, ys), xt, epochs=2, verbose=0)
    assert result.selection["agreement_warning"] is None
    assert "chance level for 3 classes" in result.selection["source_warning"]
    # the number quoted is the returned model's, also when that is not a candidate
    for selector in (None, "ensemble"):
        kwargs = {"selector": selector} if selector else {}
        with pytest.warns(UserWarning, match="learnt nothing") as said:
            result = kt.adapt(
                tiny_encoder(), (xs, ys), xt, epochs=2, verbose=0, **kwargs
            )
        quoted = f"accuracy is {result.source_accuracy:.3f}"
        assert quoted in result.selection["source_warning"]
        assert any(quoted in str(w.message) for w in said)
    (xs, ys), (xt, _) = two_domains()
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*learnt nothing.*")
        learnt = kt.adapt(tiny_encoder(), (xs, ys), xt, method="mcc", verbose=0)
    assert learnt.selection["source_warning"] is None


# 2 epochs on inputs far from 0: what is checked is the statistics, not learning
@pytest.mark.filterwarnings("ignore:adapt. the chosen model's held-out source")
@pytest.mark.large
def test_target_batchnorm_re_estimates_the_returned_models_statistics(capsys):
    from keras_transfer.adaptation.result import accuracy

    (xs, ys), (xt, _) = two_domains(n=120)
    xs, xt = xs + 20.0, xt + 20.0
    kwargs = dict(method="mcc", epochs=2, seed=3)
    encoder = _bn_encoder(seed=1)
    bn, frozen = encoder.get_layer("bn"), encoder.get_layer("frozen_bn")
    result = kt.adapt(encoder, (xs, ys), xt, target_batchnorm=True, **kwargs)
    printed = capsys.readouterr().out
    # the trained layer now holds the target's statistics (one batch of 120)
    h = encoder.get_layer("dense")(xt).numpy()
    np.testing.assert_allclose(bn.moving_mean.numpy(), h.mean(0), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(bn.moving_variance.numpy(), h.var(0), rtol=1e-3)
    # the frozen (pretrained-like) layer is left alone
    np.testing.assert_array_equal(frozen.moving_mean.numpy(), np.zeros(8))
    info = result.selection["target_batchnorm"]
    assert info["requested"] is True and info["skipped"] is None
    assert info["layers"] == 2  # the encoder's trainable one and the bottleneck's
    assert "re-estimated the statistics of 2 trained BatchNormalization" in printed
    # .source_accuracy is the returned model's; the trained statistics' is kept
    _, _, xs_val, ys_val = split_source(xs, ys, 0.15, 3)
    assert result.source_accuracy == accuracy(result.model, xs_val, ys_val)
    assert 0.0 <= info["source_accuracy_trained_statistics"] <= 1.0
    # candidate_model(chosen) is the returned model, statistics included
    np.testing.assert_allclose(
        result.candidate_model("mcc").predict(xt, verbose=0),
        result.model.predict(xt, verbose=0),
        atol=1e-5,
    )
    # False keeps the training batches' moving averages: not the target's
    kept = kt.adapt(_bn_encoder(seed=1), (xs, ys), xt, target_batchnorm=False, **kwargs)
    assert kept.selection["target_batchnorm"]["layers"] == 0
    moving = kept.training_model.encoder.get_layer("bn").moving_mean.numpy()
    assert np.abs(moving - h.mean(0)).max() > 0.05
    # "auto" (the default): only when the bottleneck is the only trained BatchNorm
    auto = kt.adapt(_bn_encoder(seed=1), (xs, ys), xt, **kwargs)
    assert auto.selection["target_batchnorm"]["requested"] == "auto"
    assert auto.selection["target_batchnorm"]["layers"] == 0  # the encoder trains BN
    baseline = kt.adapt(
        tiny_encoder(), (xs, ys), xt, **{**kwargs, "method": "source_only"}
    )
    assert baseline.selection["target_batchnorm"]["layers"] == 0  # uses no target
    plain = kt.adapt(tiny_encoder(), (xs, ys), xt, **kwargs)
    assert plain.selection["target_batchnorm"]["layers"] == 1  # the bottleneck's
    bottleneck = plain.training_model.bottleneck
    bn = bottleneck.get_layer("bottleneck_bn")
    dense = bottleneck.get_layer("bottleneck_dense")
    target_features = dense(plain.training_model.encoder(xt)).numpy()
    np.testing.assert_allclose(
        bn.moving_mean.numpy(), target_features.mean(0), rtol=1e-3, atol=1e-3
    )
    # selector="ensemble": every member normalised for the target, not only EnsV's
    from keras_transfer.adaptation.batchnorm import target_batchnorm_statistics

    ens = kt.adapt(
        tiny_encoder(),
        (xs, ys),
        xt,
        candidates=["source_only", "entropy", "mcc"],
        selector="ensemble",
        **{**kwargs, "method": "auto"},
    )
    assert ens.selection["target_batchnorm"]["layers"] == 1
    each = []
    for name in ens.selection["members"]:
        member = ens.candidate_model(name)
        target_batchnorm_statistics(member, xt, True)
        each.append(member.predict(xt, verbose=0))
    np.testing.assert_allclose(
        ens.model.predict(xt, verbose=0), np.mean(each, 0), atol=1e-5
    )
    with pytest.raises(ValueError, match="Expected target_batchnorm to be 'auto'"):
        kt.adapt(tiny_encoder(), (xs, ys), xt, target_batchnorm="yes", verbose=0)


def test_the_cli_offers_target_batchnorm_with_the_librarys_default():
    import dataclasses

    from keras_transfer.adaptation.batchnorm import (
        DEFAULT_TARGET_BATCHNORM,
        TARGET_BATCHNORM_CHOICES,
    )
    from keras_transfer.config.sections import AdaptationConfig

    field = {f.name: f for f in dataclasses.fields(AdaptationConfig)}[
        "target_batchnorm"
    ]
    assert tuple(field.metadata["choices"]) == TARGET_BATCHNORM_CHOICES
    assert field.default == DEFAULT_TARGET_BATCHNORM


def _record_reverse_starts(monkeypatch) -> list:
    """Records the encoder weights each reverse-validation fit starts from (one
    shared reverse model, reset before each fit: `reverse_validation_scores`)."""
    from keras_transfer.adaptation import reverse

    built, real = [], reverse._fit_and_score

    def spy(model, *args, **kwargs):
        built.append([np.array(w) for w in model.layers[1].get_weights()])
        return real(model, *args, **kwargs)

    monkeypatch.setattr(reverse, "_fit_and_score", spy)
    return built


def test_ensv_rv_vetoes_by_reverse_validation_from_the_starting_weights(
    monkeypatch, capsys
):
    (xs, ys), (xt, _) = two_domains()
    encoder = tiny_encoder()
    start = [np.array(w) for w in encoder.get_weights()]
    built = _record_reverse_starts(monkeypatch)
    names = ["source_only", "entropy", "mcc"]
    result = kt.adapt(
        encoder,
        (xs, ys),
        xt,
        method="auto",
        candidates=names,
        selector="ensv_rv",
        epochs=4,
        target_batchnorm=False,  # predictions = the scored ones
        verbose=1,
    )
    out = capsys.readouterr().out
    assert "reverse validation: 3 fits" in out
    assert "ensv among the candidates whose rv held" in out
    # every reverse model started from the encoder's weights before adapt
    assert len(built) == 3
    for weights in built:
        for got, want in zip(weights, start):
            np.testing.assert_array_equal(got, want)
    cands = result.selection["candidates"]
    rv = {n: cands[n]["scores"]["rv"] for n in names}
    assert all(0.0 <= v <= 1.0 for v in rv.values())
    pool = [n for n in names if cands[n]["eligible"]] or names
    kept = [n for n in pool if rv[n] >= 0.5 * max(rv[m] for m in pool)]
    assert result.method == max(kept, key=lambda n: cands[n]["scores"]["ensv"])
    assert kt.adaptation.choose(result.selection, names, "rv") == max(pool, key=rv.get)
    # the reverse fits left the returned model as it was scored
    np.testing.assert_allclose(
        result.target_probabilities[result.method],
        result.model.predict(xt, verbose=0),
        atol=1e-5,
    )
    # a run that did not compute rv says so instead of a KeyError
    plain = {
        **result.selection,
        "candidates": {
            n: {**c, "scores": {k: v for k, v in c["scores"].items() if k != "rv"}}
            for n, c in cands.items()
        },
    }
    with pytest.raises(ValueError, match="needs the 'rv' score"):
        kt.adaptation.choose(plain, names, "ensv_rv")


@pytest.mark.filterwarnings("ignore:adapt. the chosen model's held-out source")
@pytest.mark.filterwarnings("ignore:adapt. the .* candidates agree")
def test_default_auto_runs_on_raw_text_inputs():
    words = np.array(["good", "great", "fine", "bad", "awful", "poor"])
    rng = np.random.default_rng(0)

    def make(n, suffix):
        y = rng.integers(0, 2, n)
        x = [" ".join(rng.choice(words[:3] if t else words[3:], 3)) + suffix for t in y]
        return np.array(x), y

    (xs, ys), (xt, _) = make(120, ""), make(120, " shipped")
    vectorize = keras.layers.TextVectorization(max_tokens=20, output_mode="multi_hot")
    vectorize.adapt(np.concatenate([xs, xt]))
    inputs = keras.Input((), dtype="string")
    encoder = keras.Model(inputs, keras.layers.Dense(8, "relu")(vectorize(inputs)))
    result = kt.adapt(
        encoder, (xs, ys), xt, candidates=["source_only", "mcc"], epochs=3, verbose=0
    )
    scores = result.selection["candidates"]
    assert all(0.0 <= s["scores"]["rv"] <= 1.0 for s in scores.values())
    # (Keras's predict() takes no NumPy strings; a tensor is fine)
    assert result.model(keras.ops.convert_to_tensor(xt[:4])).shape == (4, 2)


def test_a_resumed_run_starts_its_reverse_models_where_the_first_run_started(
    tmp_path, monkeypatch
):
    (xs, ys), (xt, _) = two_domains(n=90)
    backup = tmp_path / "backup"

    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if self.model.name == "adapt_mcc":
                raise KeyboardInterrupt

    kwargs = dict(candidates=["source_only", "mcc"], epochs=4, warmup=2, verbose=0)
    encoder = tiny_encoder()
    start = [np.array(w) for w in encoder.get_weights()]
    with pytest.raises(KeyboardInterrupt):
        kt.adapt(
            encoder, (xs, ys), xt, backup_dir=str(backup), callbacks=[Stop()], **kwargs
        )
    assert (backup / "initial.npz").exists()
    # the interrupted call trained this object in place: resuming with it
    assert not np.allclose(encoder.get_weights()[0], start[0])
    built = _record_reverse_starts(monkeypatch)
    resumed = kt.adapt(encoder, (xs, ys), xt, backup_dir=str(backup), **kwargs)
    assert len(built) == 2
    for weights in built:  # the first run's starting weights, from the backup
        for got, want in zip(weights, start):
            np.testing.assert_array_equal(got, want)
    assert resumed.selection["selector"] == "ensv_rv"
    assert not backup.exists()


def test_one_hot_and_column_labels_train_like_integer_ids():
    (xs, ys), (xt, _) = two_domains(n=60)
    runs = {
        "ids": ys,
        "column": ys[:, None].astype("float32"),
        "one_hot": np.eye(ys.max() + 2)[ys],  # one class wider than the labels use
    }
    shapes = {}
    for name, y in runs.items():
        keras.utils.set_random_seed(0)  # the same starting encoder each time
        result = kt.adapt(
            tiny_encoder(), (xs, y), xt, method="source_only", epochs=1, verbose=0
        )
        shapes[name] = result.model.output_shape[-1]
        if name == "ids":
            first = result.source_accuracy
        else:
            assert result.source_accuracy == first
    k = int(ys.max()) + 1
    assert shapes == {"ids": k, "column": k, "one_hot": k + 1}


@pytest.mark.parametrize(
    "labels, match",
    [
        (lambda y: np.array(["cat", "dog", "eel"])[y], "np.unique"),
        (lambda y: np.eye(3)[y] * 0.9 + 0.03, "not one-hot"),
        (lambda y: y + 0.5, "not whole numbers"),
        (lambda y: np.stack([y, y, y], 1)[:, :, None], "shape"),
        (lambda y: np.eye(3)[y].reshape(-1), "one label per source example"),
    ],
)
def test_labels_that_are_not_class_ids_are_refused_by_name(labels, match):
    (xs, ys), (xt, _) = two_domains(n=60)
    with pytest.raises(ValueError, match=match):
        kt.adapt(tiny_encoder(), (xs, labels(ys)), xt, epochs=1, verbose=0)


def test_nan_inputs_and_a_one_example_target_are_refused_before_training():
    (xs, ys), (xt, _) = two_domains(n=60)
    bad = xs.astype("float32").copy()
    bad[7, 0] = np.nan
    bad[30, 1] = np.inf
    with pytest.raises(ValueError, match=r"2 source example\(s\).*indices \[7, 30\]"):
        kt.adapt(tiny_encoder(), (bad, ys), xt, epochs=1, verbose=0)
    bad_t = xt.astype("float32").copy()
    bad_t[3] = np.nan
    with pytest.raises(ValueError, match=r"finite target inputs.*\[3\]"):
        kt.adapt(tiny_encoder(), (xs, ys), bad_t, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="at least 2 unlabelled target examples"):
        kt.adapt(tiny_encoder(), (xs, ys), xt[:1], epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"not a list.*np\.stack"):
        kt.adapt(tiny_encoder(), (xs, ys), list(xt), epochs=1, verbose=0)


def test_a_class_id_the_labels_skip_is_logged(caplog):
    (xs, ys), (xt, _) = two_domains(n=60)
    with caplog.at_level("WARNING", logger="keras_transfer"):
        result = kt.adapt(
            tiny_encoder(), (xs, ys + 1), xt, method="source_only", epochs=1,
            verbose=0,
        )  # fmt: skip
    assert result.model.output_shape[-1] == int(ys.max()) + 2
    assert "never use class ids [0]" in caplog.text


def test_infinite_source_or_target_datasets_are_refused():
    import tensorflow as tf

    (xs, ys), (xt, _) = two_domains(n=60)
    source = tf.data.Dataset.from_tensor_slices((xs, ys)).batch(8)
    target = tf.data.Dataset.from_tensor_slices(xt).batch(8)
    with pytest.raises(ValueError, match="finite dataset as source"):
        kt.adapt(tiny_encoder(), source.repeat(), target, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="finite dataset as target"):
        kt.adapt(tiny_encoder(), source, target.repeat(), epochs=1, verbose=0)


def test_a_finished_run_removes_only_its_own_backup_files(tmp_path):
    (xs, ys), (xt, _) = two_domains(n=60)
    mine = tmp_path / "project"
    (mine / "stage_photos").mkdir(parents=True)
    (mine / "notes.txt").write_text("keep")
    (mine / "warmup.txt").write_text("keep too")
    kt.adapt(
        tiny_encoder(), (xs, ys), xt, method="mcc", epochs=2, verbose=0,
        backup_dir=str(mine),
    )  # fmt: skip
    assert sorted(p.name for p in mine.iterdir()) == [
        "notes.txt", "stage_photos", "warmup.txt",
    ]  # fmt: skip
    fresh = tmp_path / "backup"  # a folder the run made: gone with its files
    kt.adapt(
        tiny_encoder(), (xs, ys), xt, method="mcc", epochs=2, verbose=0,
        backup_dir=str(fresh),
    )  # fmt: skip
    assert not fresh.exists()
