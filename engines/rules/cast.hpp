#pragma once
// Casting a value's text to a target type's text (the cast rule, derived
// columns): the PostgreSQL type a cast names, and whether a text is a valid
// value of it, normalised to PostgreSQL's text form (booleans to t/f, a 'T' in a timestamp to a
// space). Sans-I/O; no allocation beyond the result.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace datavor::engines::rules {

struct cast_type {
    std::uint32_t oid = 25;
    std::string name = "text";  // as PostgreSQL spells it (format_type)
};

// "integer", "bigint", "smallint", "numeric", "double", "real", "text",
// "boolean", "date", "timestamp", "timestamptz" and their usual aliases.
std::optional<cast_type> cast_type_of(std::string_view name);
// The value as `to` takes it, or nullopt when it is not one.
std::optional<std::string> cast_text(std::string_view value, const cast_type& to);

}  // namespace datavor::engines::rules
