#include "connectors/common/sql_quote.hpp"

namespace datavor::connectors {
namespace {
std::string wrap(std::string_view s, char q) {
    std::string out(1, q);
    for (char c : s) {
        if (c == q) out.push_back(q);
        out.push_back(c);
    }
    out.push_back(q);
    return out;
}
}  // namespace

std::string quote_pg_ident(std::string_view name) { return wrap(name, '"'); }
std::string quote_pg_literal(std::string_view value) { return wrap(value, '\''); }
std::string quote_mysql_ident(std::string_view name) { return wrap(name, '`'); }

std::string quote_mysql_literal(std::string_view value) {
    std::string out = "'";
    for (char c : value) {
        if (c == '\'' || c == '\\') out.push_back('\\');
        if (c == '\0') {
            out += "\\0";
            continue;
        }
        out.push_back(c);
    }
    out.push_back('\'');
    return out;
}

qualified_name split_qualified(std::string_view text, std::string_view default_schema) {
    auto dot = text.find('.');
    if (dot == std::string_view::npos) return {std::string(default_schema), std::string(text)};
    return {std::string(text.substr(0, dot)), std::string(text.substr(dot + 1))};
}

std::string json_quote(std::string_view s) {
    std::string out = "\"";
    out.reserve(s.size() + 2);
    for (char c : s) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (static_cast<unsigned char>(c) < 0x20) {
                static const char* hex = "0123456789abcdef";
                out += "\\u00";
                out.push_back(hex[(c >> 4) & 15]);
                out.push_back(hex[c & 15]);
            } else {
                out.push_back(c);
            }
        }
    }
    return out + "\"";
}

}  // namespace datavor::connectors
