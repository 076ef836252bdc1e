#!/usr/bin/env python3
"""torch.save's file format, written and read with Python's own pickle and
zipfile (no torch here): the other side that checkpoint/torch_file.h is tested
against (tests/checkpoint/test_torch_file.cpp).

  torch_format.py write OUT.pth   writes a state dict as torch.save does and
                                  prints the expected tensors as JSON
  torch_format.py read FILE.pth   reads a state dict as torch.load does and
                                  prints its tensors and zip entries as JSON
  torch_format.py evil OUT.pth    a pickle that calls os.system (must be refused)
  torch_format.py broken OUT.pth KIND
                                  a damaged file: no_pickle, missing_storage,
                                  short_storage, strided, truncated_pickle,
                                  unknown_storage, big_endian

Tensors in the JSON: {name: {"dtype", "shape", "values"}}; values as floats.

torch.save pickles (protocol 2) an OrderedDict of tensors; each tensor
reduces to torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
requires_grad, backward_hooks), and each storage is a persistent id
('storage', torch.<Type>Storage, key, 'cpu', numel) whose bytes are the zip
record <archive>/data/<key>. Fake torch modules stand in for the real ones,
so the pickle names exactly the globals torch's does.
"""
import collections
import io
import json
import pickle
import struct
import sys
import types
import zipfile

# ------------------------------------------------------------ fake torch
torch = types.ModuleType("torch")
torch_utils = types.ModuleType("torch._utils")
sys.modules["torch"] = torch
sys.modules["torch._utils"] = torch_utils
torch._utils = torch_utils

# struct format and element size of each storage type
STORAGE_FORMATS = {"FloatStorage": "f", "DoubleStorage": "d", "HalfStorage": "e", "BFloat16Storage": "H",
                   "IntStorage": "i", "LongStorage": "q"}
DTYPES = {"FloatStorage": "f32", "DoubleStorage": "f64", "HalfStorage": "f16", "BFloat16Storage": "bf16",
          "IntStorage": "i32", "LongStorage": "i64"}

for _name in STORAGE_FORMATS:
    _cls = type(_name, (), {"__module__": "torch"})
    setattr(torch, _name, _cls)


class Storage:
    """Raw elements of one storage type, pickled as a persistent id."""

    def __init__(self, type_name, key, raw):
        self.type_name, self.key, self.raw = type_name, key, raw

    def numel(self):
        return len(self.raw) // struct.calcsize("<" + STORAGE_FORMATS[self.type_name])


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks, metadata=None):
    return Tensor(storage, offset, size, stride)


def _rebuild_parameter(data, requires_grad, hooks):
    return data


for _f in (_rebuild_tensor_v2, _rebuild_parameter):
    _f.__module__ = "torch._utils"
    setattr(torch_utils, _f.__name__, _f)


class Tensor:
    def __init__(self, storage, offset, size, stride, parameter=False):
        self.storage, self.offset, self.size, self.stride, self.parameter = storage, offset, tuple(size), tuple(stride), parameter

    def __reduce_ex__(self, protocol):
        plain = (torch_utils._rebuild_tensor_v2, (self.storage, self.offset, self.size, self.stride, False,
                                                  collections.OrderedDict()))
        if self.parameter:  # how torch pickles nn.Parameter
            return (torch_utils._rebuild_parameter, (Tensor(self.storage, self.offset, self.size, self.stride), True,
                                                     collections.OrderedDict()))
        return plain

    def values(self):
        fmt = STORAGE_FORMATS[self.storage.type_name]
        n = 1
        for d in self.size:
            n *= d
        all_values = struct.unpack("<%d%s" % (self.storage.numel(), fmt), self.storage.raw)
        out = list(all_values[self.offset:self.offset + n])
        if self.storage.type_name == "BFloat16Storage":
            out = [struct.unpack("<f", struct.pack("<I", b << 16))[0] for b in out]
        return [float(v) for v in out]


def contiguous(size):
    stride, s = [], 1
    for d in reversed(size):
        stride.append(s)
        s *= d
    return tuple(reversed(stride))


class StatePickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", getattr(torch, obj.type_name), obj.key, "cpu", obj.numel())
        return None


def describe(tensors):
    return {name: {"dtype": DTYPES[t.storage.type_name], "shape": list(t.size), "values": t.values()}
            for name, t in tensors.items() if isinstance(t, Tensor)}


