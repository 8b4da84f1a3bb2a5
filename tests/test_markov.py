import numpy as np
import pytest

from seqjax import SeqjaxError
from seqjax.markov import MarkovChain, symbols_of


def test_counts_and_mle_distribution_match_hand_counts():
    text = list("abab" "acab")
    m = MarkovChain.fit(text, order=1)
    assert m.count(["a"], "b") == 3 and m.count(["a"], "c") == 1 and m.count(["b"], "b") == 0
    np.testing.assert_allclose(m.next_distribution(["a"]), [0, 0.75, 0.25])
    np.testing.assert_allclose(m.next_distribution(["c"]), [1, 0, 0])


def test_second_order_smoothing_matches_hand_computed_fractions():
    """``abcab``, order 2, beta 2, counted by hand:

    unigrams a 2, b 2, c 1 of 5, V 3 -> P0 = (n + 1) / 8 = (3/8, 3/8, 2/8);
    bigrams ab 2, bc 1, ca 1 (contexts a 2, b 1, c 1); trigrams abc, bca, cab once each.
    After 'ab': P1(. | b) = (N(b, .) + 2 P0) / (1 + 2) = (1/4, 1/4, 1/2), then
    P2(. | ab) = (N(ab, .) + 2 P1) / (1 + 2) = (1/6, 1/6, 2/3).
    After 'ba' (never seen): P1(. | a) = (0 + 3/4, 2 + 3/4, 0 + 1/2) / 4 = (3/16, 11/16, 2/16),
    and P2(. | ba) = (0 + 2 P1) / (0 + 2) = P1.
    """
    m = MarkovChain.fit(list("abcab"), order=2, beta=2.0)
    assert m.symbols == ["a", "b", "c"]
    assert m.count(list("ab"), "c") == 1 and m.count(["a"], "b") == 2 and m.count([], "a") == 2
    np.testing.assert_allclose(m.next_distribution(list("ab"), smoothed=True), [1 / 6, 1 / 6, 2 / 3], rtol=1e-12)
    np.testing.assert_allclose(m.next_distribution(list("ba"), smoothed=True), [3 / 16, 11 / 16, 2 / 16],
                               rtol=1e-12)
    np.testing.assert_allclose(m.next_distribution(list("ab")), [0, 0, 1])  # MLE: 'ab' -> 'c' only
    assert not m.next_distribution(list("ba")).any()  # MLE of an unseen context: undefined, zeros


def test_held_out_log_likelihood_and_bits_match_hand_computed_values():
    """``aabab``, order 1, beta 1, by hand: P0(a) = (3 + 1) / 7 = 4/7, P0(b) = 3/7; after 'b'
    (seen once, followed by 'a'): P(a | b) = (1 + 4/7) / 2 = 11/14, P(b | b) = (0 + 3/7) / 2 = 3/14.
    The held-out 'ba' after the text (which ends in 'b'): log2(3/14), log2(11/14); without the
    text before it, its first symbol has no context: log2 P0(b) = log2(3/7)."""
    text = list("aabab")
    m = MarkovChain.fit(text, order=1, beta=1.0)
    np.testing.assert_allclose(m.log2_likelihood(["b", "a"], context=text),
                               [np.log2(3 / 14), np.log2(11 / 14)], rtol=1e-12)
    np.testing.assert_allclose(m.log2_likelihood(["b", "a"]), [np.log2(3 / 7), np.log2(11 / 14)], rtol=1e-12)
    # bits per symbol: -(log2(3/14) + log2(11/14)) / 2 = log2(14 * 14 / 33) / 2
    assert m.bits_per_symbol(["b", "a"], context=text) == pytest.approx(np.log2(196 / 33) / 2, rel=1e-12)


def test_mle_recovers_a_known_chain():
    """Text drawn from a known 2-state chain (a -> b with 0.3, b -> a with 0.6): the fitted
    transitions come back within sampling error (20,000 steps: standard error < 0.006), and
    text sampled from the fitted chain switches state at those rates again."""
    rng = np.random.default_rng(0)
    switch = {"a": 0.3, "b": 0.6}
    state, text = "a", []
    for u in rng.random(20_000):
        text.append(state)
        if u < switch[state]:
            state = "b" if state == "a" else "a"
    m = MarkovChain.fit(text, order=1)
    np.testing.assert_allclose(m.next_distribution(["a"]), [0.7, 0.3], atol=0.02)
    np.testing.assert_allclose(m.next_distribution(["b"]), [0.6, 0.4], atol=0.02)
    out = m.sample(5_000, ["a"], seed=0)
    after_a = [y for x, y in zip(out, out[1:]) if x == "a"]
    assert after_a.count("b") / len(after_a) == pytest.approx(0.3, abs=0.03)


def test_sampling_follows_transitions_and_is_seeded():
    m = MarkovChain.fit(list("abcabcabc"), order=1)
    assert "".join(m.sample(7, ["a"], seed=1)) == "abcabcab"
    m2 = MarkovChain.fit(list("abacadaeafag" * 10), order=1)
    s = m2.sample(500, ["a"], seed=0)
    assert s == m2.sample(500, ["a"], seed=0) and s != m2.sample(500, ["a"], seed=1)
    assert all(s[i] == "a" for i in range(0, 500, 2))  # every non-'a' is followed by 'a'
    with pytest.raises(SeqjaxError, match="--start 'z': 'z' does not occur in the"):
        m.sample(3, ["z"])


def test_word_chain_and_unknown_words():
    syms = symbols_of("The cat. The dog.", "word")
    assert syms == ["the", "cat", ".", "the", "dog", "."]
    m = MarkovChain.fit(syms, order=1, unk=True)
    assert np.isfinite(m.log2_likelihood(["the", "zebra"], context=syms)).all()
    with pytest.raises(SeqjaxError, match="--unit"):
        symbols_of("x", "byte")
    with pytest.raises(SeqjaxError, match="--order 3: the training text has 2 symbols"):
        MarkovChain.fit(list("ab"), order=3)


def test_cli_counts_on_the_whole_text_and_scores_the_held_out_tail(tmp_path, capsys):
    """The lab's counts cover the whole text; the held-out score comes from a chain that never
    saw the tail (here 'ab' occurs only in the last 10 %)."""
    from seqjax import configs
    from seqjax.tasks import markov

    text = "xyz j" * 180 + "abab" * 25  # 1000 chars; the last 100 hold every 'a' -> 'b'
    path = tmp_path / "t.txt"
    path.write_text(text)
    out = markov.run(configs.MarkovConfig(text=str(path), sample=5, start="x"))
    assert out["count_a_b"] == 50  # all 50 'a' -> 'b' of the tail; a head-only chain counts 0
    assert "transitions 'a' -> 'b': 50" in capsys.readouterr().out
    head, tail = list(text[:900]), list(text[900:])
    expect = MarkovChain.fit(head, 1, alphabet=sorted(set(text))).bits_per_symbol(tail, context=head)
    assert out["held_out_bits"] == pytest.approx(expect, rel=1e-12)
    whole = MarkovChain.fit(list(text), 1).bits_per_symbol(tail, context=head)
    assert out["held_out_bits"] > whole + 1.0  # the tail is surprising to a chain that never saw it
