#!/usr/bin/python3
"""Sluice message code generator.

Reads every protocol/schema/*.schema file (format: protocol/README.md) and
writes, into OUT_DIR/protocol/messages/:
  <snake_name>.h / <snake_name>.cc   one struct per message with encode/decode
  api_keys.h                         ApiInfo registry and header-version rules
and, into OUT_DIR/protocol/tests/:
  roundtrip_test_<k>.cc              GoogleTest round-trip/truncation tests

Standard library only. Files are rewritten only when their content changes so
that the build does not recompile untouched messages.

Usage: generate.py SCHEMA_DIR OUT_DIR [--stamp FILE] [--list-outputs]
"""
import os
import re
import sys

TEST_CHUNKS = 4

PRIMS = {
    "int8": ("int8_t", 1),
    "int16": ("int16_t", 2),
    "int32": ("int32_t", 4),
    "int64": ("int64_t", 8),
    "uint16": ("uint16_t", 2),
    "uint32": ("uint32_t", 4),
    "float64": ("double", 8),
    "bool": ("bool", 1),
    "uuid": ("Uuid", 16),
}

CPP_KEYWORDS = set("""
alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t
char32_t class compl concept const consteval constexpr constinit const_cast continue co_await
co_return co_yield decltype default delete do double dynamic_cast else enum explicit export extern
false float for friend goto if inline int long mutable namespace new noexcept not not_eq nullptr
operator or or_eq private protected public register reinterpret_cast requires return short signed
sizeof static static_assert static_cast struct switch template this thread_local throw true try
typedef typeid typename union unsigned using virtual void volatile wchar_t while xor xor_eq
""".split())


class SchemaError(Exception):
    pass


# --------------------------------------------------------------------------- versions

class Versions:
    """A closed range lo..hi (hi None = open ended), or empty."""

    def __init__(self, text):
        text = text.strip()
        self.text = text
        if text == "none":
            self.lo, self.hi, self.empty = 0, -1, True
            return
        self.empty = False
        m = re.fullmatch(r"(\d+)\+", text)
        if m:
            self.lo, self.hi = int(m.group(1)), None
            return
        m = re.fullmatch(r"(\d+)-(\d+)", text)
        if m:
            self.lo, self.hi = int(m.group(1)), int(m.group(2))
            return
        m = re.fullmatch(r"(\d+)", text)
        if m:
            self.lo = self.hi = int(m.group(1))
            return
        raise SchemaError("bad version range %r" % text)

    def contains(self, v):
        return not self.empty and v >= self.lo and (self.hi is None or v <= self.hi)


def cond(rng, ctx, var="version"):
    """C++ condition for `var in rng`, simplified for var known to be in ctx
    (a list of possible versions). Returns "true", "false" or an expression."""
    return cond_set([v for v in ctx if rng.contains(v)], ctx, var)


def cond_set(inside, ctx, var="version"):
    """C++ condition for `var in inside` (a subset of ctx), knowing var is in ctx."""
    inside = sorted(set(inside))
    if not inside:
        return "false"
    if len(inside) == len(set(ctx)):
        return "true"
    # split into contiguous runs
    runs = []
    for v in inside:
        if runs and runs[-1][1] == v - 1:
            runs[-1][1] = v
        else:
            runs.append([v, v])
    lo_ctx, hi_ctx = min(ctx), max(ctx)
    exprs = []
    for a, b in runs:
        parts = []
        if a == b and a > lo_ctx and b < hi_ctx:
            parts.append("%s == %d" % (var, a))
        else:
            if a > lo_ctx:
                parts.append("%s >= %d" % (var, a))
            if b < hi_ctx:
                parts.append("%s <= %d" % (var, b))
        exprs.append(" && ".join(parts) if parts else "true")
    if len(exprs) == 1:
        return exprs[0]
    return " || ".join("(%s)" % e for e in exprs)


def c_and(a, b):
    if a == "false" or b == "false":
        return "false"
    if a == "true":
        return b
    if b == "true":
        return a
    return "(%s) && (%s)" % (a, b)


def c_not(a):
    if a == "true":
        return "false"
    if a == "false":
        return "true"
    return "!(%s)" % a


def branch(c, then_lines, else_lines, ind):
    """Emit if/else, collapsing constant conditions."""
    if c == "true":
        return then_lines
    if c == "false":
        return else_lines
    out = ["%sif (%s) {" % (ind, c)]
    out += ["  " + l for l in then_lines]
    if else_lines:
        out.append("%s} else {" % ind)
        out += ["  " + l for l in else_lines]
    out.append("%s}" % ind)
    return out


def guard(c, lines, ind):
    if c == "false":
        return []
    if c == "true":
        return lines
    return ["%sif (%s) {" % (ind, c)] + ["  " + l for l in lines] + ["%s}" % ind]


# --------------------------------------------------------------------------- model

def snake(name):
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
    s = s.lower()
    if s in CPP_KEYWORDS:
        s += "_"
    return s


class Field:
    def __init__(self, name, type_, versions, attrs, lineno):
        self.name = name
        self.type = type_
        self.versions = Versions(versions)
        self.nullable = Versions(attrs.pop("nullable", "none"))
        self.tagged = Versions(attrs.pop("tagged", "none"))
        tag = attrs.pop("tag", None)
        self.tag = int(tag) if tag is not None else None
        fl = attrs.pop("flexible", None)
        self.flexible = Versions(fl) if fl is not None else None
        self.default = attrs.pop("default", None)
        if attrs:
            raise SchemaError("line %d: unknown attributes %s" % (lineno, sorted(attrs)))
        if (self.tag is None) != self.tagged.empty:
            raise SchemaError("line %d: tag and tagged= must come together" % lineno)
        self.children = None  # list of Field when this field defines a struct
        self.cpp = snake(name)
        self.lineno = lineno

    @property
    def is_array(self):
        return self.type.startswith("[]")

    @property
    def base(self):
        return self.type[2:] if self.is_array else self.type

    @property
    def base_is_struct(self):
        b = self.base
        return b not in PRIMS and b not in ("string", "bytes", "records")

    @property
    def any_nullable(self):
        return not self.nullable.empty


class Struct:
    def __init__(self, name, fields, versions):
        self.name = name
        self.fields = fields
        self.versions = versions  # list of ints where it may appear
        self.structs = []  # nested struct definitions (Struct), in order