# ------------------------------------------------------------ commands
def write(path, damage=None):
    def pack(fmt, values):
        return struct.pack("<%d%s" % (len(values), fmt), *values)

    shared = Storage("FloatStorage", "0", pack("f", [0.5, -1.25, 3.0, 4.5, -6.0, 7.75]))
    bf16_bits = [0x3f80, 0xc000, 0x4049, 0x0000]          # 1, -2, 3.140625, 0
    half = Storage("HalfStorage", "2", pack("e", [1.5, -0.0001, 65504.0, 2.0 ** -24]))  # incl. a subnormal
    state = collections.OrderedDict()
    state["emb.weight"] = Tensor(shared, 0, (2, 3), (3, 1))
    state["view.of.emb"] = Tensor(shared, 2, (1, 3), (3, 1))       # the same storage, at element 2
    state["bf16.vec"] = Tensor(Storage("BFloat16Storage", "1", pack("H", bf16_bits)), 0, (4,), (1,))
    state["half.vec"] = Tensor(half, 0, (4,), (1,))
    state["mix"] = Tensor(Storage("DoubleStorage", "3", pack("d", [0.1, 0.2, 0.3])), 0, (1, 1, 3), (3, 3, 1))
    state["param"] = Tensor(Storage("FloatStorage", "4", pack("f", [9.0, 8.0])), 0, (2,), (1,), parameter=True)
    state["step"] = 1234  # not a tensor: skipped by a state-dict reader
    state._metadata = collections.OrderedDict([("", {"version": 1})])  # as nn.Module.state_dict sets it
    if damage == "strided":
        state["emb.weight"] = Tensor(shared, 0, (2, 3), (1, 2))  # a transpose's strides
    if damage == "unknown_storage":
        setattr(torch, "ComplexFloatStorage", type("ComplexFloatStorage", (), {"__module__": "torch"}))
        STORAGE_FORMATS["ComplexFloatStorage"] = "f"
        state["param"] = Tensor(Storage("ComplexFloatStorage", "4", pack("f", [9.0, 8.0])), 0, (2,), (1,))
    buffer = io.BytesIO()
    StatePickler(buffer, protocol=2).dump(state)
    storages = {t.storage.key: t.storage for t in state.values() if isinstance(t, Tensor)}
    pkl = buffer.getvalue()
    if damage == "truncated_pickle":
        pkl = pkl[:len(pkl) // 2]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        if damage != "no_pickle":
            z.writestr("fixture/data.pkl", pkl)
        z.writestr("fixture/byteorder", "big" if damage == "big_endian" else "little")
        for key, s in sorted(storages.items()):
            if damage == "missing_storage" and key == "3":
                continue
            z.writestr("fixture/data/" + key, s.raw[:-2] if damage == "short_storage" and key == "1" else s.raw)
        z.writestr("fixture/version", "3\n")
    if damage is None:
        print(json.dumps(describe(state)))


class StateUnpickler(pickle.Unpickler):
    def __init__(self, file, archive, prefix):
        super().__init__(file)
        self.archive, self.prefix = archive, prefix

    def persistent_load(self, pid):
        kind, cls, key, location, numel = pid
        assert kind == "storage" and location == "cpu", pid
        raw = self.archive.read(self.prefix + "data/" + key)
        storage = Storage(cls.__name__, key, raw)
        assert storage.numel() == numel, (key, storage.numel(), numel)
        return storage

    def find_class(self, module, name):
        # torch.load(weights_only=True) allows exactly these.
        allowed = {("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2")}
        allowed |= {("torch", n) for n in STORAGE_FORMATS}
        if (module, name) not in allowed:
            raise pickle.UnpicklingError("global %s.%s is not allowed" % (module, name))
        return super().find_class(module, name)


def read(path):
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        prefix = names[0].split("/")[0] + "/"  # torch takes the archive folder from the first record
        assert names[0] == prefix + "data.pkl", names
        state = StateUnpickler(io.BytesIO(z.read(prefix + "data.pkl")), z, prefix).load()
        assert isinstance(state, collections.OrderedDict), type(state)
        out = {"tensors": describe(state), "order": list(state.keys()), "entries": names,
               "stored": all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist()),
               "version": z.read(prefix + "version").decode(), "byteorder": z.read(prefix + "byteorder").decode()}
        for name, t in state.items():
            assert t.stride == contiguous(t.size), (name, t.stride)
    print(json.dumps(out))


def evil(path):
    class Run:
        def __reduce__(self):
            import os
            return (os.system, ("echo pwned",))

    with zipfile.ZipFile(path, "w") as z:
        z.writestr("evil/data.pkl", pickle.dumps(collections.OrderedDict([("x", Run())]), protocol=2))
        z.writestr("evil/version", "3\n")


if __name__ == "__main__":
    {"write": write, "read": read, "evil": evil, "broken": write}[sys.argv[1]](*sys.argv[2:])
