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


def test_second_order_and_smoothing_sums_to_one():
    text = list("the cat sat on the mat")
    m = MarkovChain.fit(text, order=2)
    assert m.count(list("th"), "e") == 2
    p = m.next_distribution(list("th"), smoothed=True)
    assert abs(p.sum() - 1) < 1e-12 and (p > 0).all() and p.argmax() == m.index["e"]
    assert not m.next_distribution(list("zz" if "z" in m.index else "tt")).any()


def test_log_likelihood_matches_formula():
    text = list("aab" * 20)
    m = MarkovChain.fit(text, order=1, beta=2.0)
    held = list("ab")
    ll = m.log2_likelihood(held, context=text)
    V, n = 2, len(text)
    p0 = lambda x: (text.count(x) + 1) / (n + V)
    n_aa = sum(1 for i in range(n - 1) if text[i:i + 2] == ["a", "a"])
    n_ab = sum(1 for i in range(n - 1) if text[i:i + 2] == ["a", "b"])
    n_ba = sum(1 for i in range(n - 1) if text[i:i + 2] == ["b", "a"])
    n_b = n_ba  # 'b' as a context: followed by something
    expect_a = (n_ba + 2 * p0("a")) / (n_b + 2)  # context 'b' (last of text) -> 'a'
    expect_b = (n_ab + 2 * p0("b")) / (n_aa + n_ab + 2)
    np.testing.assert_allclose(2.0 ** ll, [expect_a, expect_b])
    assert m.bits_per_symbol(held, text) == pytest.approx(-ll.mean())


def test_sampling_follows_transitions_and_is_seeded():
    m = MarkovChain.fit(list("abcabcabc"), order=1)
    assert "".join(m.sample(7, ["a"], seed=1)) == "abcabcab"
    m2 = MarkovChain.fit(list("abacadaeafag" * 10), order=1)
    s = m2.sample(500, ["a"], seed=0)
    assert s == m2.sample(500, ["a"], seed=0) and s != m2.sample(500, ["a"], seed=1)
    assert all(s[i] == "a" for i in range(0, 500, 2))  # every non-'a' is followed by 'a'
    with pytest.raises(SeqjaxError, match="not in the chain's alphabet"):
        m.sample(3, ["z"])


def test_word_chain_and_unknown_words():
    syms = symbols_of("The cat. The dog.", "word")
    assert syms == ["the", "cat", ".", "the", "dog", "."]
    m = MarkovChain.fit(syms, order=1, unk=True)
    assert np.isfinite(m.log2_likelihood(["the", "zebra"], context=syms)).all()
    with pytest.raises(SeqjaxError, match="--unit"):
        symbols_of("x", "byte")
    with pytest.raises(SeqjaxError, match="needs more than 3"):
        MarkovChain.fit(list("ab"), order=3)


def test_cli_counts_on_the_whole_text_and_scores_the_held_out_tail(tmp_path, capsys):
    """The lab's counts cover the whole text; the held-out score comes from a chain that never
    saw the tail (here 'ab' occurs only in the last 10 %)."""
    from seqjax import cli, configs

    text = "xyz j" * 180 + "abab" * 25  # 1000 chars; the last 100 hold every 'a' -> 'b'
    path = tmp_path / "t.txt"
    path.write_text(text)
    out = cli.run_markov(configs.MarkovConfig(text=str(path), sample=5, start="x"))
    assert out["count_a_b"] == 50  # all 50 'a' -> 'b' of the tail; a head-only chain counts 0
    assert "transitions 'a' -> 'b': 50" in capsys.readouterr().out
    head, tail = list(text[:900]), list(text[900:])
    expect = MarkovChain.fit(head, 1, alphabet=sorted(set(text))).bits_per_symbol(tail, context=head)
    assert out["held_out_bits"] == pytest.approx(expect, rel=1e-12)
    whole = MarkovChain.fit(list(text), 1).bits_per_symbol(tail, context=head)
    assert out["held_out_bits"] > whole + 1.0  # the tail is surprising to a chain that never saw it
