"""Which sequence a reply is given: the rules of Slots.choose, on sequences with known contents."""

from __future__ import annotations

from typing import Any

from app.core.inference.slots import Slot, Slots, common_prefix


class _NoMemory:
    """llama_cpp as far as Slots.choose needs it (choosing touches no KV cache)."""

    def llama_get_memory(self, ctx: Any) -> None:
        return None


def _slots(*held: list[int]) -> Slots:
    slots = Slots(_NoMemory(), None, len(held))
    for slot, tokens in zip(slots.all, held, strict=True):
        slot.tokens = list(tokens)
        slot.last_used = float(slot.seq_id)  # sequence 0 unused longest
    return slots


def _seq(slot: Slot | None) -> int:
    assert slot is not None
    return slot.seq_id


CHAT = list(range(100))  # a conversation's tokens
OTHER = [7] * 3 + list(range(500, 560))  # another, sharing three template tokens with CHAT


def test_common_prefix() -> None:
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix([], [1]) == 0 and common_prefix([1, 2], [1, 2]) == 2


def test_a_grown_conversation_gets_the_sequence_holding_it() -> None:
    slots = _slots(OTHER, CHAT, [])
    assert _seq(slots.choose([*CHAT, 1, 2, 3])) == 1


def test_the_conversation_key_wins_over_a_longer_shared_start() -> None:
    slots = _slots(CHAT, CHAT[:50])
    slots.all[1].key = "conversation:a"
    assert _seq(slots.choose(CHAT, key="conversation:a")) == 1
    assert _seq(slots.choose(CHAT, key="conversation:b")) == 0


def test_a_short_shared_start_does_not_take_another_conversation_while_one_is_empty() -> None:
    slots = _slots(CHAT, [])
    assert _seq(slots.choose(CHAT[:3] + list(range(900, 960)))) == 1


def test_the_same_prompt_again_takes_its_sequence_when_none_is_empty() -> None:
    prompt = CHAT[:30]  # CHAT holds this prompt and a 70-token reply
    assert _seq(_slots(OTHER, [], CHAT).choose(prompt)) == 1, "an empty one keeps CHAT's reply"
    assert _seq(_slots(OTHER, CHAT).choose(prompt)) == 1, "none empty: only the old reply is dropped"


def test_with_nothing_shared_and_none_empty_the_one_unused_longest_is_taken() -> None:
    slots = _slots(OTHER, CHAT)
    assert _seq(slots.choose(list(range(900, 960)))) == 0
    slots.all[0].last_used = 5.0
    assert _seq(slots.choose(list(range(900, 960)))) == 1


def test_busy_sequences_are_never_chosen() -> None:
    slots = _slots(CHAT, [])
    slots.take(slots.all[1])
    assert _seq(slots.choose([*CHAT, 1])) == 0
    slots.take(slots.all[0])
    assert slots.choose(CHAT) is None and slots.free == 0
    slots.release(slots.all[1])
    assert slots.free == 1


def test_a_new_conversation_with_a_key_takes_an_empty_sequence_not_one_sharing_its_start() -> None:
    slots = _slots(CHAT, [])
    slots.all[0].key = "conversation:a"
    assert _seq(slots.choose([*CHAT[:90], 1, 2], key="conversation:b")) == 1


def test_a_new_conversation_with_a_key_and_none_empty_takes_the_one_unused_longest() -> None:
    slots = _slots(OTHER, CHAT)  # CHAT shares most of the prompt, OTHER was used longest ago
    assert _seq(slots.choose([*CHAT[:90], 1, 2], key="conversation:b")) == 0


def test_a_long_shared_start_held_elsewhere_is_offered_for_copying() -> None:
    slots = _slots(CHAT, OTHER, [])
    empty = slots.all[2]
    assert slots.donor(empty, [*CHAT[:80], 1]) is slots.all[0]
    assert slots.donor(empty, [*CHAT[:20], 1]) is None, "too short to be worth a copy"
    slots.take(slots.all[0])
    assert slots.donor(empty, [*CHAT[:80], 1]) is slots.all[0], "a busy sequence can be copied from"
    assert slots.donor(slots.all[0], [*CHAT[:80], 1]) is None, "it holds that start itself"


class _WindowMemory(_NoMemory):
    """llama_cpp as far as Slots.reuse needs it, for a sequence whose oldest cell is `pos_min`."""

    def __init__(self, pos_min: int) -> None:
        self.pos_min = pos_min
        self.removed: list[tuple[int, int, int]] = []

    def llama_memory_seq_rm(self, memory: Any, seq: int, p0: int, p1: int) -> bool:
        self.removed.append((seq, p0, p1))
        return True

    def llama_memory_seq_pos_min(self, memory: Any, seq: int) -> int:
        return self.pos_min


def test_a_sliding_window_cache_cut_back_too_far_is_read_again() -> None:
    # A model attending to the last 32 positions; the sequence holds 100 tokens, of which the
    # window cache kept positions 68 and on.
    fake = _WindowMemory(pos_min=68)
    slots = Slots(fake, None, 1, n_swa=32)
    slot = slots.all[0]
    slot.tokens = list(CHAT)
    assert slots.reuse(slot, [*CHAT, 1]) == 100, "nothing cut: the window is whole"
    slot.tokens = list(CHAT)
    assert slots.reuse(slot, [*CHAT[:90], 1]) == 0, "cut to 90: positions 58-67 are gone, read it all"
    assert slot.tokens == [] and fake.removed[-1] == (0, -1, -1)
    fake.pos_min = 0
    slot.tokens = list(CHAT)
    assert slots.reuse(slot, [*CHAT[:90], 1]) == 90, "a window that still reaches back is kept"
    assert slots.reuse(slot, [*CHAT[:90], 1]) == 90
