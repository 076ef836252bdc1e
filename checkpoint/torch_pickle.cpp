#include "checkpoint/torch_pickle.h"

#include <cstring>
#include <map>
#include <memory>
#include <utility>

#include "core/error.h"

namespace rwkv::checkpoint {
namespace {

// ---------------------------------------------------------------- values

struct Value;
using ValuePtr = std::shared_ptr<Value>;

// What the pickle machine's stack holds. Lists, tuples and dicts are shared:
// the memo and the stack refer to the same object, which SETITEMS and
// APPENDS fill after it was memoised.
struct Value {
  enum class Kind { None, Bool, Int, Float, String, Tuple, List, Dict, Global, Storage, Tensor };
  Kind kind = Kind::None;
  int64_t integer = 0;
  double real = 0;
  std::string text;                                // String; Global: "module.name"
  std::vector<ValuePtr> items;                     // Tuple, List
  std::vector<std::pair<ValuePtr, ValuePtr>> dict; // Dict, in insertion order
  TorchTensorRecord tensor;                        // Storage (key, type, numel) and Tensor
};

ValuePtr make(Value::Kind kind) {
  auto v = std::make_shared<Value>();
  v->kind = kind;
  return v;
}

const char* kind_name(Value::Kind k) {
  switch (k) {
    case Value::Kind::None: return "None";
    case Value::Kind::Bool: return "bool";
    case Value::Kind::Int: return "int";
    case Value::Kind::Float: return "float";
    case Value::Kind::String: return "str";
    case Value::Kind::Tuple: return "tuple";
    case Value::Kind::List: return "list";
    case Value::Kind::Dict: return "dict";
    case Value::Kind::Global: return "global";
    case Value::Kind::Storage: return "storage";
    case Value::Kind::Tensor: return "tensor";
  }
  return "?";
}

// ---------------------------------------------------------------- reader

class Unpickler {
 public:
  Unpickler(const std::string& bytes, std::string origin) : in_(bytes), origin_(std::move(origin)) {}

