#pragma once
// The parsed form of an expression, shared by the parser (expr.cpp) and the
// binder (program.cpp). Internal to engines/rules.
#include "engines/rules/expr.hpp"

namespace datavor::engines::rules {

struct node {
    enum class type {
        null_lit, bool_lit, int_lit, real_lit, text_lit, column, op, neg, not_, and_, or_,
        cmp, arith, concat, like, is_null, in, call
    };
    type t = type::null_lit;
    std::size_t offset = 0;
    bool b = false;        // bool literal; `not` for like / is null / in
    std::int64_t i = 0;
    double d = 0;
    std::string text;      // text literal, column or function name, operator
    int image = 0;         // columns: 0 = the row's image, 1 = old, 2 = new
    std::vector<std::shared_ptr<const node>> kids;
};

}  // namespace datavor::engines::rules
