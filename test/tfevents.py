"""Reads TensorBoard event files with Python's standard library only: an independent check of flowtensor's
writer (its own CRC32C and protobuf decoding, nothing shared with the JavaScript side).

    python3 tfevents.py DIR   ->  one JSON object on stdout: every event file under DIR, its events

A record whose length or data CRC does not match is an error (exit 1). Bytes at the end of a file too
few to make a whole record are reported as `truncated_tail` (what a kill during a write would leave),
not an error: TensorBoard's own reader stops there the same way.
"""
import json
import os
import struct
import sys

# CRC32C (Castagnoli), reflected polynomial 0x82F63B78, bytewise table
_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _TABLE.append(_c)


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked_crc(data):
    c = crc32c(data)
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


assert crc32c(b'123456789') == 0xE3069283, 'CRC32C check value'


def varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def fields(buf):
    """(field number, wire type, value) of one protobuf message; lengths are checked."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(buf, i)
        elif wt == 1:
            v = buf[i:i + 8]
            i += 8
        elif wt == 2:
            n, i = varint(buf, i)
            v = buf[i:i + n]
            i += n
        elif wt == 5:
            v = buf[i:i + 4]
            i += 4
        else:
            raise ValueError('unsupported wire type %d' % wt)
        if i > len(buf):
            raise ValueError('field %d runs past the end of its message' % num)
        yield num, wt, v


def decode_event(buf):
    """Event: wall_time 1 (double), step 2 (int64), file_version 3, summary 5, session_log 6."""
    ev = {}
    for num, wt, v in fields(buf):
        if num == 1 and wt == 1:
            ev['wall_time'] = struct.unpack('<d', v)[0]
        elif num == 2 and wt == 0:
            ev['step'] = v - (1 << 64) if v >= 1 << 63 else v
        elif num == 3 and wt == 2:
            ev['file_version'] = v.decode('utf-8')
        elif num == 5 and wt == 2:
            values = []
            for n2, w2, val in fields(v):  # Summary.value = 1
                if n2 != 1 or w2 != 2:
                    continue
                item = {}
                for n3, w3, x in fields(val):  # Value: tag 1, simple_value 2 (float)
                    if n3 == 1 and w3 == 2:
                        item['tag'] = x.decode('utf-8')
                    elif n3 == 2 and w3 == 5:
                        item['simple_value'] = struct.unpack('<f', x)[0]
                values.append(item)
            ev['summary'] = values
        elif num == 6 and wt == 2:
            status = 0
            for n2, w2, x in fields(v):
                if n2 == 1 and w2 == 0:
                    status = x
            ev['session_log'] = {'status': status}
    return ev


def read_file(path):
    with open(path, 'rb') as f:
        data = f.read()
    events = []
    i = 0
    truncated = 0
    while i < len(data):
        if len(data) - i < 12:
            truncated = len(data) - i
            break
        header = data[i:i + 8]
        (n,) = struct.unpack('<Q', header)
        (hcrc,) = struct.unpack('<I', data[i + 8:i + 12])
        if hcrc != masked_crc(header):
            raise ValueError('%s: record at byte %d: length CRC does not match' % (path, i))
        if len(data) - i < 16 + n:
            truncated = len(data) - i
            break
        body = data[i + 12:i + 12 + n]
        (dcrc,) = struct.unpack('<I', data[i + 12 + n:i + 16 + n])
        if dcrc != masked_crc(body):
            raise ValueError('%s: record at byte %d: data CRC does not match' % (path, i))
        events.append(decode_event(body))
        i += 16 + n
    return {'events': events, 'truncated_tail': truncated, 'bytes': len(data)}


def main():
    root = sys.argv[1]
    out = {}
    for d, _, files in os.walk(root):
        for name in sorted(files):
            if 'tfevents' in name:
                p = os.path.join(d, name)
                out[os.path.relpath(p, root)] = read_file(p)
    json.dump(out, sys.stdout)


if __name__ == '__main__':
    try:
        main()
    except ValueError as e:
        print(e, file=sys.stderr)
        sys.exit(1)
