"""One colour per state, everywhere a state is drawn (timelines, the card, training plots), so a reader
learns them once: grey for silence, amber for standby, teal for response."""

from __future__ import annotations

from streamo_data.core.align import State

STATE_HEX: dict[State, str] = {
    State.SILENCE: "#c9ced6",
    State.STANDBY: "#f0a030",
    State.RESPONSE: "#1f8a7a",
}
BLANK_HEX = "#f4f5f7"  # a frame cell without a picture (no video given, or it could not be decoded)


def rgb(hex_colour: str) -> tuple[int, int, int]:
    value = hex_colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


STATE_RGB: dict[State, tuple[int, int, int]] = {state: rgb(colour) for state, colour in STATE_HEX.items()}
