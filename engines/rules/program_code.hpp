#pragma once
// The flat form of a bound program, shared by the binder (program.cpp) and
// the evaluator (eval.cpp). Internal to engines/rules.
#include "engines/rules/expr.hpp"

namespace datavor::engines::rules {

struct program::instr {
    enum class code : std::uint8_t {
        push, load, load_op, neg, not_, and_, or_, cmp, arith, concat, like, is_null, in,
        lower, upper, length, substring, coalesce, abs, changed
    };
    code c = code::push;
    eval_value lit;        // push (a text literal's bytes are in `text`)
    std::string text;
    char op = 0;           // cmp: = ! < l(<=) > g(>=); arith: + - * / %
    bool negate = false;   // like, is null, in
    int image = 0;         // load: 0 the row's image, 1 old, 2 new
    std::size_t col = 0;
    int category = 0;      // load, changed: 0 text, 1 integer, 2 real, 3 boolean
    std::size_t n = 0;     // in: list length; substring, coalesce: arguments
    std::size_t slot = 0;  // text scratch slot of the result
};

}  // namespace datavor::engines::rules
