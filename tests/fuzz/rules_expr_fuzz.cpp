// libFuzzer target: the rules engine's expression language (engines/rules).
// The input is an expression's source text. It is parsed; when it parses it
// is bound to a fixed table (columns of several types, a quoted name) and
// evaluated on fixed changes (insert, updates with a full, a key-only and no
// old image, a delete with a key-only old image, a truncate, a snapshot row)
// with one evaluator reused throughout, as a rule runner would.
// Invariants: no crash, no sanitizer report; error offsets lie within the
// text; columns() lists only names the text holds; a reused evaluator gives
// the same results as a fresh one; to_text agrees with the value's kind.
#include "engines/rules/expr.hpp"

#include <cstdlib>
#include <cstring>

using namespace datavor::connectors;
using namespace datavor::engines::rules;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

std::shared_ptr<const table_schema> fixed_table() {
    auto t = std::make_shared<table_schema>();
    t->relation_id = 16384;
    t->schema = "public";
    t->name = "items";
    t->version = 1;
    auto col = [&](const char* name, std::uint32_t oid, bool key = false) {
        column_def c;
        c.name = name;
        c.type_oid = oid;
        c.key = key;
        t->columns.push_back(std::move(c));
    };
    col("id", 23, true);     // int4
    col("qty", 20);          // int8
    col("price", 1700);      // numeric
    col("w", 701);           // float8
    col("name", 25);         // text
    col("code", 1043);       // varchar
    col("active", 16);       // bool
    col("doc", 25);          // TOASTed in the updates
    col("Mixed Case", 23);
    return t;
}

row make_row(std::initializer_list<const char*> texts) {
    row r;
    for (const char* s : texts) {
        if (!s)
            r.push_back(value::null_value());
        else if (std::strcmp(s, "?") == 0)
            r.push_back(value::unchanged_value());
        else
            r.push_back(value::text_value(s));
    }
    return r;
}

std::vector<change_event> fixed_changes(const std::shared_ptr<const table_schema>& t) {
    auto ch = [&](change_op op, std::optional<row> before, row after) {
        change_event c;
        c.table = t;
        c.op = op;
        c.before = std::move(before);
        c.after = std::move(after);
        return c;
    };
    //               id    qty                     price      w           name             code   active doc    Mixed Case
    auto a = make_row({"1", "9223372036854775807", "9.50", "2.5", "Widget héllo", "AB-1", "t", "doc", "-7"});
    auto b = make_row({"2", "-9223372036854775808", "-0.001", "NaN", "", nullptr, "f", "?", "0"});
    auto c = make_row({"3", "0", "123456789012345678901234567890.5", "-Infinity", "日本語%_", "x", nullptr, "?", nullptr});
    auto key_only = make_row({"1", "?", "?", "?", "?", "?", "?", "?", "?"});
    return {
        ch(change_op::insert, std::nullopt, a),
        ch(change_op::update, a, b),          // full old image; doc unchanged, taken from it
        ch(change_op::update, key_only, c),   // key moved (1 → 3)
        ch(change_op::update, std::nullopt, b),
        ch(change_op::erase, key_only, {}),
        ch(change_op::erase, c, {}),
        ch(change_op::truncate, std::nullopt, {}),
        ch(change_op::read, std::nullopt, c),
    };
}

struct copied {
    eval_value::kind k;
    bool b;
    std::int64_t i;
    double d;
    std::string s;
};

copied copy_of(const eval_value& v) { return {v.k, v.b, v.i, v.d, std::string(v.s)}; }

bool same(const copied& x, const copied& y) {
    if (x.k != y.k) return false;
    switch (x.k) {
        case eval_value::kind::null: return true;
        case eval_value::kind::boolean: return x.b == y.b;
        case eval_value::kind::integer: return x.i == y.i;
        case eval_value::kind::real: return std::memcmp(&x.d, &y.d, sizeof x.d) == 0 || (x.d != x.d && y.d != y.d);
        case eval_value::kind::text: return x.s == y.s;
    }
    return false;
}

void check_text(const eval_value& v) {
    const auto t = to_text(v);
    check(t.has_value() == !v.is_null());
    if (!t) return;
    switch (v.k) {
        case eval_value::kind::boolean: check(*t == (v.b ? "true" : "false")); break;
        case eval_value::kind::integer: check(*t == std::to_string(v.i)); break;
        case eval_value::kind::text: check(*t == v.s); break;
        default: check(!t->empty()); break;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const auto table = fixed_table();
    static const auto changes = fixed_changes(table);
    static evaluator shared;  // reused across inputs, as a runner reuses one per strand

    const std::string_view source(reinterpret_cast<const char*>(data), size);
    auto parsed = expression::parse(source);
    if (const auto* e = std::get_if<expr_error>(&parsed)) {
        check(e->offset <= size);
        check(!e->message.empty());
        (void)e->describe(source);
        return 0;
    }
    const auto& expr = std::get<expression>(parsed);
    check(expr.source() == source);
    for (const auto& c : expr.columns()) check(!c.empty() && c.size() <= size);

    auto bound = program::bind(expr, *table);
    if (const auto* e = std::get_if<expr_error>(&bound)) {
        check(e->offset <= size);
        check(!e->message.empty());
        (void)e->describe(source);
        return 0;
    }
    const auto& prog = std::get<program>(bound);
    check(prog.table_version() == table->version);

    for (const auto& c : changes) {
        const auto v = prog.evaluate(c, shared);
        check_text(v);
        const auto first = copy_of(v);
        evaluator fresh;
        check(same(copy_of(prog.evaluate(c, fresh)), first));
    }
    return 0;
}
