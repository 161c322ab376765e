#pragma once
// Shared by the rules engine's unit tests: rows built by column name.
#include "connectors/common/change.hpp"

#include <catch2/catch.hpp>

#include <initializer_list>
#include <memory>
#include <optional>
#include <string>

namespace datavor::test {

// A cell of a row by column name; nullopt is null, "?" an unchanged (not
// carried) value, as for TOAST or a key-only old tuple.
struct cell {
    std::string column;
    std::optional<std::string> text;
};

// The row of `t` with the named cells set; the columns not named are null.
inline connectors::row make_row(const connectors::table_schema& t, std::initializer_list<cell> cells) {
    connectors::row r(t.columns.size(), connectors::value::null_value());
    for (const auto& c : cells) {
        std::size_t i = 0;
        while (i < t.columns.size() && t.columns[i].name != c.column) ++i;
        REQUIRE(i < t.columns.size());
        if (!c.text)
            r[i] = connectors::value::null_value();
        else if (*c.text == "?")
            r[i] = connectors::value::unchanged_value();
        else
            r[i] = connectors::value::text_value(*c.text);
    }
    return r;
}

// A key-only old image (pgoutput's 'K' tuple as pg_source hands it on):
// the key columns carry `id`, every other column is unchanged.
inline connectors::row key_only(const connectors::table_schema& t, const std::string& id) {
    connectors::row r(t.columns.size(), connectors::value::unchanged_value());
    for (std::size_t i = 0; i < t.columns.size(); ++i)
        if (t.columns[i].key) r[i] = connectors::value::text_value(id);
    return r;
}

inline connectors::change_event make_change(std::shared_ptr<const connectors::table_schema> t, connectors::change_op op,
                                            std::optional<connectors::row> before, connectors::row after) {
    connectors::change_event c;
    c.table = std::move(t);
    c.op = op;
    c.before = std::move(before);
    c.after = std::move(after);
    return c;
}

}  // namespace datavor::test
