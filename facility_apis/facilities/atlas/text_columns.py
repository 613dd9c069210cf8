"""Columns of a whitespace-separated text table, read with numpy, exactly as ``float()`` reads them.

``read_table`` is the fast path of the ATLAS result parser: a file of 100,000 rows is read in
large blocks of bytes with a few dozen array operations each, and no Python object per value. It
reads only a *regular* table — ASCII, every non-blank line a row of exactly ``width`` values, no
``#`` after the header, no control character but tab, ``\\n`` and ``\\r`` — on a little-endian
machine, and answers ``None`` for anything else, so the caller can take its row-by-row path,
which knows every irregular case (and the errors to raise).

Numbers are exact: a token of at most 15 characters made of an optional sign, 1 to 14 digits and at
most one ``.`` is the integer of its digits divided by a power of ten, both exactly representable as
doubles, so the one rounding of the division is the correctly rounded value — the very double
``float()`` returns (Clinger's fast path). ``NaN`` is read as NaN. Any other token (``1e5``,
``inf``, ``-``, ``null``, a longer number) is read with ``float()`` itself, one at a time; a token
``float()`` refuses reads as NaN.
"""

from __future__ import annotations

import re
import sys

import numpy as np

#: Bytes of text read per block: big enough that numpy's per-call cost vanishes, small enough that
#: the block's working arrays stay in the CPU cache and add little to the parse's memory.
BLOCK = 1 << 19
_U = np.uint64
_ONES = _U(0x0101010101010101)
_POW10 = 10.0 ** np.arange(16)  # exact doubles
_NAN_WORD = _U(0x4E614E)  # the bytes "NaN" as a little-endian word
_SIGNED = np.zeros(256, np.uint64)  # by first byte: 1 for a sign
_SIGNED[[ord("-"), ord("+")]] = 1
_SIGN = np.ones(256)  # by first byte: the factor of the value
_SIGN[ord("-")] = -1.0
_PAD = b" " * 16
_TOKEN = re.compile(rb"\S+")


def read_table(
    text: str, start: int, width: int, numeric: list[int], label: int, labels: tuple[str, ...]
) -> tuple[list[np.ndarray], np.ndarray, dict[str, int]] | None:
    """The rows of ``text[start:]``, each of ``width`` whitespace-separated values.

    Returns ``(numbers, codes, other)``: ``numbers`` holds one float64 array per column of
    ``numeric`` (in that order), its values in the rows' order (a value ``float()`` refuses is NaN);
    ``codes`` (uint8, one per row) is the index in ``labels`` (one character each) of the row's
    value in column ``label``, or ``len(labels)`` for any other value, counted by value in
    ``other``. ``None`` when the text is not a regular table (see the module docstring).
    """
    if not text.isascii() or sys.byteorder != "little":  # the words are read as little-endian integers
        return None
    blocks: list[np.ndarray] = []
    codes: list[np.ndarray] = []
    other: dict[str, int] = {}
    position, end_of_text = start, len(text)
    while position < end_of_text:
        end = text.find("\n", position + BLOCK)
        end = end_of_text if end < 0 else end + 1
        block = _read_block(text[position:end].encode("ascii"), width, numeric, label, labels, other)
        if block is None:
            return None
        blocks.append(block[0])
        codes.append(block[1])
        position = end
    numbers = [np.concatenate([block[column] for block in blocks]) if blocks else np.empty(0) for column in range(len(numeric))]
    return numbers, np.concatenate(codes) if codes else np.empty(0, np.uint8), other


def _read_block(raw: bytes, width: int, numeric: list[int], label: int, labels: tuple[str, ...], other: dict[str, int]) -> tuple[np.ndarray, np.ndarray] | None:
    """``read_table`` on one block of whole lines (``raw``): the ``numeric`` columns (one row
    each) and the codes; ``None`` when the block is not regular."""
    if b"#" in raw:
        return None
    data = np.frombuffer(_PAD + raw + _PAD, np.uint8)  # the padding: every 16-byte window fits
    line_ends = data == 10
    if b"\r" in raw:
        line_ends |= data == 13
    breaks = np.flatnonzero(line_ends)
    tabs = np.count_nonzero(data == 9) if b"\t" in raw else 0
    if np.count_nonzero(data < 32) != len(breaks) + tabs:
        return None  # a control character str.split() or str.splitlines() reads otherwise
    solid = data > 32
    starts = np.flatnonzero(solid[1:] > solid[:-1]) + 1  # where each value begins
    if len(starts) % width:
        return None
    rows = starts.reshape(-1, width)
    if not _one_row_a_line(np.append(breaks, len(data)), rows):
        return None
    windows = np.ndarray((len(data) - 7,), dtype="<u8", buffer=data, strides=(1,))  # 8 bytes from each offset
    numbers = np.empty((len(numeric), len(rows)))
    if len(rows):
        # Columns whose first value fills 8 bytes are read two words a value, the others one (a
        # longer value in those is read by float(), like any the fast path does not read).
        long = ((windows[rows[0, numeric]].view(np.uint8) <= 32).view(_U) == 0).tolist()
        for count in (1, 2):
            group = [index for index, is_long in enumerate(long) if is_long == (count == 2)]
            if group:
                at = rows.T[[numeric[index] for index in group]]  # (columns, rows): where each value begins
                numbers[group] = _read_numbers(data, windows, at, count)
    return numbers, _codes(data, rows[:, label], labels, other)


