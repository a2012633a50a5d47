"""pyrunc/linux/criu.py's protobuf encoding, held to bytes worked out by hand from the
wire format (a varint key `field << 3 | wire type`, then a varint or a length and bytes)
and to rpc.proto's field numbers; and a round trip through CRIU itself where criu is
installed (its VERSION request needs no kernel support)."""

import shutil

import pytest

from pyrunc.linux import criu


def test_a_varint_field():
    # field 2 (pid), varint: key 0x10; 300 = 0b10_0101100 -> 0xAC 0x02
    assert criu.encode({"pid": 300}, criu.OPTS) == b"\x10\xac\x02"


def test_a_bool_and_a_string():
    # leave_running (3) true: 0x18 0x01; log_file (10), length-delimited: key 0x52
    assert criu.encode({"leave_running": True, "log_file": "dump.log"}, criu.OPTS) == b"\x18\x01\x52\x08dump.log"


def test_a_negative_int32_takes_ten_bytes():
    assert criu.encode({"images_dir_fd": -1}, criu.OPTS) == b"\x08" + b"\xff" * 9 + b"\x01"


def test_repeated_nested_messages():
    raw = criu.encode({"ext_mnt": [{"key": "/a", "val": "/b"}, {"key": "/c", "val": "/d"}]}, criu.OPTS)
    one = b"\x0a\x02/a\x12\x02/b"  # key (1) and val (2), strings
    two = b"\x0a\x02/c\x12\x02/d"
    # ext_mnt is field 23: key 23 << 3 | 2 = 186, a two-byte varint 0xBA 0x01
    assert raw == b"\xba\x01" + bytes([len(one)]) + one + b"\xba\x01" + bytes([len(two)]) + two


def test_none_is_left_out():
    assert criu.encode({"pid": None, "root": None}, criu.OPTS) == b""


def test_an_unknown_field_is_an_error_not_silence():
    with pytest.raises(KeyError):
        criu.encode({"leave_runing": True}, criu.OPTS)


def test_a_request_wraps_its_options():
    raw = criu.encode({"type": criu.DUMP, "opts": {"pid": 7}}, criu.REQ)
    assert raw == b"\x08\x01\x12\x02\x10\x07"


def test_a_response_decodes():
    # type DUMP, success false, cr_errno 1 (field 7), cr_errmsg "no" (field 9)
    data = b"\x08\x01\x10\x00\x38\x01\x4a\x02no"
    assert criu.decode(data, criu.RESP) == {"type": 1, "success": False, "cr_errno": 1, "cr_errmsg": "no"}


def test_a_notification_decodes_with_unknown_fields_skipped():
    note = b"\x0a\x0cpost-restore\x10\xd2\x09"  # script, pid 1234
    data = b"\x08\x06\x10\x01" + b"\x2a" + bytes([len(note)]) + note + b"\xf8\x01\x05"  # + field 31 varint
    resp = criu.decode(data, criu.RESP)
    assert resp["notify"] == {"script": "post-restore", "pid": 1234}
    assert resp["type"] == criu.NOTIFY


def test_a_negative_errno_decodes():
    data = b"\x08\x02\x10\x00\x38" + b"\xfe" + b"\xff" * 8 + b"\x01"
    assert criu.decode(data, criu.RESP)["cr_errno"] == -2


def test_truncated_data_is_a_protocol_error():
    with pytest.raises(criu.ProtocolError):
        criu.decode(b"\x4a\x05no", criu.RESP)


def test_encode_then_decode_is_the_identity():
    fields = {"type": criu.RESTORE, "success": True, "restore": {"pid": 42}, "cr_errmsg": "x"}
    assert criu.decode(criu.encode(fields, criu.RESP), criu.RESP) == fields


@pytest.mark.skipif(shutil.which("criu") is None, reason="no criu installed")
def test_criu_answers_a_version_request():
    major, minor, _ = criu.version(shutil.which("criu"))
    assert (major, minor) >= (3, 0)
