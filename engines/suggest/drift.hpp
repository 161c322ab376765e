#pragma once
// Schema drift between two definitions of one table: what a stream meets when
// the log brings a new Relation (or the catalog at open differs from the last
// definition recorded). Pure: the suggest engine turns each drift into a
// suggestion.
#include "connectors/common/change.hpp"

#include <string>
#include <vector>

namespace datavor::engines::suggest {

// A column as the schema history records it.
struct column_info {
    std::string name, type;
    bool nullable = true, key = false;
    bool operator==(const column_info&) const = default;
};

std::vector<column_info> columns_of(const connectors::table_schema& t);
// From context.db's schema_versions.columns ([{name, type, nullable, key}]); empty when unreadable.
std::vector<column_info> columns_of_json(const std::string& columns_json);

enum class drift_kind { new_column, dropped_column, type_change, nullability_change, key_change };
const char* name_of(drift_kind k);

struct drift {
    drift_kind kind;
    std::string column;    // key_change: the new key's columns, comma-separated
    std::string old_type;  // type_change, dropped_column; key_change: the old key
    std::string new_type;  // new_column, type_change
    bool nullable = true;  // nullability_change: nullable now
};

// Columns are matched by name (a rename shows as a drop and a new column).
// A new column that is part of the key is reported only as a key_change.
std::vector<drift> diff(const std::vector<column_info>& before, const std::vector<column_info>& after);

}  // namespace datavor::engines::suggest
