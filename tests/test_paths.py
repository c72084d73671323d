"""File names from input data: one safe component, never outside its folder."""

from __future__ import annotations

import os

import pytest

from landsight.errors import LandsightError, UnsafePathError
from landsight.paths import MAX_NAME_CHARS, child_path, safe_name


@pytest.mark.parametrize(("text", "expected"), [
    ("..", "__"),
    (".", "_"),
    ("...", "___"),
    (".hidden", "_hidden"),
    ("/abs", "_abs"),
    ("/etc/passwd", "_etc_passwd"),
    ("a/../../b", "a_.._.._b"),
    ("a\\..\\b", "a_.._b"),
    ("", "unnamed"),
    ("nul\0byte", "nul_byte"),
    ("scene 1?x=*[a]", "scene_1_x_a_"),
    ("Zürich-Γ_1.v2", "Zürich-Γ_1.v2"),
    ("Zu\u0308rich", "Zürich"),  # decomposed umlaut -> one composed character (NFC)
    ("\udcff", "_"),  # an undecodable byte from os.fsdecode
])
def test_safe_name(text, expected, tmp_path):
    name = safe_name(text)
    assert name == expected
    assert child_path(tmp_path, name).parent == tmp_path  # every result is usable as a child


def test_safe_name_fallback_and_length():
    assert safe_name("", fallback="raster") == "raster"
    long_a, long_b = "a" * 300, "a" * 299 + "b"
    assert len(safe_name(long_a)) == MAX_NAME_CHARS
    assert safe_name(long_a) != safe_name(long_b)  # cut names keep a hash of the whole text
    assert len(safe_name("é" * 300).encode()) <= 255


@pytest.mark.parametrize("name", ["", ".", "..", "/abs", "a/b", "../x", "a\\b", "nul\0", "a/../../b"])
def test_child_path_refuses_anything_but_a_plain_name(name, tmp_path):
    with pytest.raises(UnsafePathError, match="refusing the file name") as info:
        child_path(tmp_path, name)
    assert isinstance(info.value, LandsightError) and repr(name) in str(info.value)


def test_child_path_refuses_a_link_out_of_the_folder(tmp_path):
    outside, folder = tmp_path / "outside", tmp_path / "out"
    outside.mkdir(), folder.mkdir()
    os.symlink(outside, folder / "spill")
    with pytest.raises(UnsafePathError, match="outside"):
        child_path(folder, "spill")
    assert child_path(folder, "x.tif") == folder / "x.tif"
