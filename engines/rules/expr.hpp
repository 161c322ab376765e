#pragma once
// The rules engine's expression language: parsed once, bound to a table's
// column positions per schema version, evaluated per change without
// allocating once warm.
//
//   expr     := or
//   or       := and ("or" and)*
//   and      := not ("and" not)*
//   not      := "not" not | cmp
//   cmp      := sum [("=" | "!=" | "<>" | "<" | "<=" | ">" | ">=") sum
//                    | ["not"] "like" sum | "is" ["not"] "null"
//                    | ["not"] "in" "(" expr ("," expr)* ")"]
//   sum      := prod (("+" | "-" | "||") prod)*
//   prod     := unary (("*" | "/" | "%") unary)*
//   unary    := "-" unary | primary
//   primary  := number | 'string' ('' escapes a quote) | true | false | null | op
//             | name | "quoted name" | (old|new) "." name
//             | name "(" [expr ("," expr)*] ")" | "(" expr ")"
//
// Keywords and function names are case-insensitive; a column name binds to
// the column spelled exactly so, else to the only one spelled so ignoring
// case (quote names with spaces or odd characters). `col` is
// the new image's value (the old one for a delete); `old.col` and `new.col`
// pick one (null when that image is absent). `op` is 'insert', 'update',
// 'delete', 'truncate' or 'read' (a snapshot row). Functions: lower, upper,
// length, substring(s, from [, count]) (1-based, characters), coalesce(a, ...),
// abs, changed(col) (true when an update changed the column; unknown old
// values count as unchanged).
//
// Three-valued logic as in SQL: a comparison with null is null, `and`/`or`
// follow Kleene, and a filter treats null as false. Numbers are 64-bit
// integers while exact, else doubles (numeric columns compare as doubles;
// exact decimal arithmetic is out of scope); a text that reads as a number
// takes part in arithmetic and comparisons with numbers ('10' = 10). Strings
// compare bytewise (UTF-8). At most 1,000 values and operations.
//
// Thread safety: a parsed `expression` and a bound `program` are immutable
// and can be shared; an `evaluator` (scratch space) belongs to one strand.
#include "connectors/common/change.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace datavor::engines::rules {

// Where and why an expression is wrong: `offset` is the 0-based byte offset of
// the offending character in the source text.
struct expr_error {
    std::size_t offset = 0;
    std::string message;
    std::string describe(std::string_view source) const;  // the message, the text and a caret under the spot
};

struct node;  // the syntax tree (expr.cpp)

class expression {
public:
    // Parses `source`; an error names the offending character.
    static std::variant<expression, expr_error> parse(std::string_view source);
    const std::string& source() const { return source_; }
    // Column names the expression refers to (for explaining and for drift).
    const std::vector<std::string>& columns() const { return columns_; }

    expression(expression&&) noexcept;
    expression& operator=(expression&&) noexcept;
    ~expression();

private:
    friend class program;
    expression();
    std::string source_;
    std::vector<std::string> columns_;
    std::shared_ptr<const node> root_;
};

// A value during evaluation. Strings point into the change being evaluated
// or into the evaluator's scratch space: valid until the next evaluate().
struct eval_value {
    enum class kind : std::uint8_t { null, boolean, integer, real, text };
    kind k = kind::null;
    bool b = false;
    std::int64_t i = 0;
    double d = 0;
    std::string_view s;

    bool is_null() const { return k == kind::null; }
    bool truthy() const { return k == kind::boolean && b; }  // null and false are not
};

class evaluator;

// An expression bound to one version of a table: column names resolved to
// positions and types. Bind again when the table's version changes.
class program {
public:
    static std::variant<program, expr_error> bind(const expression& e, const connectors::table_schema& table);
    // Evaluates against one change; the result's strings live in `scratch`
    // (or in the change) until the next call with the same evaluator.
    eval_value evaluate(const connectors::change_event& c, evaluator& scratch) const;
    std::uint64_t table_version() const { return version_; }

    struct instr;  // the flat, stack-machine form (expr.cpp)

private:
    std::vector<instr> code_;
    std::size_t max_stack_ = 0;
    std::size_t text_slots_ = 0;
    std::uint64_t version_ = 0;
    friend class evaluator;
    friend struct compiler;

public:
    program();
    program(program&&) noexcept;
    program& operator=(program&&) noexcept;
    ~program();
};

// Scratch space for evaluations: a value stack and text buffers that keep
// their capacity, so a warm evaluator allocates nothing.
class evaluator {
public:
    evaluator();
    ~evaluator();

private:
    friend class program;
    std::vector<eval_value> stack_;
    std::vector<std::string> texts_;
};

// Renders a value as text (for derived columns, alerts and test_rule output):
// null → nullopt, booleans "true"/"false", integers and doubles in their
// shortest round-trip form.
std::optional<std::string> to_text(const eval_value& v);

}  // namespace datavor::engines::rules
