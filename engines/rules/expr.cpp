#include "engines/rules/expr.hpp"
#include "engines/rules/expr_tree.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

namespace datavor::engines::rules {

using connectors::change_event;
using connectors::change_op;
using connectors::table_schema;

std::string expr_error::describe(std::string_view source) const {
    const auto at = std::min(offset, source.size());
    return message + " (at character " + std::to_string(at + 1) + ")\n  " + std::string(source) + "\n  " +
           std::string(at, ' ') + "^";
}

namespace {

// ------------------------------------------------------------------ lexer

struct token {
    enum class kind { end, number, text, name, quoted, punct } k = kind::end;
    std::string v;  // lower-cased for names (keywords), raw for quoted names and text
    std::string raw;
    std::size_t offset = 0;
};

struct parse_failure {
    expr_error e;
};

[[noreturn]] void fail(std::size_t offset, std::string message) { throw parse_failure{{offset, std::move(message)}}; }

std::string lower_ascii(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

std::vector<token> lex(std::string_view s) {
    std::vector<token> out;
    std::size_t i = 0;
    auto is_name_start = [](unsigned char c) { return std::isalpha(c) || c == '_' || c >= 0x80; };
    auto is_name = [](unsigned char c) { return std::isalnum(c) || c == '_' || c >= 0x80; };
    while (i < s.size()) {
        const unsigned char c = static_cast<unsigned char>(s[i]);
        if (std::isspace(c)) {
            ++i;
            continue;
        }
        token t;
        t.offset = i;
        if (std::isdigit(c) || (c == '.' && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1])))) {
            std::size_t j = i;
            while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
            if (j < s.size() && s[j] == '.') {
                ++j;
                while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
            }
            if (j < s.size() && (s[j] == 'e' || s[j] == 'E')) {
                std::size_t k = j + 1;
                if (k < s.size() && (s[k] == '+' || s[k] == '-')) ++k;
                if (k < s.size() && std::isdigit(static_cast<unsigned char>(s[k]))) {
                    while (k < s.size() && std::isdigit(static_cast<unsigned char>(s[k]))) ++k;
                    j = k;
                }
            }
            if (j < s.size() && is_name(static_cast<unsigned char>(s[j]))) fail(j, "unexpected character in a number");
            t.k = token::kind::number;
            t.v = std::string(s.substr(i, j - i));
            i = j;
        } else if (c == '\'' || c == '"') {
            const char q = static_cast<char>(c);
            std::string v;
            std::size_t j = i + 1;
            for (;;) {
                if (j >= s.size())
                    fail(i, q == '\'' ? "unterminated string: a ' opened here is never closed"
                                      : "unterminated name: a \" opened here is never closed");
                if (s[j] == q) {
                    if (j + 1 < s.size() && s[j + 1] == q) {  // doubled quote: one quote character
                        v.push_back(q);
                        j += 2;
                        continue;
                    }
                    ++j;
                    break;
                }
                v.push_back(s[j++]);
            }
            if (q == '"' && v.empty()) fail(i, "empty quoted name");
            t.k = q == '\'' ? token::kind::text : token::kind::quoted;
            t.v = std::move(v);
            i = j;
        } else if (is_name_start(c)) {
            std::size_t j = i;
            while (j < s.size() && is_name(static_cast<unsigned char>(s[j]))) ++j;
            t.k = token::kind::name;
            t.raw = std::string(s.substr(i, j - i));
            t.v = lower_ascii(t.raw);
            i = j;
        } else {
            static constexpr std::string_view two[] = {"<=", ">=", "<>", "!=", "||"};
            t.k = token::kind::punct;
            for (auto p : two)
                if (s.substr(i, 2) == p) t.v = std::string(p);
            if (t.v.empty()) {
                if (!std::strchr("()=<>+-*/%,.", static_cast<char>(c)) || c == 0)
                    fail(i, std::string("unexpected character '") + static_cast<char>(c) + "'");
                t.v = std::string(1, static_cast<char>(c));
            }
            i += t.v.size();
        }
        out.push_back(std::move(t));
    }
    token e;
    e.offset = s.size();
    out.push_back(e);
    return out;
}

// ------------------------------------------------------------------ parser