def _read_numbers(data: np.ndarray, windows: np.ndarray, at: np.ndarray, count: int) -> np.ndarray:
    """The values beginning at the offsets ``at`` of ``data``, read ``count`` 8-byte words a value
    by the fast path, or else by ``float()``."""
    words = windows[at.ravel()] if count == 1 else windows[np.concatenate((at.ravel(), at.ravel() + 8))]
    values, unread = _parse(words.reshape(count, -1))
    values = values.reshape(at.shape)
    for column, row in zip(*np.nonzero(unread.reshape(at.shape)), strict=True):
        values[column, row] = _number(_TOKEN.match(data, at[column, row]).group())
    return values


def _one_row_a_line(breaks: np.ndarray, rows: np.ndarray) -> bool:
    """Whether each row of value starts lies on a line of its own (no line holds more or fewer
    values); ``breaks`` are the offsets of the line breaks, and of the end."""
    line = np.searchsorted(breaks, rows[:, 0])  # the break ending each row's line
    return bool((breaks[line] > rows[:, -1]).all() and (line[1:] > line[:-1]).all())


def _codes(data: np.ndarray, at: np.ndarray, labels: tuple[str, ...], other: dict[str, int]) -> np.ndarray:
    """The index in ``labels`` (one-character labels) of the value at each of ``at``, else
    ``len(labels)``, the other values counted in ``other``."""
    single = data[at + 1] <= 32
    first = data[at]
    codes = np.full(len(at), len(labels), np.uint8)
    for index, name in enumerate(labels):
        codes[single & (first == ord(name))] = index
    for position in at[codes == len(labels)]:
        value = _TOKEN.match(data, position).group().decode("ascii")
        other[value] = other.get(value, 0) + 1
    return codes


def _number(token: bytes) -> float:
    try:
        return float(token)
    except ValueError:
        return float("nan")


def _parse(words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values of the tokens whose first ``8 * len(words)`` bytes are ``words`` (little-endian; a
    token ends at the first byte ≤ space), and which tokens are not of the fast path's form (True;
    their value is then meaningless). ``NaN`` reads as NaN."""
    count = len(words)
    chars = words.view(np.uint8)
    space = (chars <= 32).view(_U)
    inside = ((space & -space) - _U(1)) & _ONES  # 0x01 in each byte before the first space
    for index in range(1, count):
        inside[index] *= inside[index - 1] == _ONES
    digits_of = chars - np.uint8(48)  # a digit's value; other bytes wrap to 10 and more
    digit = (digits_of < 10).view(_U) & inside
    dot = (chars == 46).view(_U) & inside
    before = ((dot & -dot) - _U(1)) & _ONES  # 0x01 in each byte before the dot
    for index in range(1, count):
        before[index] *= before[index - 1] == _ONES
    # per token, in 4-bit fields: digits, dots, length, bytes before the dot (16 without a dot)
    fields = (((digit + (dot << _U(4))) * _ONES) >> _U(56)) + ((((inside + (before << _U(4))) * _ONES) >> _U(56)) << _U(8))
    fields = fields.sum(axis=0) if count > 1 else fields[0]
    digits, dots, length, dot_at = fields & _U(15), (fields >> _U(4)) & _U(15), (fields >> _U(8)) & _U(15), fields >> _U(12)
    first = words[0].astype(np.uint8)  # the first byte
    readable = (digits + dots + _SIGNED.take(first) == length) & (dots <= _U(1)) & (digits - _U(1) < _U(14)) & (inside[-1] != _ONES)
    # the digits as one integer (the dot and the sign as zero digits), 8 digits a word at a time
    value = digits_of.view(_U) & (digit * _U(255))
    value = (value * _U(10) + (value >> _U(8))) & _U(0x00FF00FF00FF00FF)
    value = (value * _U(100) + (value >> _U(16))) & _U(0x0000FFFF0000FFFF)
    value = ((value * _U(10000) + (value >> _U(32))) & _U(0x00000000FFFFFFFF)).astype(np.float64)
    # right-aligned: a token without a dot gets one appended, so every token has one; all exact
    span = (length + _U(1) - dots).astype(np.intp)
    if count == 1:
        whole = value[0] / _POW10.take((8 - span) & 15)
    else:  # the first word's part is scaled up or down (one of the two powers is 1)
        whole = value[0] * _POW10.take(np.maximum(span - 8, 0) & 15) / _POW10.take(np.maximum(8 - span, 0) & 15)
        whole += value[1] / _POW10.take((16 - span) & 15)
    scale = _POW10.take(((length - _U(1) - dot_at) * dots).astype(np.intp) & 15)  # 10 ** digits after the dot
    fraction = whole / scale
    np.floor(fraction, out=fraction)
    fraction *= scale
    np.subtract(whole, fraction, out=fraction)  # the digits after the dot, exactly
    whole -= fraction
    whole /= 10  # drops the dot's zero
    whole += fraction
    whole /= scale  # the one rounding
    whole *= _SIGN.take(first)
    unread = ~readable
    others = np.flatnonzero(unread)
    nan = others[((words[0, others] & _U(0xFFFFFF)) == _NAN_WORD) & (length[others] == _U(3))]
    whole[nan] = np.nan
    unread[nan] = False
    return whole, unread