  ValuePtr run() {
    for (;;) {
      const size_t at = pos_;
      const uint8_t op = u8();
      switch (op) {
        case 0x80: u8(); break;                                    // PROTO n
        case 0x95: take(8); break;                                 // FRAME (protocol 4)
        case '.': return stop(at);                                 // STOP
        case '(': marks_.push_back(stack_.size()); break;          // MARK
        case 'N': push(make(Value::Kind::None)); break;            // NONE
        case 0x88: push(boolean(true)); break;                     // NEWTRUE
        case 0x89: push(boolean(false)); break;                    // NEWFALSE
        case 'K': push(integer(u8())); break;                      // BININT1
        case 'M': push(integer(uint_le(2))); break;                // BININT2
        case 'J': push(integer(static_cast<int32_t>(uint_le(4)))); break;  // BININT
        case 0x8a: push(integer(long1(at))); break;                // LONG1
        case 'G': push(real()); break;                             // BINFLOAT
        case 'X': push(string(uint_le(4))); break;                 // BINUNICODE
        case 0x8c: push(string(u8())); break;                      // SHORT_BINUNICODE
        case 'T': push(string(uint_le(4))); break;                 // BINSTRING
        case 'U': push(string(u8())); break;                       // SHORT_BINSTRING
        case ')': push(make(Value::Kind::Tuple)); break;           // EMPTY_TUPLE
        case ']': push(make(Value::Kind::List)); break;            // EMPTY_LIST
        case '}': push(make(Value::Kind::Dict)); break;            // EMPTY_DICT
        case 't': push(tuple(pop_mark(at))); break;                // TUPLE
        case 0x85: push(tuple(pop_n(1, at))); break;               // TUPLE1
        case 0x86: push(tuple(pop_n(2, at))); break;               // TUPLE2
        case 0x87: push(tuple(pop_n(3, at))); break;               // TUPLE3
        case 'l': {                                                // LIST
          ValuePtr list = make(Value::Kind::List);
          list->items = pop_mark(at);
          push(list);
          break;
        }
        case 'a': {                                                // APPEND
          ValuePtr item = pop(at);
          expect(top(at), Value::Kind::List, at, "APPEND")->items.push_back(item);
          break;
        }
        case 'e': {                                                // APPENDS
          std::vector<ValuePtr> items = pop_mark(at);
          ValuePtr list = expect(top(at), Value::Kind::List, at, "APPENDS");
          list->items.insert(list->items.end(), items.begin(), items.end());
          break;
        }
        case 's': {                                                // SETITEM
          ValuePtr value = pop(at), key = pop(at);
          expect(top(at), Value::Kind::Dict, at, "SETITEM")->dict.emplace_back(key, value);
          break;
        }
        case 'u': {                                                // SETITEMS
          std::vector<ValuePtr> kv = pop_mark(at);
          RWKV_CHECK(kv.size() % 2 == 0, where(at), "SETITEMS with an odd number of items");
          ValuePtr dict = expect(top(at), Value::Kind::Dict, at, "SETITEMS");
          for (size_t i = 0; i < kv.size(); i += 2) dict->dict.emplace_back(kv[i], kv[i + 1]);
          break;
        }
        case 'q': memo_[u8()] = top(at); break;                    // BINPUT
        case 'r': memo_[uint_le(4)] = top(at); break;              // LONG_BINPUT
        case 0x94: memo_[memo_.size()] = top(at); break;           // MEMOIZE
        case 'h': push(memo(u8(), at)); break;                     // BINGET
        case 'j': push(memo(uint_le(4), at)); break;               // LONG_BINGET
        case 'c': {                                                // GLOBAL "module\nname\n"
          const std::string module = line(at), name = line(at);
          push(global(module + "." + name));
          break;
        }
        case 0x93: {                                               // STACK_GLOBAL
          ValuePtr name = pop(at), module = pop(at);
          push(global(expect(module, Value::Kind::String, at, "STACK_GLOBAL")->text + "." +
                      expect(name, Value::Kind::String, at, "STACK_GLOBAL")->text));
          break;
        }
        case 'Q': push(persistent(pop(at), at)); break;            // BINPERSID
        case 'R': {                                                // REDUCE
          ValuePtr args = pop(at), callable = pop(at);
          push(call(callable, expect(args, Value::Kind::Tuple, at, "REDUCE")->items, at));
          break;
        }
        case 'b': {                                                // BUILD: an object's __dict__
          pop(at);  // OrderedDict._metadata, a Parameter's state: nothing a tensor needs
          top(at);
          break;
        }
        case '0': pop(at); break;                                  // POP
        default:
          throw Error(str_cat(where(at), "pickle opcode 0x", hex(op),
                              " is not one torch.save writes for a state dict\n  ---> HINT: save the model with "
                              "torch.save(model.state_dict(), path), or convert it to safetensors"));
      }
    }
  }

 private:
  std::string where(size_t at) const { return str_cat(origin_, ": data.pkl byte ", at, ": "); }
  static std::string hex(uint8_t b) {
    const char* digits = "0123456789abcdef";
    return std::string{digits[b >> 4], digits[b & 15]};
  }

