"""One policy for text that must not act on the terminal (mlpstorage/terminal.py), in its two
views: a child's live output as a terminal would leave it, and recorded strings escaped."""

import pytest

from mlpstorage.terminal import harmless, visible_block

# Each acts on a terminal rather than being shown: escape, bell, backspace, a C1 CSI, and the
# bidirectional overrides and isolates that reorder what follows (Trojan Source).
UNSAFE = ["\x1b", "\x07", "\x08", "\x9b", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067",
          "\u2068", "\u2069"]


@pytest.mark.parametrize("char", UNSAFE, ids=[f"U+{ord(c):04X}" for c in UNSAFE])
def test_both_views_keep_no_character_that_acts_on_the_terminal(char):
    text = f"file{char}name.txt"
    assert char not in visible_block([text])
    assert char not in harmless(text) and harmless(text).startswith("file\\")


def test_a_bidi_override_in_a_childs_output_is_dropped_and_the_text_kept():
    assert visible_block(["user \u202eexe.txt\u202c ok"]) == "user exe.txt ok"


def test_colours_stay_in_both_views():
    assert visible_block(["\x1b[31mred\x1b[0m"]) == "\x1b[31mred\x1b[0m"
    assert harmless("\x1b[31mred") == "\x1b[31mred\x1b[0m"  # and never leak past the text


def test_plain_text_passes_both_views_unchanged():
    text = "epoch 1/3 step 4/8 \u00e9t\u00e9 \u6570\u636e\ttab"
    assert visible_block([text]) == text and harmless(text) == text
