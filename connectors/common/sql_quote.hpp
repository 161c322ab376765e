#pragma once
// Identifier and literal quoting for SQL text we generate (fix suggestions,
// DDL). Every identifier is always quoted, whatever it looks like, so hostile
// names ("; DROP TABLE x; --) stay names.
#include <string>
#include <string_view>

namespace datavor::connectors {

std::string quote_pg_ident(std::string_view name);      // "na""me"
std::string quote_pg_literal(std::string_view value);   // 'it''s'  (standard_conforming_strings)
std::string quote_mysql_ident(std::string_view name);   // `na``me`
std::string quote_mysql_literal(std::string_view value);  // 'it\'s' with backslashes escaped
std::string json_quote(std::string_view value);          // "a\"b" (a JSON string; control characters escaped)

// "schema.table" -> {"schema","table"}; "table" -> {default_schema,"table"}.
struct qualified_name {
    std::string schema;
    std::string name;
};
qualified_name split_qualified(std::string_view text, std::string_view default_schema);

}  // namespace datavor::connectors