class Message:
    def __init__(self):
        self.kind = None
        self.name = None
        self.api_key = None
        self.versions = None
        self.flexible = None
        self.unstable = False
        self.fields = []
        self.common = []  # list of (name, versions, fields)
        self.file = None

    @property
    def version_list(self):
        return list(range(self.versions.lo, self.versions.hi + 1))

    @property
    def first_flexible(self):
        if self.flexible.empty:
            return -1
        return max(self.flexible.lo, self.versions.lo) if self.flexible.hi is None else self.flexible.lo


def tokenize(line):
    toks, cur, q = [], "", False
    i = 0
    while i < len(line):
        c = line[i]
        if q:
            if c == "\\" and i + 1 < len(line):
                cur += c + line[i + 1]
                i += 2
                continue
            cur += c
            if c == '"':
                q = False
        elif c == '"':
            cur += c
            q = True
        elif c.isspace():
            if cur:
                toks.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    if q:
        raise SchemaError("unterminated quote")
    if cur:
        toks.append(cur)
    return toks


def parse_attrs(toks, lineno):
    attrs, flags = {}, set()
    for t in toks:
        if "=" in t:
            k, v = t.split("=", 1)
            attrs[k] = v
        else:
            flags.add(t)
    return attrs, flags


def parse_schema(path):
    msg = Message()
    msg.file = path
    stack = []  # (indent, children-list)
    top_target = None
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    for lineno, raw in enumerate(lines, 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        stripped = raw.lstrip(" ")
        indent_spaces = len(raw) - len(stripped)
        if indent_spaces % 2:
            raise SchemaError("%s:%d: indentation must be a multiple of 2" % (path, lineno))
        indent = indent_spaces // 2
        toks = tokenize(stripped)
        try:
            if indent == 0:
                if msg.name is None:
                    if len(toks) < 2 or toks[0] not in ("request", "response", "header", "data"):
                        raise SchemaError("first line must be '<request|response|header|data> Name ...'")
                    msg.kind, msg.name = toks[0], toks[1]
                    attrs, flags = parse_attrs(toks[2:], lineno)
                    if "api" in attrs:
                        msg.api_key = int(attrs.pop("api"))
                    msg.versions = Versions(attrs.pop("versions"))
                    msg.flexible = Versions(attrs.pop("flexible", "none"))
                    msg.unstable = "latest-unstable" in flags
                    flags.discard("latest-unstable")
                    if attrs or flags:
                        raise SchemaError("unknown message attributes %s" % sorted(set(attrs) | flags))
                    if msg.versions.hi is None:
                        raise SchemaError("message versions must be a closed range")
                    top_target = msg.fields
                    stack = [(0, msg.fields)]
                elif toks[0] == "struct":
                    fields = []
                    msg.common.append((toks[1], Versions(toks[2] if len(toks) > 2 else "0+"), fields))
                    stack = [(0, fields)]
                else:
                    raise SchemaError("unexpected top-level line")
                continue
            # a field line at depth `indent` belongs to the children list at stack[indent-1]
            while stack and stack[-1][0] >= indent:
                stack.pop()
            if not stack or stack[-1][0] != indent - 1:
                raise SchemaError("bad indentation")
            if len(toks) < 3:
                raise SchemaError("field line needs: Name type versions [attrs]")
            attrs, flags = parse_attrs(toks[3:], lineno)
            if flags:
                raise SchemaError("unknown flags %s" % sorted(flags))
            f = Field(toks[0], toks[1], toks[2], attrs, lineno)
            stack[-1][1].append(f)
            f.children = []
            stack.append((indent, f.children))
        except (SchemaError, ValueError, KeyError, IndexError) as e:
            raise SchemaError("%s:%d: %s" % (path, lineno, e))
    if msg.name is None:
        raise SchemaError("%s: empty schema" % path)

    def fix(fields):
        for f in fields:
            if not f.children:
                f.children = None
            else:
                fix(f.children)
    fix(msg.fields)
    for _, _, fs in msg.common:
        fix(fs)
    return msg


# --------------------------------------------------------------------------- C++ emission helpers

def cpp_string_literal(s):
    out = '"'
    for ch in s:
        o = ord(ch)
        if ch in '"\\':
            out += "\\" + ch
        elif 32 <= o < 127:
            out += ch
        else:
            out += "\\x%02x\"\"" % o
    return out + '"'


def parse_json_string(v):
    import json
    return json.loads(v)


class Gen:
    def __init__(self, msg):
        self.msg = msg
        self.vers = msg.version_list
        self.struct_defs = {}  # name -> fields
        for name, _, fields in msg.common:
            self.struct_defs[name] = fields
        self.collect(msg.fields)

    def collect(self, fields):
        for f in fields:
            if f.base_is_struct:
                if f.children is not None:
                    if f.base in self.struct_defs and self.struct_defs[f.base] is not f.children:
                        raise SchemaError("%s: struct %s defined twice" % (self.msg.file, f.base))
                    self.struct_defs[f.base] = f.children
                    self.collect(f.children)
            elif f.children is not None:
                raise SchemaError("%s:%d: non-struct field has children" % (self.msg.file, f.lineno))
        for f in fields:
            if f.base_is_struct and f.base not in self.struct_defs:
                raise SchemaError("%s:%d: unknown struct type %s" % (self.msg.file, f.lineno, f.base))

    # -- types
    def elem_cpp(self, f):
        b = f.base
        if b in PRIMS:
            return PRIMS[b][0]
        if b in ("string", "bytes"):
            return "std::string"
        if b == "records":
            raise SchemaError("records arrays unsupported")
        return b

    def cpp_type(self, f):
        if f.is_array:
            t = "std::vector<%s>" % self.elem_cpp(f)
            return "std::optional<%s>" % t if f.any_nullable else t
        b = f.base
        if b in PRIMS:
            return PRIMS[b][0]
        if b in ("string", "bytes"):
            return "std::optional<std::string>" if f.any_nullable else "std::string"
        if b == "records":
            return "std::optional<Records>"
        if f.any_nullable:
            # Kafka's nullable struct: an int8 marker (-1 null, 1 present) before the struct.
            return "std::optional<%s>" % b
        return b

    def default_init(self, f):
        """Initializer expression ('' for value-initialisation)."""
        d = f.default
        if f.is_array:
            if d == "null":
                if not f.any_nullable:
                    raise SchemaError("%s:%d: null default on non-nullable array" % (self.msg.file, f.lineno))
                return "std::nullopt"
            return ""  # empty vector (engaged optional if nullable)
        b = f.base
        if b in PRIMS:
            ctype = PRIMS[b][0]
            if b == "bool":
                return "true" if d == "true" else ("false" if d in (None, "false") else self.bad_default(f))
            if b == "uuid":
                return ""
            if b == "float64":
                return repr(float(d)) if d is not None else "0.0"
            val = int(d, 0) if d is not None else 0
            bits = {"int8_t": 8, "int16_t": 16, "int32_t": 32, "int64_t": 64, "uint16_t": 16, "uint32_t": 32}[ctype]
            signed = not ctype.startswith("u")
            lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
            if not lo <= val <= hi:
                self.bad_default(f)
            if signed and val == lo:
                return "static_cast<%s>(%dLL - 1)" % (ctype, lo + 1)
            suffix = "LL" if bits == 64 else ""
            if not signed:
                suffix = "u"
            return "%d%s" % (val, suffix)
        if b in ("string", "bytes"):
            if d == "null":
                if not f.any_nullable:
                    self.bad_default(f)
                return "std::nullopt"
            s = parse_json_string(d) if d is not None else ""
            if f.any_nullable:
                return "std::string(%s)" % cpp_string_literal(s)
            return cpp_string_literal(s) if s else ""
        if b == "records":
            return "std::nullopt"
        if f.any_nullable:  # a struct
            if d == "null":
                return "std::nullopt"
            if d is not None:
                self.bad_default(f)
            return "%s{}" % b
        if d is not None:
            self.bad_default(f)
        return ""

    def bad_default(self, f):
        raise SchemaError("%s:%d: bad default %r" % (self.msg.file, f.lineno, f.default))

    def default_value(self, f):
        init = self.default_init(f)
        t = self.cpp_type(f)
        return "%s{%s}" % (t, init) if init else "%s{}" % t

    # -- version contexts
    def present(self, f, ctx):
        return [v for v in ctx if f.versions.contains(v)]

    def flex_cond(self, ctx):
        return cond(self.msg.flexible, ctx)

    def field_flex(self, f, ctx):
        c = self.flex_cond(ctx)
        if f.flexible is not None:
            c = c_and(c, cond(f.flexible, ctx))
        return c

    # -- min encoded sizes (for array-count bounds)
    def min_size_field(self, f, v):
        flex = self.msg.flexible.contains(v) and (f.flexible is None or f.flexible.contains(v))
        if f.is_array:
            return 1 if flex else 4
        b = f.base
        if b in PRIMS:
            return PRIMS[b][1]
        if b == "string":
            return 1 if flex else 2
        if b in ("bytes", "records"):
            return 1 if flex else 4
        if f.any_nullable:
            return 1  # the marker of a null struct
        return self.min_size_struct(self.struct_defs[b], v)

    def min_size_struct(self, fields, v):
        n = 1 if self.msg.flexible.contains(v) else 0
        for f in fields:
            if f.versions.contains(v) and not f.tagged.contains(v):
                n += self.min_size_field(f, v)
        return n

    def min_elem_size(self, f, ctx):
        sizes = []
        for v in ctx:
            flex = self.msg.flexible.contains(v) and (f.flexible is None or f.flexible.contains(v))
            b = f.base
            if b in PRIMS:
                sizes.append(PRIMS[b][1])
            elif b == "string":
                sizes.append(1 if flex else 2)
            elif b == "bytes":
                sizes.append(1 if flex else 4)
            else:
                sizes.append(self.min_size_struct(self.struct_defs[b], v))
        return max(1, min(sizes)) if sizes else 1

    # -- encode
    def enc_value(self, f, expr, w, fl, nl, ctx, ind, depth):
        """Lines writing value `expr` of field f."""
        L = []
        b = f.base
        if f.is_array:
            el = "e%d_" % depth
            body = self.enc_elem(f, el, w, fl, ctx, ind + "  ", depth)
            length = branch(fl, ["%s%s.write_compact_array_length(static_cast<int32_t>(%s.size()));" % (ind, w, "ARR")],
                            ["%s%s.write_array_length(static_cast<int32_t>(%s.size()));" % (ind, w, "ARR")], ind)
            if f.any_nullable:
                arr = "(*%s)" % expr
                null_lines = branch(nl, branch(fl, ["%s%s.write_uvarint(0);" % (ind + "  ", w)],
                                               ["%s%s.write_int32(-1);" % (ind + "  ", w)], ind + "  "),
                                    branch(fl, ["%s%s.write_uvarint(1);" % (ind + "  ", w)],
                                           ["%s%s.write_int32(0);" % (ind + "  ", w)], ind + "  "), ind + "  ")
                L.append("%sif (!%s) {" % (ind, expr))
                L += null_lines
                L.append("%s} else {" % ind)
                L += ["  " + l.replace("ARR", arr) for l in length]
                L.append("%s  for (const auto& %s : %s) {" % (ind, el, arr))
                L += ["  " + l for l in body]
                L.append("%s  }" % ind)
                L.append("%s}" % ind)
            else:
                L += [l.replace("ARR", expr) for l in length]
                L.append("%sfor (const auto& %s : %s) {" % (ind, el, expr))
                L += body
                L.append("%s}" % ind)
            return L
        if b in PRIMS:
            return ["%s%s.write_%s(%s);" % (ind, w, b, expr)]
        if b == "string":
            if f.any_nullable:
                nn = branch(fl, ["%s%s.write_compact_nullable_string(%s);" % (ind, w, expr)],
                            ["%s%s.write_nullable_string(%s);" % (ind, w, expr)], ind)
                sv = "(%s ? std::string_view(*%s) : std::string_view())" % (expr, expr)
                nonnull = branch(fl, ["%s%s.write_compact_string(%s);" % (ind, w, sv)],
                                 ["%s%s.write_string(%s);" % (ind, w, sv)], ind)
                return branch(nl, nn, nonnull, ind)
            return branch(fl, ["%s%s.write_compact_string(%s);" % (ind, w, expr)],
                          ["%s%s.write_string(%s);" % (ind, w, expr)], ind)
        if b in ("bytes", "records"):
            if b == "bytes" and f.any_nullable:
                opt = "(%s ? std::optional<std::string_view>(*%s) : std::nullopt)" % (expr, expr)
                sv = "(%s ? std::string_view(*%s) : std::string_view())" % (expr, expr)
            elif b == "records":
                nonnull = branch(fl, ["%s%s.write_compact_records(%s.value_or(Records()));" % (ind, w, expr)],
                                 ["%s%s.write_records(%s.value_or(Records()));" % (ind, w, expr)], ind)
                nn = branch(fl, ["%s%s.write_compact_nullable_records(%s);" % (ind, w, expr)],
                            ["%s%s.write_nullable_records(%s);" % (ind, w, expr)], ind)
                return branch(nl, nn, nonnull, ind)
            else:
                opt = None
                sv = expr
            nonnull = branch(fl, ["%s%s.write_compact_bytes(%s);" % (ind, w, sv)],
                             ["%s%s.write_bytes(%s);" % (ind, w, sv)], ind)
            if opt is None:
                return nonnull
            nn = branch(fl, ["%s%s.write_compact_nullable_bytes(%s);" % (ind, w, opt)],
                        ["%s%s.write_nullable_bytes(%s);" % (ind, w, opt)], ind)
            return branch(nl, nn, nonnull, ind)
        if f.any_nullable:
            nn = ["%sif (!%s) {" % (ind, expr),
                  "%s  %s.write_int8(-1);" % (ind, w),
                  "%s} else {" % ind,
                  "%s  %s.write_int8(1);" % (ind, w),
                  "%s  %s->encode(%s, version);" % (ind, expr, w),
                  "%s}" % ind]
            # A version where the field cannot be null: an absent value goes as the empty struct.
            nonnull = ["%s%s.value_or(%s{}).encode(%s, version);" % (ind, expr, b, w)]
            return branch(nl, nn, nonnull, ind)
        return ["%s%s.encode(%s, version);" % (ind, expr, w)]

    def enc_elem(self, f, el, w, fl, ctx, ind, depth):
        b = f.base
        if b in PRIMS:
            return ["%s%s.write_%s(%s);" % (ind, w, b, el)]
        if b == "string":
            return branch(fl, ["%s%s.write_compact_string(%s);" % (ind, w, el)],
                          ["%s%s.write_string(%s);" % (ind, w, el)], ind)
        if b == "bytes":
            return branch(fl, ["%s%s.write_compact_bytes(%s);" % (ind, w, el)],
                          ["%s%s.write_bytes(%s);" % (ind, w, el)], ind)
        return ["%s%s.encode(%s, version);" % (ind, el, w)]

    # -- decode
    def dec_value(self, f, target, r, fl, nl, ctx, ind, depth):
        b = f.base
        if f.is_array:
            n = "n%d_" % depth
            ms = self.min_elem_size(f, ctx)
            L = ["%s{" % ind]
            i2 = ind + "  "
            L += branch(fl, ["%sconst int32_t %s = %s.read_compact_array_length(%d);" % (i2, n, r, ms)],
                        ["%sconst int32_t %s = %s.read_array_length(%d);" % (i2, n, r, ms)], i2)
            # `const int32_t` declared in a branch would be scoped; avoid by using a ternary when needed
            if fl not in ("true", "false"):
                L = ["%s{" % ind,
                     "%sconst int32_t %s = (%s) ? %s.read_compact_array_length(%d) : %s.read_array_length(%d);"
                     % (i2, n, fl, r, ms, r, ms)]
            null_lines = []
            if f.any_nullable:
                null_lines = branch(nl, ["%s  %s = std::nullopt;" % (i2, target)],
                                    ["%s  throw DecodeError(\"null array in non-nullable field %s\");" % (i2, f.name)],
                                    i2 + "  ")
            else:
                null_lines = ["%s  throw DecodeError(\"null array in non-nullable field %s\");" % (i2, f.name)]
            L.append("%sif (%s < 0) {" % (i2, n))
            L += null_lines
            L.append("%s} else {" % i2)
            vec = "v%d_" % depth
            if f.any_nullable:
                L.append("%s  auto& %s = %s.emplace();" % (i2, vec, target))
            else:
                L.append("%s  auto& %s = %s;" % (i2, vec, target))
                L.append("%s  %s.clear();" % (i2, vec))
            L.append("%s  %s.reserve(static_cast<size_t>(%s));" % (i2, vec, n))
            L.append("%s  for (int32_t i%d_ = 0; i%d_ < %s; ++i%d_) {" % (i2, depth, depth, n, depth))
            L += self.dec_elem(f, "%s.emplace_back()" % vec, vec, r, fl, ctx, i2 + "    ", depth)
            L.append("%s  }" % i2)
            L.append("%s}" % i2)
            L.append("%s}" % ind)
            return L
        if b in PRIMS:
            return ["%s%s = %s.read_%s();" % (ind, target, r, b)]
        if b == "string":
            if f.any_nullable:
                nn = self.tern(fl, "%s.read_compact_nullable_string()" % r, "%s.read_nullable_string()" % r)
                nonnull = self.tern(fl, "%s.read_compact_string()" % r, "%s.read_string()" % r)
                return branch(nl, ["%s%s = %s;" % (ind, target, nn)], ["%s%s = %s;" % (ind, target, nonnull)], ind)
            return ["%s%s = %s;" % (ind, target, self.tern(fl, "%s.read_compact_string()" % r, "%s.read_string()" % r))]
        if b in ("bytes", "records"):
            nn = self.tern(fl, "%s.read_compact_nullable_bytes()" % r, "%s.read_nullable_bytes()" % r)
            nonnull = self.tern(fl, "%s.read_compact_bytes()" % r, "%s.read_bytes()" % r)
            if b == "records":
                return branch(nl, ["%s%s = %s;" % (ind, target, nn)], ["%s%s = %s;" % (ind, target, nonnull)], ind)
            if f.any_nullable:
                bv = "b%d_" % depth
                nn_lines = ["%s{" % ind,
                            "%s  const auto %s = %s;" % (ind, bv, nn),
                            "%s  if (%s) %s = std::string(*%s); else %s = std::nullopt;" % (ind, bv, target, bv, target),
                            "%s}" % ind]
                return branch(nl, nn_lines, ["%s%s = std::string(%s);" % (ind, target, nonnull)], ind)
            return ["%s%s = std::string(%s);" % (ind, target, nonnull)]
        if f.any_nullable:
            nn = ["%sif (%s.read_int8() < 0) {" % (ind, r),
                  "%s  %s = std::nullopt;" % (ind, target),
                  "%s} else {" % ind,
                  "%s  %s.emplace().decode(%s, version);" % (ind, target, r),
                  "%s}" % ind]
            return branch(nl, nn, ["%s%s.emplace().decode(%s, version);" % (ind, target, r)], ind)
        return ["%s%s.decode(%s, version);" % (ind, target, r)]

    def dec_elem(self, f, slot, vec, r, fl, ctx, ind, depth):
        b = f.base
        if b in PRIMS:
            return ["%s%s.push_back(%s.read_%s());" % (ind, vec, r, b)]
        if b == "string":
            return ["%s%s.push_back(%s);" % (ind, vec, self.tern(fl, "%s.read_compact_string()" % r, "%s.read_string()" % r))]
        if b == "bytes":
            return ["%s%s.emplace_back(%s);" % (ind, vec, self.tern(fl, "%s.read_compact_bytes()" % r, "%s.read_bytes()" % r))]
        return ["%s%s.decode(%s, version);" % (ind, slot, r)]

    @staticmethod
    def tern(c, a, b):
        if c == "true":
            return a
        if c == "false":
            return b
        return "(%s) ? %s : %s" % (c, a, b)

    # -- struct bodies
    def struct_code(self, qual, fields, ctx):
        """Return .cc lines for encode/decode of a struct whose fields are `fields`,
        qualified name `qual`, possible versions `ctx`."""
        flex = self.flex_cond(ctx)
        out = []
        # ---- encode
        out.append("void %s::encode(Writer& w, int16_t version) const {" % qual)
        out.append("  (void)version;")
        tagged_fields = sorted([f for f in fields if any(f.tagged.contains(v) for v in ctx)], key=lambda f: f.tag)
        for f in fields:
            pctx = self.present(f, ctx)
            regular = cond_set([v for v in pctx if not f.tagged.contains(v)], ctx)
            if regular == "false":
                continue
            fl = self.field_flex(f, pctx)
            nl = cond(f.nullable, pctx)
            body = self.enc_value(f, "this->" + f.cpp, "w", fl, nl, pctx, "  ", 0)
            out += guard(regular, body, "  ")
        if flex != "false":
            tl = []
            if tagged_fields:
                tl.append("  uint32_t num_tagged_ = 0;")
                conds = []
                for f in tagged_fields:
                    tc = cond_set([v for v in ctx if f.tagged.contains(v) and f.versions.contains(v)], ctx)
                    nd = "!(this->%s == %s)" % (f.cpp, self.default_value(f))
                    c = c_and(tc, nd)
                    conds.append(c)
                    tl.append("  const bool has_%s_ = %s;" % (f.cpp, c))
                    tl.append("  if (has_%s_) ++num_tagged_;" % f.cpp)
                tl.append("  w.write_uvarint(num_tagged_);")
                for f in tagged_fields:
                    tctx = [v for v in ctx if f.tagged.contains(v) and f.versions.contains(v)]
                    nl = cond(f.nullable, tctx)
                    tl.append("  if (has_%s_) {" % f.cpp)
                    tl.append("    Writer tw_;")
                    tl += self.enc_value(f, "this->" + f.cpp, "tw_", "true", nl, tctx, "    ", 0)
                    tl.append("    w.write_uvarint(%du);" % f.tag)
                    tl.append("    w.write_uvarint(static_cast<uint32_t>(tw_.size()));")
                    tl.append("    w.write_raw(tw_.buffer());")
                    tl.append("  }")
            else:
                tl.append("  w.write_uvarint(0);")
            if flex == "true":
                out += tl
            else:
                out.append("  if (%s) {" % flex)
                out += ["  " + l for l in tl]
                out.append("  }")
        out.append("}")
        out.append("")
        # ---- decode
        out.append("void %s::decode(Reader& r, int16_t version) {" % qual)
        out.append("  (void)version;")
        out.append("  *this = %s{};" % qual)
        for f in fields:
            pctx = self.present(f, ctx)
            regular = cond_set([v for v in pctx if not f.tagged.contains(v)], ctx)
            if regular == "false":
                continue
            fl = self.field_flex(f, pctx)
            nl = cond(f.nullable, pctx)
            body = self.dec_value(f, "this->" + f.cpp, "r", fl, nl, pctx, "  ", 0)
            out += guard(regular, body, "  ")
        if flex != "false":
            tl = []
            if tagged_fields:
                tl += [
                    "  const uint32_t num_tagged_ = r.read_uvarint();",
                    "  if (static_cast<uint64_t>(num_tagged_) * 2 > r.remaining())",
                    "    throw DecodeError(\"tagged field count exceeds remaining bytes\");",
                    "  int64_t prev_tag_ = -1;",
                    "  for (uint32_t t_ = 0; t_ < num_tagged_; ++t_) {",
                    "    const uint32_t tag_ = r.read_uvarint();",
                    "    if (static_cast<int64_t>(tag_) <= prev_tag_)",
                    "      throw DecodeError(\"tagged fields not strictly ascending\");",
                    "    prev_tag_ = tag_;",
                    "    const uint32_t size_ = r.read_uvarint();",
                    "    const std::string_view raw_ = r.read_raw(size_);",
                    "    switch (tag_) {",
                ]
                for f in tagged_fields:
                    tctx = [v for v in ctx if f.tagged.contains(v) and f.versions.contains(v)]
                    tc = cond_set(tctx, ctx)
                    nl = cond(f.nullable, tctx)
                    tl.append("      case %du:" % f.tag)
                    inner = ["        {", "          Reader sub_(raw_);"]
                    inner += self.dec_value(f, "this->" + f.cpp, "sub_", "true", nl, tctx, "          ", 0)
                    inner += ["          if (sub_.remaining() != 0)",
                              "            throw DecodeError(\"tagged field %s has trailing bytes\");" % f.name,
                              "        }"]
                    if tc == "true":
                        tl += inner
                    else:
                        tl.append("        if (%s)" % tc)
                        tl += inner
                    tl.append("        break;")
                tl += ["      default:",
                       "        break;",
                       "    }",
                       "  }"]
            else:
                tl.append("  r.skip_tagged_fields();")
            if flex == "true":
                out += tl
            else:
                out.append("  if (%s) {" % flex)
                out += ["  " + l for l in tl]
                out.append("  }")
        out.append("}")
        out.append("")
        return out

    def struct_ctx(self, f, ctx):
        return self.present(f, ctx)

    # -- header
    def header_struct(self, name, fields, ctx, ind, is_top, emitted):
        L = []
        L.append("%sstruct %s {" % (ind, name))
        i2 = ind + "  "
        if is_top:
            m = self.msg
            if m.api_key is not None:
                L.append("%sstatic constexpr int16_t kApiKey = %d;" % (i2, m.api_key))
            L.append("%sstatic constexpr int16_t kMinVersion = %d;" % (i2, m.versions.lo))
            L.append("%sstatic constexpr int16_t kMaxVersion = %d;" % (i2, m.versions.hi))
            L.append("%sstatic constexpr int16_t kFirstFlexibleVersion = %d;" % (i2, m.first_flexible))
            if m.unstable:
                L.append("%sstatic constexpr bool kLatestVersionUnstable = true;" % i2)
            L.append("")
            for cname, cvers, cfields in m.common:
                cctx = [v for v in self.vers if cvers.contains(v)]
                L += self.header_struct(cname, cfields, cctx, i2, False, emitted)
                L.append("")
        for f in fields:
            if f.base_is_struct and f.children is not None:
                L += self.header_struct(f.base, f.children, self.present(f, ctx), i2, False, emitted)
                L.append("")
        for f in fields:
            init = self.default_init(f)
            L.append("%s%s %s%s;" % (i2, self.cpp_type(f), f.cpp, (" = " + init) if init else ""))
        if fields:
            L.append("")
        L.append("%svoid encode(Writer& w, int16_t version) const;" % i2)
        L.append("%svoid decode(Reader& r, int16_t version);" % i2)
        if self.msg.kind == "response":
            L += self.error_visitor(fields, i2)
        L.append("%sbool operator==(const %s&) const = default;" % (i2, name))
        L.append("%s};" % ind)
        return L

    def is_error_code(self, f):
        return f.type == "int16" and f.name.endswith("ErrorCode")

    def holds_error_codes(self, fields, seen=()):
        """Whether the fields, or structs under them, carry an error code."""
        for f in fields:
            if self.is_error_code(f):
                return True
            if f.base_is_struct and f.base not in seen:
                if self.holds_error_codes(self.struct_defs[f.base], seen + (f.base,)):
                    return True
        return False

    def error_visitor(self, fields, ind):
        """for_each_error_code(f): calls f(code) for every non-zero error code
        in the response (the broker counts them by code, as Kafka's
        ErrorsPerSec does)."""
        L = ["%stemplate <typename F>" % ind, "%svoid for_each_error_code(F&& f) const {" % ind]
        i2 = ind + "  "
        for f in fields:
            if self.is_error_code(f):
                L.append("%sif (%s != 0) f(%s);" % (i2, f.cpp, f.cpp))
            elif f.base_is_struct and self.holds_error_codes(self.struct_defs[f.base], (f.base,)):
                if not f.is_array and f.any_nullable:
                    L.append("%sif (%s) %s->for_each_error_code(f);" % (i2, f.cpp, f.cpp))
                elif not f.is_array:
                    L.append("%s%s.for_each_error_code(f);" % (i2, f.cpp))
                elif f.any_nullable:
                    L.append("%sif (%s) for (const auto& e : *%s) e.for_each_error_code(f);" % (i2, f.cpp, f.cpp))
                else:
                    L.append("%sfor (const auto& e : %s) e.for_each_error_code(f);" % (i2, f.cpp))
        if len(L) == 2:
            L.append("%s(void)f;" % i2)
        L.append("%s}" % ind)
        return L

    def all_structs(self, prefix, fields, ctx, out):
        """Post-order list of (qualified name, fields, ctx) for nested structs."""
        for f in fields:
            if f.base_is_struct and f.children is not None:
                q = prefix + "::" + f.base
                pctx = self.present(f, ctx)
                self.all_structs(q, f.children, pctx, out)
                out.append((q, f.children, pctx))

    def struct_list(self):
        m = self.msg
        out = []
        for cname, cvers, cfields in m.common:
            cctx = [v for v in self.vers if cvers.contains(v)]
            q = m.name + "::" + cname
            self.all_structs(q, cfields, cctx, out)
            out.append((q, cfields, cctx))
        self.all_structs(m.name, m.fields, self.vers, out)
        out.append((m.name, m.fields, self.vers))
        return out

    def gen_header(self, stem):
        m = self.msg
        L = ["// Generated by protocol/codegen/generate.py from protocol/schema/%s.schema. Do not edit." % stem,
             "#pragma once",
             "",
             "#include <cstdint>",
             "#include <optional>",
             "#include <string>",
             "#include <string_view>",
             "#include <vector>",
             "",
             "#include \"protocol/wire.h\"",
             "",
             "namespace sluice::protocol {",
             ""]
        L += self.header_struct(m.name, m.fields, self.vers, "", True, set())
        L += ["", "}  // namespace sluice::protocol", ""]
        return "\n".join(L)

    def gen_source(self, stem):
        L = ["// Generated by protocol/codegen/generate.py from protocol/schema/%s.schema. Do not edit." % stem,
             "#include \"protocol/messages/%s.h\"" % stem,
             "",
             "namespace sluice::protocol {",
             ""]
        for q, fields, ctx in self.struct_list():
            L += self.struct_code(q, fields, ctx)
        L += ["}  // namespace sluice::protocol", ""]
        return "\n".join(L)

    # -- tests: fill functions
    def fill_fn(self, q, fields, ctx):
        # Seeds are unsigned: they grow by a factor at each level of nesting and may wrap.
        L = ["void fill(%s& x, int16_t v, unsigned long long s, int depth, bool nulls) {" % q,
             "  (void)v; (void)s; (void)depth; (void)nulls;"]
        for i, f in enumerate(fields):
            pc = cond(f.versions, ctx, "v")
            if pc == "false":
                continue
            seed = "s * 37 + %d" % (i + 1)
            body = self.fill_value(f, "x." + f.cpp, seed, "  ")
            if f.any_nullable or f.base == "records":
                # In the `nulls` pass, nullable fields are null where the version allows it.
                nc = cond(f.nullable, self.present(f, ctx), "v")
                if nc != "false":
                    c = "nulls" if nc == "true" else "nulls && (%s)" % nc
                    body = (["  if (%s) {" % c, "    x.%s = std::nullopt;" % f.cpp, "  } else {"]
                            + ["  " + l for l in body] + ["  }"])
            L += guard(pc, body, "  ")
        L.append("}")
        L.append("")
        return L

    def fill_value(self, f, target, seed, ind):
        b = f.base
        if f.is_array:
            L = ["%s{" % ind,
                 "%s  const int count = depth < 2 ? 2 : 1;" % ind,
                 "%s  %s.emplace();" % (ind, target) if f.any_nullable else "%s  %s.clear();" % (ind, target),
                 "%s  auto& vec = %s;" % (ind, ("*" + target) if f.any_nullable else target),
                 "%s  for (int k = 0; k < count; ++k) {" % ind]
            es = "(%s) * 3 + k" % seed
            if b in PRIMS:
                L.append("%s    vec.push_back(%s);" % (ind, self.sample_prim(b, es, None)))
            elif b == "string":
                L.append("%s    vec.push_back(\"e\" + std::to_string(%s));" % (ind, es))
            elif b == "bytes":
                L.append("%s    vec.push_back(std::string(\"\\x00\\xff\", 2) + std::to_string(%s));" % (ind, es))
            else:
                L.append("%s    vec.emplace_back();" % ind)
                L.append("%s    fill(vec.back(), v, %s, depth + 1, nulls);" % (ind, es))
            L.append("%s  }" % ind)
            L.append("%s}" % ind)
            return L
        if b in PRIMS:
            return ["%s%s = %s;" % (ind, target, self.sample_prim(b, seed, f))]
        if b == "string":
            return ["%s%s = \"str\" + std::to_string(%s);" % (ind, target, seed)]
        if b == "bytes":
            return ["%s%s = std::string(\"\\x01\\x00\\xfe\", 3) + std::to_string(%s);" % (ind, target, seed)]
        if b == "records":
            return ["%s%s = kRecordBytes;" % (ind, target)]
        if f.any_nullable:
            return ["%sfill(%s.emplace(), v, %s, depth + 1, nulls);" % (ind, target, seed)]
        return ["%sfill(%s, v, %s, depth + 1, nulls);" % (ind, target, seed)]

    def sample_prim(self, b, seed, f):
        ctype = PRIMS[b][0]
        if b == "bool":
            if f is None:
                return "((%s) %% 2 == 0)" % seed
            return "!%s" % (self.default_init(f) or "false")
        if b == "uuid":
            return "make_uuid(%s)" % seed
        if b == "float64":
            return "static_cast<double>(%s) + 0.25" % seed
        dflt = self.default_init(f) if f is not None else ""
        return "pick<%s>(%s, %s)" % (ctype, seed, dflt or "0")

    def gen_tests(self):
        m = self.msg
        fills = []
        for q, fields, ctx in self.struct_list():
            fills += self.fill_fn(q, fields, ctx)
        tests = []
        for v in self.vers:
            tests.append("TEST(ProtocolRoundTrip, %s_v%d) { round_trip<%s>(\"%s\", %d); }" % (m.name, v, m.name, m.name, v))
        return fills, tests


# --------------------------------------------------------------------------- files

def stem_of(path):
    return os.path.splitext(os.path.basename(path))[0]


def write_if_changed(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        with open(path, encoding="utf-8") as fh:
            if fh.read() == text:
                return
    except FileNotFoundError:
        pass
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def gen_api_keys(msgs):
    reqs = sorted([m for m in msgs if m.kind == "request"], key=lambda m: m.api_key)
    resp_keys = {m.api_key for m in msgs if m.kind == "response"}
    L = ["// Generated by protocol/codegen/generate.py. Do not edit.",
         "#pragma once",
         "",
         "#include <cstdint>",
         "",
         "namespace sluice::protocol {",
         "",
         "struct ApiInfo {",
         "  int16_t key;",
         "  const char* name;",
         "  int16_t min_version, max_version, first_flexible_version;",
         "};",
         "",
         "// Every request API with a generated request and response, sorted by key.",
         "inline constexpr ApiInfo kApis[] = {"]
    for m in reqs:
        if m.api_key not in resp_keys:
            raise SchemaError("request %s has no matching response schema" % m.name)
        name = m.name[:-len("Request")] if m.name.endswith("Request") else m.name
        L.append("    {%d, \"%s\", %d, %d, %d}," % (m.api_key, name, m.versions.lo, m.versions.hi, m.first_flexible))
    L += ["};",
          "inline constexpr int kNumApis = %d;" % len(reqs),
          "",
          "// nullptr when the key is not one we generate.",
          "inline constexpr const ApiInfo* find_api(int16_t key) {",
          "  for (const ApiInfo& a : kApis)",
          "    if (a.key == key) return &a;",
          "  return nullptr;",
          "}",
          "",
          "// Request header version for (key, version): 2 for flexible versions, else 1.",
          "// Versions above the supported range follow the flexible rule (as Kafka does),",
          "// so an ApiVersions request of an unknown version is still parsed. -1 for",
          "// unknown keys.",
          "inline constexpr int16_t request_header_version(int16_t key, int16_t version) {",
          "  const ApiInfo* a = find_api(key);",
          "  if (a == nullptr) return -1;",
          "  return (a->first_flexible_version >= 0 && version >= a->first_flexible_version) ? 2 : 1;",
          "}",
          "",
          "// Response header version: 1 for flexible versions, else 0. ApiVersions",
          "// responses always use v0 (KIP-511). -1 for unknown keys.",
          "inline constexpr int16_t response_header_version(int16_t key, int16_t version) {",
          "  const ApiInfo* a = find_api(key);",
          "  if (a == nullptr) return -1;",
          "  if (key == 18) return 0;",
          "  return (a->first_flexible_version >= 0 && version >= a->first_flexible_version) ? 1 : 0;",
          "}",
          "",
          "}  // namespace sluice::protocol",
          ""]
    return "\n".join(L)


TEST_PRELUDE = r'''// Generated by protocol/codegen/generate.py. Do not edit.
// Round-trip and truncation tests for every message and version.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>

#include "protocol/wire.h"
%INCLUDES%

using namespace sluice::protocol;

// Largest single allocation since last reset (protocol/alloc_tracker.cc).
extern std::atomic<size_t> g_max_alloc;

namespace {

[[maybe_unused]] constexpr std::string_view kRecordBytes("\x00\x01\x02records\xff\xfe", 12);

template <typename T>
T pick(unsigned long long seed, T dflt) {
  T v = static_cast<T>(seed);
  if (v == dflt) v = static_cast<T>(v + 1);
  return v;
}

[[maybe_unused]] Uuid make_uuid(unsigned long long seed) {
  Uuid u;
  for (int i = 0; i < 16; ++i) u.bytes[i] = static_cast<uint8_t>(seed * 7 + i + 1);
  return u;
}

%FILLS%

// Fills every field present in `version` with a non-default value (or, with
// `nulls`, null wherever the version allows it), then checks the codec.
template <typename T>
void round_trip_one(const char* name, int16_t version, bool nulls) {
  SCOPED_TRACE(nulls ? "nullable fields null" : "all fields set");
  T a;
  fill(a, version, 1, 0, nulls);
  Writer w;
  a.encode(w, version);
  const std::string bytes = w.buffer();
  // For cross-checking against other implementations: dump the encoding.
  if (const char* dir = std::getenv("SLUICE_PROTOCOL_DUMP_DIR")) {
    std::ofstream(std::string(dir) + "/" + name + (nulls ? "_null" : "") + "_v" +
                      std::to_string(version) + ".bin",
                  std::ios::binary) << bytes;
  }

  T b;
  Reader r(bytes);
  b.decode(r, version);
  EXPECT_EQ(r.remaining(), 0u);
  EXPECT_TRUE(a == b);

  Writer w2;
  b.encode(w2, version);
  EXPECT_EQ(w2.buffer(), bytes);

  for (size_t n = 0; n < bytes.size(); ++n) {
    T c;
    Reader rt(std::string_view(bytes).substr(0, n));
    EXPECT_THROW(c.decode(rt, version), DecodeError) << "prefix length " << n;
  }

  // Corrupt each byte in turn (0xff turns lengths into -1/huge, 0x7f into large
  // positive counts): decoding must either succeed or throw DecodeError, and
  // never allocate far beyond the input size.
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (char bad : {'\xff', '\x7f'}) {
      std::string mutated = bytes;
      if (mutated[i] == bad) continue;
      mutated[i] = bad;
      T c;
      Reader rm(mutated);
      g_max_alloc = 0;
      try {
        c.decode(rm, version);
      } catch (const DecodeError&) {
      }
      EXPECT_LE(g_max_alloc.load(), 4096 + 512 * mutated.size()) << "mutated byte " << i;
    }
  }

  // Deterministic random multi-byte corruption (a cheap fuzz pass).
  uint64_t rng = 0x9e3779b97f4a7c15ull ^ static_cast<uint64_t>(version) ^ (nulls ? 1u : 0u);
  auto next = [&rng] {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
  };
  for (int iter = 0; iter < 64 && !bytes.empty(); ++iter) {
    std::string mutated = bytes;
    const int changes = 1 + static_cast<int>(next() % 4);
    for (int c = 0; c < changes; ++c)
      mutated[next() % mutated.size()] = static_cast<char>(next() & 0xff);
    if (next() % 4 == 0) mutated.resize(next() % mutated.size());
    T c;
    Reader rm(mutated);
    g_max_alloc = 0;
    try {
      c.decode(rm, version);
    } catch (const DecodeError&) {
    }
    EXPECT_LE(g_max_alloc.load(), 4096 + 512 * bytes.size()) << "random mutation " << iter;
  }
}

template <typename T>
void round_trip(const char* name, int16_t version) {
  round_trip_one<T>(name, version, false);
  round_trip_one<T>(name, version, true);
}

}  // namespace

%TESTS%
'''


def main(argv):
    args = argv[1:]
    stamp = None
    list_only = False
    if "--stamp" in args:
        i = args.index("--stamp")
        stamp = args[i + 1]
        del args[i:i + 2]
    if "--list-outputs" in args:
        args.remove("--list-outputs")
        list_only = True
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    schema_dir, out_dir = args
    paths = sorted(os.path.join(schema_dir, p) for p in os.listdir(schema_dir) if p.endswith(".schema"))
    msg_dir = os.path.join(out_dir, "protocol", "messages")
    test_dir = os.path.join(out_dir, "protocol", "tests")
    if list_only:
        for p in paths:
            print(os.path.join(msg_dir, stem_of(p) + ".cc"))
        return 0

    msgs = []
    chunks = [([], [], []) for _ in range(TEST_CHUNKS)]
    for idx, p in enumerate(paths):
        stem = stem_of(p)
        m = parse_schema(p)
        expect = snake(m.name).rstrip("_")
        if expect != stem:
            raise SchemaError("%s: file should be named %s.schema" % (p, expect))
        g = Gen(m)
        write_if_changed(os.path.join(msg_dir, stem + ".h"), g.gen_header(stem))
        write_if_changed(os.path.join(msg_dir, stem + ".cc"), g.gen_source(stem))
        fills, tests = g.gen_tests()
        inc, fl, ts = chunks[idx % TEST_CHUNKS]
        inc.append("#include \"protocol/messages/%s.h\"" % stem)
        fl += fills
        ts += tests
        msgs.append(m)
    write_if_changed(os.path.join(msg_dir, "api_keys.h"), gen_api_keys(msgs))
    for k, (inc, fl, ts) in enumerate(chunks):
        text = (TEST_PRELUDE.replace("%INCLUDES%", "\n".join(inc))
                .replace("%FILLS%", "\n".join(fl))
                .replace("%TESTS%", "\n".join(ts)))
        write_if_changed(os.path.join(test_dir, "roundtrip_test_%d.cc" % k), text)
    if stamp:
        os.makedirs(os.path.dirname(stamp) or ".", exist_ok=True)
        with open(stamp, "w") as fh:
            fh.write("ok\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except SchemaError as e:
        print("generate.py: error: %s" % e, file=sys.stderr)
        sys.exit(1)