bool is_keyword(const std::string& v) {
    static constexpr std::string_view kw[] = {"and", "or", "not", "like", "is", "null", "true", "false", "in"};
    return std::find(std::begin(kw), std::end(kw), v) != std::end(kw);
}

class parser {
public:
    explicit parser(std::string_view src) : toks_(lex(src)) {}

    std::shared_ptr<const node> parse_all(std::vector<std::string>& columns) {
        columns_ = &columns;
        auto e = expr();
        if (peek().k != token::kind::end) fail(peek().offset, "unexpected '" + text_of(peek()) + "' after a complete expression");
        return e;
    }

private:
    using ptr = std::shared_ptr<node>;
    std::vector<token> toks_;
    std::size_t pos_ = 0;
    int depth_ = 0;
    std::vector<std::string>* columns_ = nullptr;

    const token& peek(std::size_t ahead = 0) const { return toks_[std::min(pos_ + ahead, toks_.size() - 1)]; }
    const token& next() { return toks_[pos_ < toks_.size() - 1 ? pos_++ : pos_]; }
    static std::string text_of(const token& t) { return t.k == token::kind::name ? t.raw : t.v; }
    bool at_word(std::string_view w, std::size_t ahead = 0) const {
        return peek(ahead).k == token::kind::name && peek(ahead).v == w;
    }
    bool at_punct(std::string_view p) const { return peek().k == token::kind::punct && peek().v == p; }
    void expect_punct(std::string_view p, std::string_view what) {
        if (!at_punct(p)) fail(peek().offset, "expected " + std::string(what) + (peek().k == token::kind::end ? " at the end" : " here"));
        next();
    }
    // Binding and freeing walk the tree recursively: a bound on its size
    // bounds their depth (a chain of 1,000 `+` is a tree 1,000 deep).
    static constexpr std::size_t max_nodes = 1000;
    std::size_t nodes_ = 0;
    ptr make(node::type t, std::size_t offset) {
        if (++nodes_ > max_nodes)
            fail(offset, "expression too long: more than " + std::to_string(max_nodes) + " values and operations");
        auto n = std::make_shared<node>();
        n->t = t;
        n->offset = offset;
        return n;
    }
    ptr binary(node::type t, std::size_t offset, std::string op, ptr a, ptr b) {
        auto n = make(t, offset);
        n->text = std::move(op);
        n->kids = {std::move(a), std::move(b)};
        return n;
    }

