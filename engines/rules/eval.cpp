// Evaluation of a bound program against one change (expr.hpp): a stack
// machine over eval_values; text results go to the evaluator's slots, which
// keep their capacity, so a warm evaluator allocates nothing.
#include "engines/rules/expr.hpp"
#include "engines/rules/program_code.hpp"

#include <charconv>
#include <cmath>
#include <limits>
#include <optional>

namespace datavor::engines::rules {

using connectors::change_event;
using connectors::change_op;
using connectors::value;
using kind = eval_value::kind;
using code = program::instr::code;

namespace {

eval_value null_v() { return {}; }
eval_value bool_v(bool b) {
    eval_value v;
    v.k = kind::boolean;
    v.b = b;
    return v;
}
eval_value int_v(std::int64_t i) {
    eval_value v;
    v.k = kind::integer;
    v.i = i;
    return v;
}
eval_value real_v(double d) {
    eval_value v;
    v.k = kind::real;
    v.d = d;
    return v;
}
eval_value text_v(std::string_view s) {
    eval_value v;
    v.k = kind::text;
    v.s = s;
    return v;
}

// A number from text: integer when it is one, else a double (PostgreSQL's
// NaN and ±Infinity included); nullopt when it is not a number.
std::optional<eval_value> number_of(std::string_view s) {
    std::int64_t i = 0;
    auto r = std::from_chars(s.data(), s.data() + s.size(), i);
    if (r.ec == std::errc() && r.ptr == s.data() + s.size()) return int_v(i);
    double d = 0;
    const char* b = s.data();
    if (!s.empty() && s[0] == '+') ++b;
    auto rd = std::from_chars(b, s.data() + s.size(), d);
    if (rd.ec == std::errc() && rd.ptr == s.data() + s.size()) return real_v(d);
    return std::nullopt;
}

std::optional<eval_value> as_number(const eval_value& v) {
    if (v.k == kind::integer || v.k == kind::real) return v;
    if (v.k == kind::text) return number_of(v.s);
    return std::nullopt;
}

double as_double(const eval_value& v) { return v.k == kind::integer ? static_cast<double>(v.i) : v.d; }

const value* cell(const change_event& c, int image, std::size_t col) {
    const connectors::row* r = nullptr;
    if (image == 1) r = c.before ? &*c.before : nullptr;
    else if (image == 2) r = c.op == change_op::erase || c.op == change_op::truncate ? nullptr : &c.after;
    else if (c.op == change_op::erase) r = c.before ? &*c.before : nullptr;
    else if (c.op != change_op::truncate) r = &c.after;
    if (!r || col >= r->size()) return nullptr;
    const value* v = &(*r)[col];
    // An unchanged TOAST value in the new image: a FULL old image has it.
    if (v->is_unchanged() && r == &c.after && c.before && col < c.before->size() && !(*c.before)[col].is_unchanged())
        v = &(*c.before)[col];
    return v->is_unchanged() || v->is_null() ? nullptr : v;
}

eval_value load(const change_event& c, int image, std::size_t col, int category) {
    const value* v = cell(c, image, col);
    if (!v) return null_v();
    std::string_view s = v->data;
    if (category == 1 || category == 2) {
        if (auto n = number_of(s)) return *n;
    } else if (category == 3) {
        if (s == "t" || s == "true") return bool_v(true);
        if (s == "f" || s == "false") return bool_v(false);
    }
    return text_v(s);
}

// -1, 0, 1, or nullopt when either is null or they cannot be compared.
std::optional<int> compare(const eval_value& a, const eval_value& b) {
    if (a.is_null() || b.is_null()) return std::nullopt;
    if (a.k == kind::boolean || b.k == kind::boolean) {
        if (a.k != b.k) return std::nullopt;
        return static_cast<int>(a.b) - static_cast<int>(b.b);
    }
    if (a.k == kind::text && b.k == kind::text) {
        const int r = a.s.compare(b.s);
        return (r > 0) - (r < 0);
    }
    auto x = as_number(a), y = as_number(b);
    if (!x || !y) return std::nullopt;
    if (x->k == kind::integer && y->k == kind::integer) return (x->i > y->i) - (x->i < y->i);
    const double p = as_double(*x), q = as_double(*y);
    if (std::isnan(p) || std::isnan(q)) return std::isnan(p) == std::isnan(q) ? 0 : (std::isnan(p) ? 1 : -1);
    return (p > q) - (p < q);
}

// Kleene logic: true, false or null (any non-boolean counts as null).
std::optional<bool> truth(const eval_value& v) {
    if (v.k != kind::boolean) return std::nullopt;
    return v.b;
}
eval_value from_truth(std::optional<bool> t) { return t ? bool_v(*t) : null_v(); }

eval_value arith(char op, const eval_value& a, const eval_value& b) {
    auto x = as_number(a), y = as_number(b);
    if (!x || !y) return null_v();
    if (x->k == kind::integer && y->k == kind::integer) {
        std::int64_t r = 0;
        switch (op) {
        case '+': if (!__builtin_add_overflow(x->i, y->i, &r)) return int_v(r); break;
        case '-': if (!__builtin_sub_overflow(x->i, y->i, &r)) return int_v(r); break;
        case '*': if (!__builtin_mul_overflow(x->i, y->i, &r)) return int_v(r); break;
        case '/':
            if (y->i == 0) return null_v();
            if (!(x->i == std::numeric_limits<std::int64_t>::min() && y->i == -1) && x->i % y->i == 0) return int_v(x->i / y->i);
            break;
        case '%':
            if (y->i == 0) return null_v();
            if (y->i == -1) return int_v(0);
            return int_v(x->i % y->i);
        }
    }
    const double p = as_double(*x), q = as_double(*y);
    switch (op) {
    case '+': return real_v(p + q);
    case '-': return real_v(p - q);
    case '*': return real_v(p * q);
    case '/': return q == 0 ? null_v() : real_v(p / q);
    default: return q == 0 ? null_v() : real_v(std::fmod(p, q));
    }
}

// Appends a value's text form (integers and doubles shortest round-trip).
void append_text(std::string& out, const eval_value& v) {
    char buf[64];
    switch (v.k) {
    case kind::null: return;
    case kind::boolean: out += v.b ? "true" : "false"; return;
    case kind::integer: {
        auto r = std::to_chars(buf, buf + sizeof buf, v.i);
        out.append(buf, r.ptr);
        return;
    }
    case kind::real:
        if (std::isnan(v.d)) out += "NaN";
        else if (std::isinf(v.d)) out += v.d > 0 ? "Infinity" : "-Infinity";
        else {
            auto r = std::to_chars(buf, buf + sizeof buf, v.d);
            out.append(buf, r.ptr);
        }
        return;
    case kind::text: out += v.s; return;
    }
}

// A text view of v: itself, or its text form written into `slot`.
std::string_view text_of(const eval_value& v, std::string& slot) {
    if (v.k == kind::text) return v.s;
    slot.clear();
    append_text(slot, v);
    return slot;
}

bool continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }
std::size_t next_char(std::string_view s, std::size_t i) {
    ++i;
    while (i < s.size() && continuation(s[i])) ++i;
    return i;
}

// SQL LIKE: % any run, _ one character (UTF-8 aware). Iterative with one
// backtrack point, so no input makes it slow.
bool like(std::string_view s, std::string_view p) {
    std::size_t i = 0, j = 0, star_p = std::string_view::npos, star_s = 0;
    while (i < s.size()) {
        if (j < p.size() && p[j] == '%') {
            star_p = ++j;
            star_s = i;
        } else if (j < p.size() && p[j] == '_') {
            i = next_char(s, i);
            j = next_char(p, j);
        } else if (j < p.size() && s[i] == p[j]) {
            ++i;
            ++j;
        } else if (star_p != std::string_view::npos) {
            j = star_p;
            i = star_s = next_char(s, star_s);
        } else {
            return false;
        }
    }
    while (j < p.size() && p[j] == '%') ++j;
    return j == p.size();
}

bool changed(const change_event& c, std::size_t col) {
    if (c.op != change_op::update || !c.before) return false;
    if (col >= c.before->size() || col >= c.after.size()) return false;
    const auto& o = (*c.before)[col];
    const auto& n = c.after[col];
    if (o.is_unchanged() || n.is_unchanged()) return false;
    return !(o == n);
}

}  // namespace