  const char* take(size_t n) {
    RWKV_CHECK(n <= in_.size() - pos_, origin_, ": data.pkl ends inside an opcode at byte ", pos_,
               " (", in_.size(), " bytes)\n  ---> HINT: the file is truncated or damaged");
    const char* p = in_.data() + pos_;
    pos_ += n;
    return p;
  }
  uint8_t u8() { return static_cast<uint8_t>(*take(1)); }
  uint64_t uint_le(size_t n) {
    const char* p = take(n);
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(p[i])) << (8 * i);
    return v;
  }
  int64_t long1(size_t at) {
    const size_t n = u8();
    RWKV_CHECK(n <= 8, where(at), "an integer of ", n, " bytes does not fit 64 bits");
    if (n == 0) return 0;
    uint64_t v = uint_le(n);
    if (n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t{0} << (8 * n);  // two's complement sign
    return static_cast<int64_t>(v);
  }
  std::string line(size_t at) {
    const size_t end = in_.find('\n', pos_);
    RWKV_CHECK(end != std::string::npos, where(at), "GLOBAL without its newline");
    std::string s = in_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return s;
  }

  static ValuePtr boolean(bool b) {
    ValuePtr v = make(Value::Kind::Bool);
    v->integer = b;
    return v;
  }
  static ValuePtr integer(int64_t i) {
    ValuePtr v = make(Value::Kind::Int);
    v->integer = i;
    return v;
  }
  ValuePtr real() {
    const uint64_t bits = [&] {  // big-endian IEEE double
      const char* p = take(8);
      uint64_t b = 0;
      for (int i = 0; i < 8; ++i) b = b << 8 | static_cast<uint8_t>(p[i]);
      return b;
    }();
    ValuePtr v = make(Value::Kind::Float);
    std::memcpy(&v->real, &bits, sizeof bits);
    return v;
  }
  ValuePtr string(uint64_t n) {
    ValuePtr v = make(Value::Kind::String);
    v->text.assign(take(n), n);
    return v;
  }
  static ValuePtr tuple(std::vector<ValuePtr> items) {
    ValuePtr v = make(Value::Kind::Tuple);
    v->items = std::move(items);
    return v;
  }
  static ValuePtr global(std::string name) {
    ValuePtr v = make(Value::Kind::Global);
    v->text = std::move(name);
    return v;
  }

  void push(ValuePtr v) { stack_.push_back(std::move(v)); }
  ValuePtr top(size_t at) const {
    RWKV_CHECK(stack_.size() > (marks_.empty() ? 0 : marks_.back()), where(at), "the stack is empty");
    return stack_.back();
  }
  ValuePtr pop(size_t at) {
    ValuePtr v = top(at);
    stack_.pop_back();
    return v;
  }
  std::vector<ValuePtr> pop_n(size_t n, size_t at) {
    RWKV_CHECK(stack_.size() >= n + (marks_.empty() ? 0 : marks_.back()), where(at), "fewer than ", n,
               " values on the stack");
    std::vector<ValuePtr> out(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
    stack_.resize(stack_.size() - n);
    return out;
  }
  std::vector<ValuePtr> pop_mark(size_t at) {
    RWKV_CHECK(!marks_.empty(), where(at), "no MARK to pop to");
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<ValuePtr> out(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return out;
  }
  ValuePtr memo(uint64_t key, size_t at) const {
    const auto it = memo_.find(key);
    RWKV_CHECK(it != memo_.end(), where(at), "memo entry ", key, " was never stored");
    return it->second;
  }
  ValuePtr expect(const ValuePtr& v, Value::Kind kind, size_t at, const char* op) const {
    RWKV_CHECK(v->kind == kind, where(at), op, " expects a ", kind_name(kind), ", got a ", kind_name(v->kind));
    return v;
  }
  int64_t int_arg(const std::vector<ValuePtr>& args, size_t i, size_t at, const char* what) const {
    RWKV_CHECK(i < args.size() && args[i]->kind == Value::Kind::Int, where(at), what, " is not an integer");
    return args[i]->integer;
  }
  std::vector<int64_t> int_tuple(const ValuePtr& v, size_t at, const char* what) const {
    RWKV_CHECK(v->kind == Value::Kind::Tuple, where(at), what, " is a ", kind_name(v->kind), ", expected a tuple");
    std::vector<int64_t> out;
    for (const ValuePtr& item : v->items) {
      RWKV_CHECK(item->kind == Value::Kind::Int, where(at), what, " holds a ", kind_name(item->kind));
      out.push_back(item->integer);
    }
    return out;
  }

  // ('storage', torch.<Type>Storage, key, location, numel)
  ValuePtr persistent(const ValuePtr& id, size_t at) {
    RWKV_CHECK(id->kind == Value::Kind::Tuple && id->items.size() == 5 && id->items[0]->kind == Value::Kind::String &&
                   id->items[0]->text == "storage" && id->items[1]->kind == Value::Kind::Global &&
                   id->items[2]->kind == Value::Kind::String && id->items[4]->kind == Value::Kind::Int,
               where(at), "a persistent id that is not ('storage', type, key, location, numel)");
    const std::string& type = id->items[1]->text;
    RWKV_CHECK(type.rfind("torch.", 0) == 0, where(at), "storage type ", type, " is not torch's");
    ValuePtr v = make(Value::Kind::Storage);
    v->tensor.storage_type = type.substr(6);
    torch_storage_type(v->tensor.storage_type, origin_);  // known, or a clear error now
    v->tensor.storage_key = id->items[2]->text;
    v->tensor.storage_numel = id->items[4]->integer;
    RWKV_CHECK(v->tensor.storage_numel >= 0, where(at), "storage ", v->tensor.storage_key, " has ",
               v->tensor.storage_numel, " elements");
    return v;
  }

  // The only calls a state dict makes; anything else is refused, not run.
  ValuePtr call(const ValuePtr& callable, const std::vector<ValuePtr>& args, size_t at) {
    RWKV_CHECK(callable->kind == Value::Kind::Global, where(at), "REDUCE calls a ", kind_name(callable->kind));
    const std::string& f = callable->text;
    if (f == "collections.OrderedDict" && args.empty()) return make(Value::Kind::Dict);
    if (f == "torch._utils._rebuild_tensor_v2" && args.size() >= 4) {
      RWKV_CHECK(args[0]->kind == Value::Kind::Storage, where(at), "_rebuild_tensor_v2 without a storage");
      ValuePtr t = make(Value::Kind::Tensor);
      t->tensor = args[0]->tensor;
      t->tensor.storage_offset = int_arg(args, 1, at, "the storage offset");
      t->tensor.shape = int_tuple(args[2], at, "the size");
      t->tensor.stride = int_tuple(args[3], at, "the stride");
      return t;
    }
    if ((f == "torch._utils._rebuild_parameter" || f == "torch._utils._rebuild_parameter_with_state") &&
        !args.empty() && args[0]->kind == Value::Kind::Tensor)
      return args[0];
    throw Error(str_cat(where(at), "the pickle calls ", f, " (", args.size(),
                        " arguments), which a state dict of tensors never does; not running it\n  ---> HINT: "
                        "save only tensors: torch.save(model.state_dict(), path)"));
  }

  ValuePtr stop(size_t at) {
    RWKV_CHECK(marks_.empty() && stack_.size() == 1, where(at), "STOP with ", stack_.size(), " values and ",
               marks_.size(), " marks left");
    return stack_.back();
  }

  const std::string& in_;
  std::string origin_;
  size_t pos_ = 0;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::map<uint64_t, ValuePtr> memo_;
};

const Value* dict_entry(const Value& dict, const std::string& key) {
  for (const auto& [k, v] : dict.dict)
    if (k->kind == Value::Kind::String && k->text == key) return v.get();
  return nullptr;
}

// ---------------------------------------------------------------- writer

class Pickler {
 public:
  void op(char c) { out_ += c; }
  void global(const std::string& module, const std::string& name) {
    op('c');
    out_ += module + "\n" + name + "\n";
  }
  void string(const std::string& s) {
    op('X');
    le(s.size(), 4);
    out_ += s;
  }
  void integer(int64_t v) {
    if (v >= 0 && v < 256) {
      op('K');
      le(static_cast<uint64_t>(v), 1);
    } else if (v >= 0 && v < 65536) {
      op('M');
      le(static_cast<uint64_t>(v), 2);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      op('J');
      le(static_cast<uint32_t>(v), 4);
    } else {
      op(static_cast<char>(0x8a));  // LONG1: 8 bytes, two's complement
      le(8, 1);
      le(static_cast<uint64_t>(v), 8);
    }
  }
  void int_tuple(const std::vector<int64_t>& values) {
    op('(');
    for (int64_t v : values) integer(v);
    op('t');
  }
  std::string take() { return std::move(out_); }

 private:
  void le(uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out_ += static_cast<char>((v >> (8 * i)) & 0xff);
  }
  std::string out_;
};

}  // namespace

TorchStorageType torch_storage_type(const std::string& name, const std::string& origin) {
  if (name == "FloatStorage") return {DType::F32, false, 4};
  if (name == "BFloat16Storage") return {DType::BF16, false, 2};
  if (name == "HalfStorage") return {DType::F32, true, 2};
  if (name == "DoubleStorage") return {DType::F64, false, 8};
  if (name == "IntStorage") return {DType::I32, false, 4};
  if (name == "LongStorage") return {DType::I64, false, 8};
  throw Error(str_cat(origin, ": tensors of torch.", name, " are not supported (float, bfloat16, half, double, "
                      "int32, int64 are)\n  ---> HINT: convert the weights to float or bfloat16 before saving"));
}

std::string torch_storage_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "FloatStorage";
    case DType::BF16: return "BFloat16Storage";
    case DType::F64: return "DoubleStorage";
    case DType::I32: return "IntStorage";
    case DType::I64: return "LongStorage";
    case DType::U16: break;
  }
  throw Error(str_cat("torch_storage_name: torch has no storage for ", dtype_name(dtype)));
}

std::vector<TorchTensorRecord> read_torch_state_dict(const std::string& pickle, const std::string& origin) {
  const ValuePtr root = Unpickler(pickle, origin).run();
  RWKV_CHECK(root->kind == Value::Kind::Dict, origin, ": the pickle holds a ", kind_name(root->kind),
             ", not a state dict\n  ---> HINT: save with torch.save(model.state_dict(), path)");
  const Value* dict = root.get();
  bool any_tensor = false;
  for (const auto& kv : dict->dict) any_tensor = any_tensor || kv.second->kind == Value::Kind::Tensor;
  for (const char* wrapper : {"state_dict", "model", "module"}) {
    if (any_tensor) break;
    const Value* inner = dict_entry(*root, wrapper);
    if (inner && inner->kind == Value::Kind::Dict) dict = inner, any_tensor = true;
  }
  std::vector<TorchTensorRecord> out;
  for (const auto& [key, value] : dict->dict) {
    if (value->kind != Value::Kind::Tensor) continue;  // e.g. a step counter beside the tensors
    RWKV_CHECK(key->kind == Value::Kind::String, origin, ": a tensor under a ", kind_name(key->kind),
               " key; a state dict's keys are names");
    out.push_back(value->tensor);
    out.back().name = key->text;
  }
  RWKV_CHECK(!out.empty(), origin, ": the state dict holds no tensors");
  return out;
}

std::string write_torch_state_dict(const std::vector<TorchTensorRecord>& tensors) {
  Pickler p;
  p.op(static_cast<char>(0x80));  // PROTO 2
  p.op(2);
  p.global("collections", "OrderedDict");
  p.op(')');
  p.op('R');
  p.op('(');
  for (const TorchTensorRecord& t : tensors) {
    p.string(t.name);
    p.global("torch._utils", "_rebuild_tensor_v2");
    p.op('(');
    p.op('(');  // the persistent id
    p.string("storage");
    p.global("torch", t.storage_type);
    p.string(t.storage_key);
    p.string("cpu");
    p.integer(t.storage_numel);
    p.op('t');
    p.op('Q');
    p.integer(t.storage_offset);
    p.int_tuple(t.shape);
    p.int_tuple(t.stride);
    p.op(static_cast<char>(0x89));  // requires_grad False
    p.global("collections", "OrderedDict");  // backward_hooks: OrderedDict()
    p.op(')');
    p.op('R');
    p.op('t');
    p.op('R');
  }
  p.op('u');
  p.op('.');
  return p.take();
}

}  // namespace rwkv::checkpoint