    ptr expr() {
        if (++depth_ > 200) fail(peek().offset, "expression nested too deeply");
        auto e = or_expr();
        --depth_;
        return e;
    }
    ptr or_expr() {
        auto a = and_expr();
        while (at_word("or")) {
            const auto at = next().offset;
            a = binary(node::type::or_, at, "or", a, and_expr());
        }
        return a;
    }
    ptr and_expr() {
        auto a = not_expr();
        while (at_word("and")) {
            const auto at = next().offset;
            a = binary(node::type::and_, at, "and", a, not_expr());
        }
        return a;
    }
    ptr not_expr() {
        if (at_word("not")) {
            const auto at = next().offset;
            if (++depth_ > 200) fail(at, "expression nested too deeply");
            auto n = make(node::type::not_, at);
            n->kids = {not_expr()};
            --depth_;
            return n;
        }
        return cmp();
    }
    ptr cmp() {
        auto a = sum();
        const auto& t = peek();
        if (t.k == token::kind::punct && (t.v == "=" || t.v == "!=" || t.v == "<>" || t.v == "<" || t.v == "<=" ||
                                          t.v == ">" || t.v == ">=")) {
            const auto op = next();
            return binary(node::type::cmp, op.offset, op.v == "<>" ? "!=" : op.v, a, sum());
        }
        bool negated = false;
        std::size_t at = t.offset;
        if (at_word("not") && (at_word("like", 1) || at_word("in", 1))) {
            next();
            negated = true;
        }
        if (at_word("like")) {
            next();
            auto n = binary(node::type::like, at, "like", a, sum());
            n->b = negated;
            return n;
        }
        if (at_word("in")) {
            next();
            auto n = make(node::type::in, at);
            n->b = negated;
            n->kids.push_back(a);
            expect_punct("(", "'(' after in");
            n->kids.push_back(expr());
            while (at_punct(",")) {
                next();
                n->kids.push_back(expr());
            }
            expect_punct(")", "')' to close the in list");
            return n;
        }
        if (at_word("is")) {
            next();
            auto n = make(node::type::is_null, at);
            if (at_word("not")) {
                next();
                n->b = true;
            }
            if (!at_word("null")) fail(peek().offset, "expected null after is" + std::string(n->b ? " not" : ""));
            next();
            n->kids = {a};
            return n;
        }
        return a;
    }
    ptr sum() {
        auto a = prod();
        while (at_punct("+") || at_punct("-") || at_punct("||")) {
            const auto op = next();
            a = binary(op.v == "||" ? node::type::concat : node::type::arith, op.offset, op.v, a, prod());
        }
        return a;
    }
    ptr prod() {
        auto a = unary();
        while (at_punct("*") || at_punct("/") || at_punct("%")) {
            const auto op = next();
            a = binary(node::type::arith, op.offset, op.v, a, unary());
        }
        return a;
    }
    ptr unary() {
        if (at_punct("-")) {
            const auto at = next().offset;
            if (++depth_ > 200) fail(at, "expression nested too deeply");
            auto n = make(node::type::neg, at);
            n->kids = {unary()};
            --depth_;
            return n;
        }
        return primary();
    }
    ptr column(std::string name, std::size_t at, int image) {
        auto n = make(node::type::column, at);
        n->text = std::move(name);
        n->image = image;
        if (std::find(columns_->begin(), columns_->end(), n->text) == columns_->end()) columns_->push_back(n->text);
        return n;
    }
    ptr primary() {
        const token t = next();
        switch (t.k) {
        case token::kind::end:
            fail(t.offset, "expected a value, a column or '(' at the end");
        case token::kind::number: {
            auto n = make(node::type::int_lit, t.offset);
            const bool integral = t.v.find_first_of(".eE") == std::string::npos;
            if (integral) {
                auto [p, ec] = std::from_chars(t.v.data(), t.v.data() + t.v.size(), n->i);
                if (ec == std::errc()) return n;
            }
            n->t = node::type::real_lit;
            n->d = std::strtod(t.v.c_str(), nullptr);
            return n;
        }
        case token::kind::text: {
            auto n = make(node::type::text_lit, t.offset);
            n->text = t.v;
            return n;
        }
        case token::kind::quoted:
            return column(t.v, t.offset, 0);
        case token::kind::punct:
            if (t.v == "(") {
                auto e = expr();
                expect_punct(")", "')' to close the '(' at character " + std::to_string(t.offset + 1));
                return e;
            }
            fail(t.offset, "expected a value, a column or '(' instead of '" + t.v + "'");
        case token::kind::name:
            break;
        }
        if (t.v == "null") return make(node::type::null_lit, t.offset);
        if (t.v == "true" || t.v == "false") {
            auto n = make(node::type::bool_lit, t.offset);
            n->b = t.v == "true";
            return n;
        }
        if ((t.v == "old" || t.v == "new") && at_punct(".")) {
            next();
            const token c = next();
            if (c.k != token::kind::name && c.k != token::kind::quoted)
                fail(c.offset, "expected a column name after " + t.v + ".");
            return column(c.k == token::kind::name ? c.raw : c.v, t.offset, t.v == "old" ? 1 : 2);
        }
        if (at_punct("(")) {
            next();
            auto n = make(node::type::call, t.offset);
            n->text = t.v;
            if (!at_punct(")")) {
                n->kids.push_back(expr());
                while (at_punct(",")) {
                    next();
                    n->kids.push_back(expr());
                }
            }
            expect_punct(")", "')' to close " + t.raw + "(");
            return n;
        }
        if (t.v == "op") return make(node::type::op, t.offset);
        if (is_keyword(t.v)) fail(t.offset, "unexpected keyword '" + t.raw + "': expected a value or a column");
        return column(t.raw, t.offset, 0);
    }
};

}  // namespace

expression::expression() = default;
expression::expression(expression&&) noexcept = default;
expression& expression::operator=(expression&&) noexcept = default;
expression::~expression() = default;

std::variant<expression, expr_error> expression::parse(std::string_view source) {
    expression e;
    e.source_ = std::string(source);
    try {
        parser p(e.source_);
        e.root_ = p.parse_all(e.columns_);
    } catch (const parse_failure& f) {
        return f.e;
    }
    return e;
}

}  // namespace datavor::engines::rules