eval_value program::evaluate(const change_event& c, evaluator& ev) const {
    auto& st = ev.stack_;
    if (st.size() < max_stack_) st.resize(max_stack_);
    if (ev.texts_.size() < text_slots_) ev.texts_.resize(text_slots_);
    std::size_t sp = 0;
    for (const auto& in : code_) {
        switch (in.c) {
        case code::push:
            st[sp] = in.lit;
            if (in.lit.k == kind::text) st[sp].s = in.text;
            ++sp;
            break;
        case code::load: st[sp++] = load(c, in.image, in.col, in.category); break;
        case code::load_op: {
            static constexpr std::string_view names[] = {"insert", "update", "delete", "truncate", "read"};
            const auto i = c.op == change_op::insert ? 0 : c.op == change_op::update ? 1 : c.op == change_op::erase ? 2
                         : c.op == change_op::truncate ? 3 : 4;
            st[sp++] = text_v(names[i]);
            break;
        }
        case code::neg: {
            auto& v = st[sp - 1];
            auto n = as_number(v);
            if (!n) v = null_v();
            else if (n->k == kind::integer && n->i != std::numeric_limits<std::int64_t>::min()) v = int_v(-n->i);
            else v = real_v(-as_double(*n));
            break;
        }
        case code::not_: {
            auto t = truth(st[sp - 1]);
            st[sp - 1] = t ? bool_v(!*t) : null_v();
            break;
        }
        case code::and_: case code::or_: {
            const auto a = truth(st[sp - 2]), b = truth(st[sp - 1]);
            --sp;
            if (in.c == code::and_)
                st[sp - 1] = (a == false || b == false) ? bool_v(false) : (a && b) ? bool_v(true) : null_v();
            else
                st[sp - 1] = (a == true || b == true) ? bool_v(true) : (a && b) ? bool_v(false) : null_v();
            break;
        }
        case code::cmp: {
            const auto r = compare(st[sp - 2], st[sp - 1]);
            --sp;
            if (!r) {
                st[sp - 1] = null_v();
                break;
            }
            bool t = false;
            switch (in.op) {
            case '=': t = *r == 0; break;
            case '!': t = *r != 0; break;
            case '<': t = *r < 0; break;
            case 'l': t = *r <= 0; break;
            case '>': t = *r > 0; break;
            default: t = *r >= 0; break;
            }
            st[sp - 1] = bool_v(t);
            break;
        }
        case code::arith:
            st[sp - 2] = arith(in.op, st[sp - 2], st[sp - 1]);
            --sp;
            break;
        case code::concat: {
            const auto& a = st[sp - 2];
            const auto& b = st[sp - 1];
            if (a.is_null() || b.is_null()) {
                st[sp - 2] = null_v();
            } else {
                auto& out = ev.texts_[in.slot];
                out.clear();
                append_text(out, a);
                append_text(out, b);
                st[sp - 2] = text_v(out);
            }
            --sp;
            break;
        }
        case code::like: {
            const auto& a = st[sp - 2];
            const auto& b = st[sp - 1];
            if (a.is_null() || b.is_null()) {
                st[sp - 2] = null_v();
            } else {
                const auto s = text_of(a, ev.texts_[in.slot]);
                const auto p = text_of(b, ev.texts_[in.slot + 1]);
                st[sp - 2] = bool_v(like(s, p) != in.negate);
            }
            --sp;
            break;
        }
        case code::is_null: st[sp - 1] = bool_v(st[sp - 1].is_null() != in.negate); break;
        case code::in: {
            const std::size_t base = sp - in.n - 1;
            const auto& x = st[base];
            std::optional<bool> found = false;
            if (x.is_null()) found = std::nullopt;
            else
                for (std::size_t k = 1; k <= in.n; ++k) {
                    const auto r = compare(x, st[base + k]);
                    if (r && *r == 0) {
                        found = true;
                        break;
                    }
                    if (!r) found = std::nullopt;
                }
            if (found && in.negate) found = !*found;
            st[base] = from_truth(found);
            sp = base + 1;
            break;
        }
        case code::lower: case code::upper: {
            auto& v = st[sp - 1];
            if (v.is_null()) break;
            auto& out = ev.texts_[in.slot];
            const auto s = text_of(v, out);
            if (s.data() != out.data()) out.assign(s);
            for (auto& ch : out) {
                if (in.c == code::lower && ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
                if (in.c == code::upper && ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 'a' + 'A');
            }
            v = text_v(out);
            break;
        }
        case code::length: {
            auto& v = st[sp - 1];
            if (v.is_null()) break;
            const auto s = text_of(v, ev.texts_[in.slot]);
            std::int64_t n = 0;
            for (char ch : s) n += !continuation(ch);
            v = int_v(n);
            break;
        }
        case code::abs: {
            auto& v = st[sp - 1];
            auto n = as_number(v);
            if (!n) v = null_v();
            else if (n->k == kind::integer && n->i != std::numeric_limits<std::int64_t>::min()) v = int_v(n->i < 0 ? -n->i : n->i);
            else v = real_v(std::fabs(as_double(*n)));
            break;
        }
        case code::substring: {
            const std::size_t base = sp - in.n;
            const auto& sv = st[base];
            auto from = as_number(st[base + 1]);
            std::optional<eval_value> count;
            if (in.n == 3) count = as_number(st[base + 2]);
            if (sv.is_null() || !from || (in.n == 3 && !count)) {
                st[base] = null_v();
            } else {
                const auto s = text_of(sv, ev.texts_[in.slot]);
                // 1-based characters; like SQL, a start before 1 eats into the count.
                const double f = std::floor(as_double(*from));
                double first = f, last = std::numeric_limits<double>::infinity();
                if (count) last = f + std::floor(as_double(*count));
                if (count && last < f) {
                    st[base] = null_v();
                    sp = base + 1;
                    break;
                }
                first = std::max(first, 1.0);
                std::size_t b = 0, ch = 1;
                while (b < s.size() && static_cast<double>(ch) < first) b = next_char(s, b), ++ch;
                std::size_t e = b;
                while (e < s.size() && static_cast<double>(ch) < last) e = next_char(s, e), ++ch;
                st[base] = text_v(s.substr(b, e - b));
            }
            sp = base + 1;
            break;
        }
        case code::coalesce: {
            const std::size_t base = sp - in.n;
            eval_value r;
            for (std::size_t k = 0; k < in.n; ++k)
                if (!st[base + k].is_null()) {
                    r = st[base + k];
                    break;
                }
            st[base] = r;
            sp = base + 1;
            break;
        }
        case code::changed: st[sp++] = bool_v(changed(c, in.col)); break;
        }
    }
    return sp ? st[0] : null_v();
}

std::optional<std::string> to_text(const eval_value& v) {
    if (v.is_null()) return std::nullopt;
    std::string out;
    append_text(out, v);
    return out;
}

}  // namespace datavor::engines::rules
