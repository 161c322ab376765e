// Binding (syntax tree → flat stack-machine code for one table version) and
// evaluation (code × change → value), for expr.hpp.
#include "engines/rules/expr.hpp"
#include "engines/rules/expr_tree.hpp"
#include "engines/rules/program_code.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

namespace datavor::engines::rules {

using connectors::change_event;
using connectors::change_op;
using connectors::table_schema;
using kind = eval_value::kind;


program::program() = default;
program::program(program&&) noexcept = default;
program& program::operator=(program&&) noexcept = default;
program::~program() = default;
evaluator::evaluator() = default;
evaluator::~evaluator() = default;

namespace {

int category_of(std::uint32_t oid) {
    switch (oid) {
    case 20: case 21: case 23: case 26: return 1;  // int8 int2 int4 oid
    case 700: case 701: case 1700: return 2;       // float4 float8 numeric
    case 16: return 3;                             // bool
    default: return 0;
    }
}

struct bind_failure {
    expr_error e;
};
[[noreturn]] void fail(std::size_t offset, std::string message) { throw bind_failure{{offset, std::move(message)}}; }

bool iequal(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

}  // namespace

struct compiler {
    const table_schema& table;
    program& out;
    std::size_t depth = 0;

    void emit(program::instr in, std::size_t pops, std::size_t pushes = 1) {
        depth = depth - pops + pushes;
        out.max_stack_ = std::max(out.max_stack_, depth);
        out.code_.push_back(std::move(in));
    }
    std::size_t slot() { return out.text_slots_++; }
    std::size_t column(const node& n) {
        const auto& cols = table.columns;
        for (std::size_t i = 0; i < cols.size(); ++i)
            if (cols[i].name == n.text) return i;
        std::size_t found = cols.size(), matches = 0;
        for (std::size_t i = 0; i < cols.size(); ++i)
            if (iequal(cols[i].name, n.text)) found = i, ++matches;
        if (matches == 1) return found;
        std::string names;
        for (const auto& c : cols) names += (names.empty() ? "" : ", ") + c.name;
        fail(n.offset, "unknown column '" + n.text + "' in " + table.qualified() + " (its columns: " + names + ")");
    }
    void arity(const node& n, std::size_t lo, std::size_t hi) {
        if (n.kids.size() < lo || n.kids.size() > hi)
            fail(n.offset, n.text + "() takes " +
                               (lo == hi ? std::to_string(lo) : std::to_string(lo) + (hi == SIZE_MAX ? " or more" : " to " + std::to_string(hi))) +
                               " argument" + (hi == 1 ? "" : "s") + ", not " + std::to_string(n.kids.size()));
    }

    void gen(const node& n) {
        using T = node::type;
        using C = program::instr::code;
        program::instr in;
        switch (n.t) {
        case T::null_lit: emit(in, 0); return;
        case T::bool_lit: in.lit.k = kind::boolean; in.lit.b = n.b; emit(std::move(in), 0); return;
        case T::int_lit: in.lit.k = kind::integer; in.lit.i = n.i; emit(std::move(in), 0); return;
        case T::real_lit: in.lit.k = kind::real; in.lit.d = n.d; emit(std::move(in), 0); return;
        case T::text_lit: in.lit.k = kind::text; in.text = n.text; emit(std::move(in), 0); return;
        case T::column:
            in.c = C::load;
            in.col = column(n);
            in.image = n.image;
            in.category = category_of(table.columns[in.col].type_oid);
            emit(std::move(in), 0);
            return;
        case T::op: in.c = C::load_op; emit(std::move(in), 0); return;
        case T::neg: gen(*n.kids[0]); in.c = C::neg; emit(std::move(in), 1); return;
        case T::not_: gen(*n.kids[0]); in.c = C::not_; emit(std::move(in), 1); return;
        case T::and_: case T::or_:
            gen(*n.kids[0]);
            gen(*n.kids[1]);
            in.c = n.t == T::and_ ? C::and_ : C::or_;
            emit(std::move(in), 2);
            return;
        case T::cmp:
            gen(*n.kids[0]);
            gen(*n.kids[1]);
            in.c = C::cmp;
            in.op = n.text == "=" ? '=' : n.text == "!=" ? '!' : n.text == "<" ? '<' : n.text == "<=" ? 'l' : n.text == ">" ? '>' : 'g';
            emit(std::move(in), 2);
            return;
        case T::arith:
            gen(*n.kids[0]);
            gen(*n.kids[1]);
            in.c = C::arith;
            in.op = n.text[0];
            emit(std::move(in), 2);
            return;
        case T::concat:
            gen(*n.kids[0]);
            gen(*n.kids[1]);
            in.c = C::concat;
            in.slot = slot();
            emit(std::move(in), 2);
            return;
        case T::like:
            gen(*n.kids[0]);
            gen(*n.kids[1]);
            in.c = C::like;
            in.negate = n.b;
            in.slot = slot();
            slot();  // slot + 1: the pattern's text form
            emit(std::move(in), 2);
            return;
        case T::is_null: gen(*n.kids[0]); in.c = C::is_null; in.negate = n.b; emit(std::move(in), 1); return;
        case T::in:
            for (const auto& k : n.kids) gen(*k);
            in.c = C::in;
            in.negate = n.b;
            in.n = n.kids.size() - 1;
            emit(std::move(in), n.kids.size());
            return;
        case T::call: call(n); return;
        }
    }

    void call(const node& n) {
        using C = program::instr::code;
        program::instr in;
        const auto& f = n.text;
        if (f == "changed") {
            arity(n, 1, 1);
            const auto& a = *n.kids[0];
            if (a.t != node::type::column || a.image != 0)
                fail(a.offset, "changed() takes a column name, as in changed(price)");
            in.c = C::changed;
            in.col = column(a);
            emit(std::move(in), 0);
            return;
        }
        if (f == "lower" || f == "upper" || f == "length" || f == "abs") {
            arity(n, 1, 1);
            in.c = f == "lower" ? C::lower : f == "upper" ? C::upper : f == "length" ? C::length : C::abs;
        } else if (f == "substring" || f == "substr") {
            arity(n, 2, 3);
            in.c = C::substring;
        } else if (f == "coalesce") {
            arity(n, 1, SIZE_MAX);
            in.c = C::coalesce;
        } else {
            fail(n.offset, "unknown function '" + f + "' (known: lower, upper, length, substring, coalesce, abs, changed)");
        }
        for (const auto& k : n.kids) gen(*k);
        in.n = n.kids.size();
        in.slot = slot();
        emit(std::move(in), n.kids.size());
    }
};

std::variant<program, expr_error> program::bind(const expression& e, const table_schema& table) {
    program p;
    p.version_ = table.version;
    try {
        compiler c{table, p};
        c.gen(*e.root_);
    } catch (const bind_failure& f) {
        return f.e;
    }
    return p;
}

}  // namespace datavor::engines::rules
